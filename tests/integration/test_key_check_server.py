"""The Check button on one real daphne process: the page's view calls that same process's /v1, so a view
holding the only thread the /v1 path needs would hang here. No PROXYHUB_PUBLIC_URL: the page's own address."""
from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from django.test import Client

from tests.servers import daphne, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)


def test_check_button_on_a_single_daphne_process(catalog_seeded: None, fake: Any, api_key_factory: Any,
                                                 credential_factory: Any) -> None:
    credential_factory("claude")
    api_key, raw = api_key_factory("alice", models=["claude-sonnet-4-6"])
    login = Client()
    login.force_login(api_key.user)  # a database session the server process reads too
    cookies = {"sessionid": login.cookies["sessionid"].value}
    env = server_env(fake, session_database_url(), PROXYHUB_PUBLIC_URL="", PROXYHUB_BACKGROUND_REFRESH="false")
    with daphne(env) as server, httpx.Client(base_url=server.url, cookies=cookies, timeout=30) as http:
        page = http.get(f"/me/keys/{api_key.pk}/check/")
        assert page.status_code == 200, page.text[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        result = http.post(f"/me/keys/{api_key.pk}/check/", data={"key": raw, "csrfmiddlewaretoken": token},
                           headers={"X-Requested-With": "fetch", "Referer": server.url + "/me/"})
        assert result.status_code == 200, result.text[:500]
        assert 'class="check-ok" data-model="claude-sonnet-4-6"' in result.text
        assert server.url in result.text  # checked through the address the page was reached at
