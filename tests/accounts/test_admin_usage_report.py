"""/admin/usage/: the staff report by key, user, model, day, credential and provider over 24 h to 90 d or dates,
with CSV; the usage record list and its raw export; the credentials page's 24 h usage."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(api_key_factory, usage_factory, priced_catalog):
    now = timezone.now()
    alice, _ = api_key_factory("alice", name="laptop")
    bob, _ = api_key_factory("bob", name="desk")
    usage_factory(alice, "claude-sonnet-4-6", input_tokens=10, output_tokens=2)
    usage_factory(alice, "gpt-5.5", input_tokens=5, output_tokens=1)
    usage_factory(bob, "gpt-5.5", at=now - timedelta(days=3), input_tokens=7, output_tokens=3)
    usage_factory(bob, "gpt-5.5", at=now - timedelta(days=20), input_tokens=1000)
    return {"alice": alice, "bob": bob}


def body(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def rows(response):
    return {tuple(r[:-6]): r[-6:-1] for r in response.context["table"]}


def costs(response):
    return {tuple(r[:-6]): r[-1] for r in response.context["table"]}


def test_report_is_staff_only(client, alice_client, django_user_model):
    assert client.get("/admin/usage/")["Location"].startswith("/admin/login/")
    assert alice_client.get("/admin/usage/")["Location"].startswith("/admin/login/")
    assert alice_client.get("/admin/usage/csv/")["Location"].startswith("/admin/login/")
    staff = django_user_model.objects.create_user("helper", password="pw", is_staff=True)
    helper = Client()
    helper.force_login(staff)
    assert helper.get("/admin/usage/").status_code == 403  # staff, but may not view usage records
    staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    assert helper.get("/admin/usage/").status_code == 200


def test_report_groups_by_key_user_model_and_day(staff_client, world):
    by_key = staff_client.get("/admin/usage/?by=key&period=7d")
    assert rows(by_key) == {(world["alice"].prefix, "laptop", "alice"): [2, 15, 3, 0, 0],
                            (world["bob"].prefix, "desk", "bob"): [1, 7, 3, 0, 0]}
    assert rows(staff_client.get("/admin/usage/?by=user&period=7d")) == {("alice",): [2, 15, 3, 0, 0],
                                                                         ("bob",): [1, 7, 3, 0, 0]}
    assert rows(staff_client.get("/admin/usage/?by=model&period=30d")) == {
        ("claude-sonnet-4-6",): [1, 10, 2, 0, 0], ("gpt-5.5",): [3, 1012, 4, 0, 0]}
    assert len(rows(staff_client.get("/admin/usage/?by=day&period=30d"))) == 3
    assert by_key.context["total"]["requests"] == 3


def test_report_estimates_cost_from_catalog_prices(staff_client, world):
    # alice: 10 input + 2 output Sonnet tokens at $3 / $15 per million; GPT has no prices here.
    by_key = staff_client.get("/admin/usage/?by=key&period=7d")
    assert costs(by_key) == {(world["alice"].prefix, "laptop", "alice"): 0.00006,
                             (world["bob"].prefix, "desk", "bob"): None}
    assert by_key.context["total"]["estimated_cost_usd"] == 0.00006
    page = by_key.content.decode()
    # A readable heading, and a small cost shown as itself rather than $0.00.
    assert "<th class=\"num\">Est. cost</th>" in page and "estimated_cost_usd</th>" not in page
    assert ">$0.00006<" in page and ">$0.00<" not in page and ">—<" in page
    csv_rows = list(csv.DictReader(io.StringIO(body(staff_client.get("/admin/usage/csv/?by=key&period=7d")))))
    assert sorted(r["estimated_cost_usd"] for r in csv_rows) == ["", "6e-05"]


def test_period_decides_which_records_count(staff_client, world):
    assert staff_client.get("/admin/usage/?by=user&period=24h").context["total"]["requests"] == 2
    assert staff_client.get("/admin/usage/?by=user&period=7d").context["total"]["requests"] == 3
    assert staff_client.get("/admin/usage/?by=user&period=30d").context["total"]["requests"] == 4
    # Unknown values fall back to the defaults rather than failing.
    response = staff_client.get("/admin/usage/?by=nope&period=1y")
    assert response.status_code == 200 and (response.context["by"], response.context["period"]) == ("key", "7d")


def test_report_for_one_key_from_its_change_page(staff_client, world):
    response = staff_client.get(f"/admin/usage/?key={world['bob'].pk}&period=30d&by=model")
    assert rows(response) == {("gpt-5.5",): [2, 1007, 3, 0, 0]}
    assert staff_client.get("/admin/usage/?key=999999").status_code == 404


def test_report_page_has_the_chart_and_links(staff_client, world):
    page = staff_client.get("/admin/usage/?period=7d").content.decode()
    chart = page[page.index('<figure class="chart">'):]
    svg = chart[:chart.index("</svg>")]
    assert svg.count("<rect") == 7 and "<script" not in svg
    assert "/admin/usage/csv/?by=key&amp;period=7d" in page


def test_csv_export_matches_the_table(staff_client, world):
    response = staff_client.get("/admin/usage/csv/?by=model&period=30d")
    assert response["Content-Disposition"] == 'attachment; filename="proxyhub-usage-model-30d.csv"'
    lines = list(csv.DictReader(io.StringIO(body(response))))
    assert [(r["model"], r["requests"], r["input_tokens"]) for r in lines] == [
        ("claude-sonnet-4-6", "1", "10"), ("gpt-5.5", "3", "1012")]


def test_admin_index_links_to_the_report(staff_client):
    assert 'href="/admin/usage/"' in staff_client.get("/admin/").content.decode()


def test_report_costs_a_fixed_number_of_queries(staff_client, world, api_key_factory, usage_factory,
                                                django_assert_max_num_queries):
    for n in range(5):
        extra, _ = api_key_factory(f"user{n}")
        usage_factory(extra, input_tokens=1)
    with django_assert_max_num_queries(11):  # Postgres adds a savepoint, its release and SET LOCAL work_mem
        staff_client.get("/admin/usage/?by=key&period=7d")


def test_report_covers_90_days_and_a_custom_range_of_days(staff_client, world):
    today = timezone.now().date()
    assert staff_client.get("/admin/usage/?by=user&period=90d").context["total"]["requests"] == 4
    response = staff_client.get(f"/admin/usage/?by=model&from={today - timedelta(days=20)}&to={today - timedelta(days=3)}")
    assert response.context["period"] == "custom"
    assert rows(response) == {("gpt-5.5",): [2, 1007, 3, 0, 0]}
    page = response.content.decode()
    assert svg_bars(page) == 18 and f'value="{today - timedelta(days=20)}"' in page
    # Reversed dates are put in order; the CSV link keeps the range.
    swapped = staff_client.get(f"/admin/usage/?by=model&from={today - timedelta(days=3)}&to={today - timedelta(days=20)}")
    assert rows(swapped) == rows(response)
    assert f"from={today - timedelta(days=20)}&amp;to={today - timedelta(days=3)}" in page


def test_report_of_24_hours_is_charted_per_hour(staff_client, world):
    page = staff_client.get("/admin/usage/?by=key&period=24h").content.decode()
    assert svg_bars(page) == 24 and "Tokens per hour" in page


def test_report_groups_by_credential_and_provider(staff_client, api_key_factory, usage_factory, priced_catalog):
    from credentials.models import Credential

    key, _ = api_key_factory("alice")
    account = Credential.objects.create(provider="claude", label="team-max")
    usage_factory(key, credential_id=account.pk, provider="claude", input_tokens=10)
    usage_factory(key, "gpt-5.5", provider="codex", input_tokens=3)
    assert rows(staff_client.get("/admin/usage/?by=credential")) == {(None,): [1, 3, 0, 0, 0],
                                                                     ("claude:team-max",): [1, 10, 0, 0, 0]}
    assert rows(staff_client.get("/admin/usage/?by=provider")) == {("claude",): [1, 10, 0, 0, 0],
                                                                   ("codex",): [1, 3, 0, 0, 0]}


def svg_bars(page):
    chart = page[page.index('<figure class="chart">'):]
    return chart[:chart.index("</svg>")].count("<rect")


RECORDS = "/admin/gateway/usagerecord/"


@pytest.fixture
def many(api_key_factory, usage_factory):
    """30 records: 10 per hour over the last three hours, one of them an upstream error."""
    key, _ = api_key_factory("carol", name="bulk")
    now = timezone.now()
    for n in range(30):
        outcome = "upstream_error" if n == 7 else "ok"
        usage_factory(key, "gpt-5.5(high)" if n % 2 else "claude-sonnet-4-6", at=now - timedelta(minutes=6 * n),
                      outcome=outcome, provider="codex" if n % 2 else "claude", request_id=f"req-{n}")
    return key


def test_record_list_never_counts_the_whole_table(staff_client, many, monkeypatch):
    from gateway import admin as gateway_admin

    monkeypatch.setattr(gateway_admin, "COUNT_CAP", 12)
    monkeypatch.setattr(gateway_admin.UsageRecordAdmin, "list_per_page", 10)
    with CaptureQueriesContext(connection) as queries:
        first = staff_client.get(RECORDS)
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)
    # Past the cap the list shows the table's estimated size and still pages to the end.
    assert first.context["cl"].result_count == 30
    last = staff_client.get(f"{RECORDS}?p=3")
    assert [r.request_id for r in last.context["cl"].result_list] == [f"req-{n}" for n in range(20, 30)]
    assert [r.request_id for r in first.context["cl"].result_list] == [f"req-{n}" for n in range(10)]


def test_record_list_filters_and_exact_search(staff_client, many):
    def ids(query):
        response = staff_client.get(f"{RECORDS}?{query}")
        assert response.status_code == 200
        return sorted(r.request_id for r in response.context["cl"].result_list)

    assert ids("outcome__exact=upstream_error") == ["req-7"]
    assert len(ids("provider=codex")) == 15
    assert len(ids("within=1h")) == 10
    assert ids("q=req-12") == ["req-12"]
    assert len(ids(f"q={many.prefix}")) == 30
    assert len(ids("q=claude-sonnet-4-6")) == 15
    assert ids("q=sonnet") == []  # exact only: a substring search would read every row


def test_raw_records_export_is_streamed_for_the_reports_range(staff_client, many, world):
    response = staff_client.get("/admin/gateway/usagerecord/export/?period=24h")
    lines = list(csv.DictReader(io.StringIO(body(response))))
    assert response["Content-Disposition"] == 'attachment; filename="proxyhub-usage-records-24h.csv"'
    assert len(lines) == 32 and lines[0]["created_at"] <= lines[-1]["created_at"]
    assert {"request_id", "user", "outcome", "input_tokens"} <= set(lines[0])
    one_key = staff_client.get(f"/admin/gateway/usagerecord/export/?period=30d&key={world['bob'].pk}")
    assert [r["input_tokens"] for r in csv.DictReader(io.StringIO(body(one_key)))] == ["1000", "7"]


def test_credentials_page_reads_24h_usage_from_rollups(staff_client, api_key_factory, usage_factory):
    from credentials.models import Credential

    key, _ = api_key_factory("alice")
    account = Credential.objects.create(provider="claude", label="team-max")
    usage_factory(key, credential_id=account.pk, input_tokens=100, output_tokens=20)
    usage_factory(key, credential_id=account.pk, at=timezone.now() - timedelta(hours=30), input_tokens=999)
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get("/admin/credentials/credential/")
    listed = response.context["cl"].result_list
    assert [(c.requests_24h, c.tokens_24h) for c in listed] == [(1, 120)]
    assert not [q for q in queries.captured_queries if "gateway_usagerecord" in q["sql"]]


def test_raw_export_pages_through_records_with_equal_times(many):
    from gateway.admin import in_pages
    from gateway.models import UsageRecord

    moment = timezone.now()
    UsageRecord.objects.filter(request_id__in=[f"req-{n}" for n in range(5, 12)]).update(created_at=moment)
    got = [r[0] for r in in_pages(UsageRecord.objects.all(), ("request_id",), size=3)]
    assert sorted(got) == sorted(UsageRecord.objects.values_list("request_id", flat=True)) and len(got) == 30
