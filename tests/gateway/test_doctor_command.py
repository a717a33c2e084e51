"""``manage.py doctor``: each model a key may use, checked through the gateway over HTTP against the fakes."""
from __future__ import annotations

import io
import socket
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)


def doctor(*args: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("doctor", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue() + str(exc), exc.returncode
    return out.getvalue(), 0


def lines_for(output: str, model: str) -> str:
    """The line of ``model``'s result and its Fix: line, if any."""
    lines = output.splitlines()
    at = next(i for i, line in enumerate(lines) if f" {model} " in line)
    follow = lines[at + 1] if at + 1 < len(lines) and "Fix:" in lines[at + 1] else ""
    return lines[at] + "\n" + follow


def test_every_allowed_model_ok_and_usage_rows_marked_as_checks(
        gateway: str, settings: Any, api_key_factory: Any, credential_factory: Any) -> None:
    settings.PROXYHUB_PUBLIC_URL = gateway
    credential_factory("claude")
    credential_factory("codex")
    api_key, raw = api_key_factory(models=["claude-sonnet-4-6", "gpt-5.5"])
    output, code = doctor(api_key.prefix, "--key", raw)
    assert code == 0, output
    for model, path in (("claude-sonnet-4-6", "/v1/messages"), ("gpt-5.5", "/v1/responses")):
        line = lines_for(output, model)
        assert line.startswith("ok") and path in line and "with a tool call" in line, output
    assert "2 of 2 models ok." in output
    assert raw not in output
    records = wait_for_usage(2)
    assert sorted(r.requested_model for r in records) == ["claude-sonnet-4-6", "gpt-5.5"]
    assert all(r.is_check and r.stream and r.status_code == 200 for r in records)
    assert {r.endpoint for r in records} == {"messages", "responses"}


def test_ordinary_requests_are_not_marked(gateway: str, api_key_factory: Any, credential_factory: Any) -> None:
    import httpx

    credential_factory("claude")
    _, raw = api_key_factory()
    response = httpx.post(f"{gateway}/v1/messages", headers={"x-api-key": raw, "anthropic-version": "2023-06-01"},
                          json={"model": "claude-sonnet-4-6", "max_tokens": 10,
                                "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    (record,) = wait_for_usage(1)
    assert record.is_check is False


def test_a_model_without_ready_account(gateway: str, settings: Any, api_key_factory: Any,
                                       credential_factory: Any) -> None:
    settings.PROXYHUB_PUBLIC_URL = gateway
    credential_factory("claude")  # no ChatGPT account at all
    api_key, raw = api_key_factory(models=["claude-sonnet-4-6", "gpt-5.5"])
    output, code = doctor(api_key.prefix, "--key", raw)
    assert code == 1
    assert lines_for(output, "claude-sonnet-4-6").startswith("ok")
    gpt = lines_for(output, "gpt-5.5")
    assert gpt.startswith("FAIL") and "No ready account" in gpt and "admin → Credentials" in gpt, output
    assert "1 of 2 models failed." in output


def test_a_disallowed_model(gateway: str, settings: Any, api_key_factory: Any, credential_factory: Any) -> None:
    settings.PROXYHUB_PUBLIC_URL = gateway
    credential_factory("claude")
    api_key, raw = api_key_factory(models=["claude-sonnet-4-6"])
    output, code = doctor(api_key.prefix, "--key", raw, "--model", "claude-opus-4-6", "--model", "claude-sonnet-4-6")
    assert code == 1
    opus = lines_for(output, "claude-opus-4-6")
    assert opus.startswith("FAIL") and "may not use claude-opus-4-6" in opus and "allowed models" in opus, output
    assert lines_for(output, "claude-sonnet-4-6").startswith("ok")


def test_wrong_base_url_refused_connection_and_not_proxyhub(gateway: str, settings: Any, api_key_factory: Any,
                                                             credential_factory: Any) -> None:
    credential_factory("claude")
    api_key, raw = api_key_factory(models=["claude-sonnet-4-6"])
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings.PROXYHUB_PUBLIC_URL = closed
    output, code = doctor(api_key.prefix, "--key", raw)
    assert code == 1
    assert f"The base URL {closed} does not reach ProxyHub (connection failed)" in output
    assert "PROXYHUB_PUBLIC_URL" in output
    # Reaches a server, but the path is not ProxyHub's /v1 (a base URL with an extra path): Django's 404 page.
    output, code = doctor(api_key.prefix, "--key", raw, "--base-url", f"{gateway}/proxy")
    assert code == 1
    assert f"The base URL {gateway}/proxy does not reach ProxyHub (404 at /v1/messages)" in output, output


def test_the_key_from_the_environment_and_a_wrong_key(gateway: str, settings: Any, monkeypatch: Any,
                                                      api_key_factory: Any, credential_factory: Any) -> None:
    settings.PROXYHUB_PUBLIC_URL = gateway
    credential_factory("claude")
    api_key, raw = api_key_factory(models=["claude-sonnet-4-6"])
    monkeypatch.setenv("PROXYHUB_KEY", raw)
    output, code = doctor(api_key.prefix)
    assert code == 0 and "1 of 1 models ok." in output
    output, code = doctor(api_key.prefix, "--key", raw[:-1] + ("x" if raw[-1] != "x" else "y"))
    assert code == 1 and f"That is not the key {api_key.prefix}" in output


def test_a_limit_reached(gateway: str, settings: Any, api_key_factory: Any, credential_factory: Any) -> None:
    import httpx

    settings.PROXYHUB_PUBLIC_URL = gateway
    credential_factory("claude")
    api_key, raw = api_key_factory(models=["claude-sonnet-4-6"])
    api_key.requests_per_minute = 1
    api_key.save()
    response = httpx.post(f"{gateway}/v1/messages", headers={"x-api-key": raw, "anthropic-version": "2023-06-01"},
                          json={"model": "claude-sonnet-4-6", "max_tokens": 10,
                                "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200  # the minute's one request
    output, code = doctor(api_key.prefix, "--key", raw)
    assert code == 1
    line = lines_for(output, "claude-sonnet-4-6")
    assert line.startswith("FAIL") and "A limit was reached" in line and "set_limits" in line, output


def test_the_upstream_refusing(gateway: str, settings: Any, fake: Any, api_key_factory: Any,
                               credential_factory: Any) -> None:
    settings.PROXYHUB_PUBLIC_URL = gateway
    credential_factory("codex")
    api_key, raw = api_key_factory(models=["gpt-5.5"])
    fake.add_fault("codex", "bad_request")
    output, code = doctor(api_key.prefix, "--key", raw)
    assert code == 1
    line = lines_for(output, "gpt-5.5")
    assert line.startswith("FAIL") and "The upstream refused the request (400)" in line, output
    assert "admin → Credentials" in line
