"""x-request-id: on every /v1 response (the client's own if sane, else ours), in the usage row and the log lines."""
from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import wait_for_usage
from tests.servers import daphne, server_env, session_database_url

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
OURS = re.compile(r"req_[0-9a-f]{32}")


def test_a_clients_own_id_is_echoed_and_stored_in_its_usage_row(gateway, api_key_factory, credential_factory):
    credential_factory()
    _, key = api_key_factory()
    r = httpx.post(gateway + "/v1/messages", json=BODY, headers={"x-api-key": key, "x-request-id": "trace-42.a:b"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-42.a:b"
    [row] = wait_for_usage(1)
    assert row.request_id == "trace-42.a:b"


def test_without_one_every_response_gets_its_own_new_id_streams_included(gateway, api_key_factory,
                                                                        credential_factory):
    credential_factory()
    credential_factory("codex")
    _, key = api_key_factory()
    ids = []
    with httpx.stream("POST", gateway + "/v1/messages", json={**BODY, "stream": True},
                      headers={"x-api-key": key}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        ids.append(r.headers["x-request-id"])
        assert "message_stop" in r.read().decode()
    with httpx.stream("POST", gateway + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                      json={"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as r:
        assert r.status_code == 200
        ids.append(r.headers["x-request-id"])
        assert "[DONE]" in r.read().decode()
    assert all(OURS.fullmatch(i) for i in ids) and ids[0] != ids[1]
    assert sorted(row.request_id for row in wait_for_usage(2)) == sorted(ids)


@pytest.mark.parametrize("sent", [None, "client-7"])
def test_errors_carry_the_id_too(gateway, api_key_factory, sent):
    _, key = api_key_factory(models=["claude-*"])
    extra = {"x-request-id": sent} if sent else {}
    answers = [
        httpx.post(gateway + "/v1/messages", json=BODY, headers=extra),  # 401, no key
        httpx.post(gateway + "/v1/messages", json=BODY, headers={"x-api-key": "sk-ph-wrong", **extra}),  # 401
        httpx.post(gateway + "/v1/messages", content=b"{nope", headers={"x-api-key": key, **extra}),  # 400
        httpx.post(gateway + "/v1/messages", json={**BODY, "model": "claude-9"}, headers={"x-api-key": key, **extra}),
        httpx.post(gateway + "/v1/messages", json={**BODY, "model": "gpt-5.5"}, headers={"x-api-key": key, **extra}),
        httpx.post(gateway + "/v1/nothing-here", json=BODY, headers=extra),  # 404 unknown endpoint
        httpx.post(gateway + "/messages", json=BODY, headers=extra),  # 404 hint to add /v1
        httpx.get(gateway + "/v1/messages", headers=extra),  # 405
        httpx.get(gateway + "/v1/models", headers={"x-api-key": key, **extra}),  # 200
        httpx.post(gateway + "/v1/messages", json=BODY, headers={"x-api-key": key, **extra}),  # 503, no account
    ]
    assert [r.status_code for r in answers] == [401, 401, 400, 404, 403, 404, 404, 405, 200, 503]
    ids = [r.headers.get("x-request-id") for r in answers]
    if sent:
        assert ids == [sent] * len(answers)
    else:
        assert all(i and OURS.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    stored = {row.status_code: row.request_id for row in wait_for_usage(3)}  # the refused ones with a key
    assert stored == {404: ids[3], 403: ids[4], 503: ids[9]}


@pytest.mark.parametrize("sent", ["has space", "x" * 129, "-leading-dash", "quote\"d"])
def test_an_id_that_does_not_look_like_one_is_replaced(gateway, sent):
    r = httpx.post(gateway + "/v1/messages", json=BODY, headers={"x-request-id": sent})
    assert r.status_code == 401 and OURS.fullmatch(r.headers["x-request-id"])


def test_upstream_ids_pass_under_their_own_names_and_never_as_ours(gateway, api_key_factory, credential_factory):
    credential_factory()
    credential_factory("codex")
    _, key = api_key_factory()
    claude = httpx.post(gateway + "/v1/messages", json=BODY, headers={"x-api-key": key, "x-request-id": "mine-1"})
    assert claude.headers["request-id"].startswith("req_011C") and claude.headers["x-request-id"] == "mine-1"
    codex = httpx.post(gateway + "/v1/responses", headers={"authorization": f"Bearer {key}", "x-request-id": "mine-2"},
                       json={"model": "gpt-5.5", "input": "hi"})
    assert codex.status_code == 200
    assert codex.headers.get_list("x-request-id") == ["mine-2"]
    assert codex.headers["x-upstream-request-id"].startswith("req_")
    wait_for_usage(2)


def test_a_servers_log_lines_about_a_request_name_its_id(catalog_seeded, fake, api_key_factory,
                                                         credential_factory):
    credential_factory()
    credential_factory()
    _, key = api_key_factory()
    fake.add_fault("claude", "rate_limited", times=1)  # the first account fails over: a warning line
    env = server_env(fake, session_database_url(), PROXYHUB_BACKGROUND_REFRESH="false")
    with daphne(env) as server:
        r = httpx.post(server.url + "/v1/messages", json=BODY, headers={"x-api-key": key, "x-request-id": "log-me-1"},
                       timeout=30)
        assert r.status_code == 200
        quiet = httpx.post(server.url + "/v1/messages", json=BODY, headers={"x-api-key": key}, timeout=30)
        assert quiet.status_code == 200
    failed = [line for line in server.output.splitlines() if "credential" in line and "failed" in line]
    assert len(failed) == 1 and "[log-me-1]: credential" in failed[0], server.output
    assert quiet.headers["x-request-id"] not in server.output
