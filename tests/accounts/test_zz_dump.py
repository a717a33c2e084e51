import pytest
pytestmark = pytest.mark.django_db
def test_dump(alice_client, staff_client, api_key_factory, usage_factory, catalog):
    k,_ = api_key_factory("alice", ["claude-*"], name="laptop")
    usage_factory(k, input_tokens=5)
    open("/tmp/me.html","w").write(alice_client.get("/me/").content.decode())
    open("/tmp/created.html","w").write(alice_client.post("/me/keys/new/", {"name":"x","based_on":k.pk}).content.decode())
    open("/tmp/usage.html","w").write(alice_client.get("/me/usage/").content.decode())
    open("/tmp/admin_usage.html","w").write(staff_client.get("/admin/usage/").content.decode())
