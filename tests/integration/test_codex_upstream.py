"""The ChatGPT Codex upstream through real HTTP (PROTOCOLS.md §5.3-§5.8).

Aggregation for stream:false clients, token refresh, usage-limit cooldowns,
plans without Codex, FastAPI-style 400s, x-codex-* windows, in-stream
failures, the headers the backend needs, and importing Codex token files.
"""
from __future__ import annotations

import io
import json
import time
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any

import anthropic
import httpx
import openai
import pytest
from django.utils import timezone
from django.core.management import call_command

from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "gpt-5.5"
PATHS = {"responses": "/v1/responses", "chat": "/v1/chat/completions", "anthropic": "/v1/messages"}


@pytest.fixture
def key(api_key_factory):
    return api_key_factory(models=["gpt-*"])[1]


def body_for(client_format: str, text: str = "hi", *, stream: bool = False) -> dict[str, Any]:
    if client_format == "responses":
        return {"model": MODEL, "input": text, "stream": stream}
    if client_format == "chat":
        return {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream}
    return {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": text}], "stream": stream}


def post(gateway: str, key: str, client_format: str = "responses", body: dict[str, Any] | None = None,
         path: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(gateway + (path or PATHS[client_format]), json=body or body_for(client_format),
                      headers={"authorization": f"Bearer {key}", **(headers or {})}, timeout=30)


def stream_events(gateway: str, key: str, client_format: str, text: str = "hi") -> tuple[int, list[tuple[str, Any]]]:
    with httpx.stream("POST", gateway + PATHS[client_format], json=body_for(client_format, text, stream=True),
                      headers={"authorization": f"Bearer {key}"}, timeout=30) as r:
        raw = r.read().decode()
    events = []
    for chunk in raw.split("\n\n"):
        name = next((line[6:].strip() for line in chunk.split("\n") if line.startswith("event:")), "")
        data = "\n".join(line[5:].lstrip() for line in chunk.split("\n") if line.startswith("data:"))
        if data:
            events.append((name, data if data == "[DONE]" else json.loads(data)))
    return r.status_code, events


def output_text(response: dict[str, Any]) -> str:
    return "".join(p["text"] for i in response["output"] if i["type"] == "message" for p in i["content"])


# -- routing and aggregation ------------------------------------------------------------------

def test_backend_api_codex_responses_alias_serves_codex_cli_base_urls(gateway, key, credential_factory, fake):
    credential_factory("codex")
    # A Codex CLI whose base_url is the gateway root + /backend-api/codex, as for chatgpt.com.
    with openai.OpenAI(base_url=gateway + "/backend-api/codex", api_key=key, max_retries=0) as client:
        with client.responses.stream(model=MODEL, input="Via the alias") as s:
            streamed = s.get_final_response()
        created = client.responses.create(model=MODEL, input="Via the alias, once more")
    assert streamed.output_text == "Echo: Via the alias"
    assert created.output_text == "Echo: Via the alias, once more"
    assert [r.path for r in fake.requests("codex")] == ["/backend-api/codex/responses"] * 2
    assert [r.endpoint for r in wait_for_usage(2)] == ["responses", "responses"]


def test_non_stream_responses_client_gets_the_aggregated_response(gateway, key, credential_factory, fake):
    credential_factory("codex")
    with openai.OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0) as client:
        response = client.responses.create(model=MODEL, input="Aggregate me", max_output_tokens=500,
                                           temperature=0.3, prompt_cache_key="sess-1")
    assert response.status == "completed"
    assert [i.type for i in response.output] == ["reasoning", "message"]
    assert response.output_text == "Echo: Aggregate me"
    reported = fake.last_usage("codex")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (reported["input_tokens"],
                                                                           reported["output_tokens"])
    assert response.usage.input_tokens_details.cached_tokens == reported["input_tokens_details"]["cached_tokens"] > 0

    sent = fake.requests("codex")[-1].json
    assert sent["stream"] is True and sent["store"] is False and sent["instructions"] == ""
    assert not {"max_output_tokens", "temperature"} & set(sent)
    [record] = wait_for_usage(1)
    assert record.stream is False and record.outcome == "ok"
    cached = reported["input_tokens_details"]["cached_tokens"]
    assert (record.input_tokens, record.cache_read_tokens) == (reported["input_tokens"] - cached, cached)


@pytest.mark.parametrize("client_format", ["responses", "chat", "anthropic"])
def test_completed_event_with_empty_output_is_rebuilt_from_the_streamed_items(
        client_format, gateway, key, credential_factory, fake):
    credential_factory("codex")
    fake.add_fault("codex", "empty_output")
    r = post(gateway, key, client_format, body_for(client_format, "Rebuild me"))
    assert r.status_code == 200, r.text
    assert fake.pending_faults("codex") == 0
    reply = r.json()
    if client_format == "responses":
        assert [i["type"] for i in reply["output"]] == ["reasoning", "message"]
        assert all(i["id"] for i in reply["output"])
        assert output_text(reply) == "Echo: Rebuild me"
        assert reply["usage"]["output_tokens"] == fake.last_usage("codex")["output_tokens"]
    elif client_format == "chat":
        assert reply["choices"][0]["message"]["content"] == "Echo: Rebuild me"
        assert reply["choices"][0]["finish_reason"] == "stop"
    else:
        assert [b["type"] for b in reply["content"]] == ["thinking", "text"]
        assert reply["content"][1]["text"] == "Echo: Rebuild me" and reply["stop_reason"] == "end_turn"


def test_empty_output_with_a_function_call_keeps_the_call(gateway, key, credential_factory, fake):
    credential_factory("codex")
    fake.add_fault("codex", "empty_output")
    tools = [{"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    r = post(gateway, key, body={"model": MODEL, "input": "Use the tool for Paris", "tools": tools})
    assert r.status_code == 200, r.text
    [call] = [i for i in r.json()["output"] if i["type"] == "function_call"]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    assert call["id"].startswith("fc_") and call["call_id"].startswith("call_")


# -- credentials: refresh, limits, plans ---------------------------------------------------------

def test_401_refreshes_through_the_codex_token_endpoint_and_retries(gateway, key, credential_factory, fake):
    credential = credential_factory("codex")
    old_access, old_refresh = credential.access_token, credential.refresh_token
    fake.expire_access_token(old_access)

    r = post(gateway, key)
    assert r.status_code == 200, r.text
    assert output_text(r.json()) == "Echo: hi"

    [grant] = fake.token_requests("codex")
    assert grant.json is None and grant.form is not None  # form-encoded, as CLIProxyAPI does (§5.4)
    assert grant.form["grant_type"] == "refresh_token"
    assert grant.form["refresh_token"] == old_refresh
    assert grant.form["client_id"] == "app_EMoamEEZ73f0CkXaXp7hrann"

    credential.refresh_from_db()
    assert credential.access_token != old_access and credential.refresh_token != old_refresh
    assert credential.token_version == 1 and credential.status == "active"
    assert credential.account_id == "acct-1"  # kept from the new id_token's claims
    calls = fake.requests("codex")
    assert [c.status for c in calls] == [401, 200]
    assert calls[1].headers["authorization"] == f"Bearer {credential.access_token}"


def test_usage_limit_cools_the_credential_down_until_resets_at_and_the_next_serves(
        gateway, key, credential_factory, fake):
    first, second = credential_factory("codex"), credential_factory("codex")
    resets_at = int(time.time()) + 5400
    fake.add_fault("codex", "usage_limit", token=first.access_token, times=5, resets_at=resets_at)

    for _ in range(3):
        r = post(gateway, key)
        assert r.status_code == 200, r.text
    assert fake.counter("codex.fault.usage_limit") == 1  # cooling down: not asked again

    first.refresh_from_db()
    reset = datetime.fromtimestamp(resets_at, tz=dt_timezone.utc)
    assert reset - timedelta(seconds=5) <= first.cooldown_until <= reset + timedelta(seconds=10)
    assert "usage_limit_reached" in first.cooldown_reason
    assert first.status == "active"
    served = {r.headers["authorization"] for r in fake.requests("codex") if r.status == 200}
    assert served == {f"Bearer {second.access_token}"}
    assert {r.credential_id for r in wait_for_usage(3)} == {second.pk}


def test_usage_limit_on_every_credential_gives_429_with_retry_after(gateway, key, credential_factory, fake):
    only = credential_factory("codex")
    fake.add_fault("codex", "usage_limit", token=only.access_token, resets_in_seconds=7200)
    r = post(gateway, key, "chat")
    assert r.status_code == 429
    assert 7000 < int(r.headers["retry-after"]) <= 7300
    assert r.json()["error"]["type"] == "rate_limit_exceeded"


def test_plan_without_codex_disables_the_credential_with_a_reason(gateway, key, credential_factory, fake):
    first, second = credential_factory("codex"), credential_factory("codex")
    fake.add_fault("codex", "usage_not_included", token=first.access_token, times=5)
    for _ in range(3):
        assert post(gateway, key).status_code == 200
    assert fake.counter("codex.fault.usage_not_included") == 1

    first.refresh_from_db()
    assert first.status == "disabled"
    assert "usage_not_included" in first.status_reason and "does not include Codex" in first.status_reason
    served = {r.headers["authorization"] for r in fake.requests("codex") if r.status == 200}
    assert served == {f"Bearer {second.access_token}"}


@pytest.mark.parametrize("client_format", ["responses", "chat", "anthropic"])
def test_detail_400_reaches_the_client_in_its_format_without_cooldown(
        client_format, gateway, key, credential_factory, fake):
    credential = credential_factory("codex")
    fake.add_fault("codex", "bad_request", msg="Instructions are not valid")
    r = post(gateway, key, client_format)
    assert r.status_code == 400
    if client_format == "anthropic":
        assert r.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                       "message": "Instructions are not valid"}}
    else:
        error = r.json()["error"]
        assert error["message"] == "Instructions are not valid" and error["type"] == "invalid_request_error"
    assert len(fake.requests("codex")) == 1  # not retried on another credential
    credential.refresh_from_db()
    assert credential.cooldown_until is None and credential.status == "active"
    [record] = wait_for_usage(1)
    assert (record.status_code, record.outcome) == (400, "upstream_error")


def test_x_codex_headers_are_saved_as_the_credentials_windows(gateway, key, credential_factory, fake):
    credential = credential_factory("codex")
    fake.set_utilization("codex", five_hour=0.25, seven_day=0.6)
    assert post(gateway, key).status_code == 200

    # Written after the response, off the hot path.
    assert fake.wait_for(lambda: type(credential).objects.get(pk=credential.pk).windows != {})
    credential.refresh_from_db()
    windows = credential.windows
    assert windows["5h"]["utilization"] == pytest.approx(0.25) and windows["5h"]["window_minutes"] == 300
    assert windows["7d"]["utilization"] == pytest.approx(0.6) and windows["7d"]["window_minutes"] == 10080
    assert time.time() < windows["5h"]["reset"] < windows["7d"]["reset"]
    assert windows["plan"] == "plus"
    assert credential.last_used_at is not None


# -- failures inside the stream -------------------------------------------------------------------

@pytest.mark.parametrize("client_format", ["responses", "chat", "anthropic"])
def test_response_failed_mid_stream_becomes_an_error_event_in_the_client_format(
        client_format, gateway, key, credential_factory, fake):
    credential = credential_factory("codex")
    fake.add_fault("codex", "failed", code="context_length_exceeded")
    status, events = stream_events(gateway, key, client_format)
    assert status == 200
    message = "Your input exceeds the context window of this model."
    if client_format == "responses":
        name, data = events[-1]
        assert name == "response.failed" and data["response"]["status"] == "failed"
        assert data["response"]["error"] == {"code": "context_length_exceeded", "message": message}
        assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    elif client_format == "chat":
        assert events[-1][1] == "[DONE]"
        error = events[-2][1]["error"]
        assert error["message"] == message and error["code"] == "context_length_exceeded"
        assert error["type"] == "invalid_request_error"
    else:
        name, data = events[-1]
        assert name == "error" and data["error"] == {"type": "invalid_request_error", "message": message}
        assert events[0][0] == "message_start"
        assert not any(n == "message_stop" for n, _ in events)
    [record] = wait_for_usage(1)
    assert record.outcome == "upstream_error" and record.error_type == "context_length_exceeded"
    credential.refresh_from_db()
    assert credential.cooldown_until is None  # the request was bad, not the account


def test_response_failed_mid_stream_reaches_the_openai_sdk_as_response_failed(gateway, key, credential_factory, fake):
    credential_factory("codex")
    fake.add_fault("codex", "failed", code="context_length_exceeded")  # about the request: no failover
    with openai.OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0) as client:
        with client.responses.stream(model=MODEL, input="hi") as s:
            kinds = [event.type for event in s]
    assert kinds[-1] == "response.failed"


def test_response_failed_for_a_non_stream_client_is_a_502(gateway, key, credential_factory, fake):
    credential_factory("codex")
    fake.add_fault("codex", "failed", code="server_error")
    with anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError) as info:
            client.messages.create(**body_for("anthropic"))
    assert info.value.status_code == 502
    assert info.value.body["error"]["type"] == "api_error"


def test_stream_dropped_before_completion_ends_with_an_error_event(gateway, key, credential_factory, fake):
    credential_factory("codex")
    fake.add_fault("codex", "drop_mid_stream")
    status, events = stream_events(gateway, key, "responses")
    assert status == 200
    assert events[-1][0] == "response.failed"
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    [record] = wait_for_usage(1)
    assert record.outcome == "upstream_error"


# -- what the backend is sent ---------------------------------------------------------------------

def test_upstream_headers_carry_account_id_originator_and_session(gateway, key, credential_factory, fake):
    credential = credential_factory("codex")
    with openai.OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0) as client:
        client.responses.create(model=MODEL, input="Headers please")
        client.responses.create(model=MODEL, input="Headers again")
        client.responses.create(model=MODEL, input="With my session", prompt_cache_key="pck-1",
                                extra_headers={"session_id": "3f0c2a5e-6d1b-4c8e-9a7f-2b1d0e4c5a6b",
                                               "originator": "codex_exec"})
    first, second, third = fake.requests("codex")
    for sent in (first, second, third):
        assert sent.headers["chatgpt-account-id"] == credential.account_id == "acct-1"
        assert sent.headers["authorization"] == f"Bearer {credential.access_token}"
        assert sent.headers["accept"] == "text/event-stream"
        assert sent.headers["user-agent"].startswith("codex_cli_rs/")
        assert not any(name.lower().startswith("x-stainless") for name in sent.headers)
    assert first.headers["originator"] == "codex_cli_rs"
    uuid.UUID(first.headers["session_id"])
    assert first.headers["session_id"] == second.headers["session_id"]  # stable per key: caches stay warm
    assert third.headers["originator"] == "codex_exec"
    assert third.headers["session_id"] == "3f0c2a5e-6d1b-4c8e-9a7f-2b1d0e4c5a6b"
    assert third.json["prompt_cache_key"] == "pck-1"


# -- importing Codex token files -----------------------------------------------------------------

def test_import_credentials_reads_codex_cli_auth_json_and_cliproxyapi_files(tmp_path, gateway, key, fake):
    from credentials.models import Credential

    cli = fake.issue_codex_tokens(email="dev@example.com", account_id="acct-cli", plan="pro")
    auth_json = tmp_path / "auth.json"
    auth_json.write_text(json.dumps({
        "OPENAI_API_KEY": None, "auth_mode": "chatgpt", "last_refresh": "2026-11-20T10:00:00Z",
        "tokens": {"id_token": cli["id_token"], "access_token": cli["access_token"],
                   "refresh_token": cli["refresh_token"], "account_id": "acct-cli"}}))
    proxy = fake.issue_codex_tokens(email="team@example.com", account_id="acct-team", plan="team")
    cliproxy = tmp_path / "codex-team@example.com-team.json"
    cliproxy.write_text(json.dumps({
        "type": "codex", "id_token": proxy["id_token"], "access_token": proxy["access_token"],
        "refresh_token": proxy["refresh_token"], "account_id": "acct-team", "email": "team@example.com",
        "last_refresh": "2026-11-20T10:00:00Z", "expired": "2026-11-30T10:00:00Z"}))

    out = io.StringIO()
    call_command("import_credentials", str(auth_json), str(cliproxy), stdout=out, stderr=io.StringIO())
    assert out.getvalue().count("imported codex credential") == 2
    assert cli["access_token"] not in out.getvalue() and cli["refresh_token"] not in out.getvalue()

    imported = {c.account_id: c for c in Credential.objects.filter(provider="codex")}
    assert set(imported) == {"acct-cli", "acct-team"}
    assert (imported["acct-cli"].email, imported["acct-cli"].plan) == ("dev@example.com", "pro")
    assert (imported["acct-team"].email, imported["acct-team"].plan) == ("team@example.com", "team")
    for credential in imported.values():
        assert credential.status == "active" and credential.expires_at is not None
        assert credential.expires_at > datetime.now(dt_timezone.utc)

    # Both are usable at once: the account id reaches the backend.
    for _ in range(2):
        assert post(gateway, key).status_code == 200
    assert {r.headers["chatgpt-account-id"] for r in fake.requests("codex")} == {"acct-cli", "acct-team"}


def test_a_quota_failure_at_the_start_of_the_stream_fails_over_before_any_byte(
        gateway, key, credential_factory, fake):
    spent, healthy = credential_factory("codex"), credential_factory("codex")
    fake.add_fault("codex", "failed", token=spent.access_token, code="rate_limit_exceeded",
                   message="Rate limit reached. Please try again in 20s.")
    for _ in range(2):  # whichever credential the rotation picks first, the stream succeeds
        with openai.OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0) as client:
            with client.responses.stream(model=MODEL, input="hi") as s:
                assert s.get_final_response().status == "completed"
    spent.refresh_from_db()
    assert spent.cooldown_until is not None
    assert 10 < (spent.cooldown_until - timezone.now()).total_seconds() <= 21
    assert fake.requests("codex")[-1].headers["authorization"] == f"Bearer {healthy.access_token}"


def test_a_failed_aggregation_leaves_exactly_one_usage_record(gateway, key, credential_factory, fake):
    from tests.conftest import wait_for_usage

    credential_factory("codex")
    fake.add_fault("codex", "failed", code="context_length_exceeded")
    r = httpx.post(gateway + "/v1/responses", json={"model": MODEL, "input": "hi"},
                   headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 502

    time.sleep(0.5)  # a second, duplicate record would be flushed by now
    records = wait_for_usage(1)
    assert len(records) == 1 and records[0].outcome == "upstream_error"
