"""Bad input that used to reach a 500 or a 200 (issue 10): it answers 400 in the client's format."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

# Every client format, each on a model of the other family too, so both translators and both passthroughs run.
ROUTES = [
    ("/v1/messages", "claude-sonnet-4-6"), ("/v1/messages", "gpt-5.5"),
    ("/v1/messages/count_tokens", "claude-sonnet-4-6"),
    ("/v1/chat/completions", "claude-sonnet-4-6"), ("/v1/chat/completions", "gpt-5.5"),
    ("/v1/responses", "claude-sonnet-4-6"), ("/v1/responses", "gpt-5.5"),
    ("/backend-api/codex/responses", "gpt-5.5"), ("/v1/responses/compact", "gpt-5.5"),
]


def valid_body(path: str, model: str) -> dict[str, Any]:
    if "/messages" in path:
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return body if path.endswith("count_tokens") else {**body, "max_tokens": 50}
    if path.endswith("/chat/completions"):
        return {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return {"model": model, "input": "hi"}


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def assert_client_error(path: str, r: httpx.Response, needle: str) -> dict[str, Any]:
    assert r.status_code == 400, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    payload = r.json()
    if "/messages" in path:
        assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    else:
        assert payload["error"]["type"] == "invalid_request_error"
    assert needle in payload["error"]["message"], payload
    return payload


@pytest.fixture
def key(api_key_factory: Any, credential_factory: Any) -> str:
    credential_factory("claude")
    credential_factory("codex")
    return api_key_factory()[1]


@pytest.mark.parametrize("path, model", ROUTES, ids=[f"{p}-{m}" for p, m in ROUTES])
def test_a_body_nested_100000_levels_deep_is_a_400(gateway: str, key: str, path: str, model: str) -> None:
    raw = valid_body(path, model)
    text = httpx.Request("POST", "/", json=raw).content.decode()
    body = text[:-1] + ',"metadata":' + nested(100_000) + "}"  # the whole body stays one JSON object
    r = httpx.post(gateway + path, content=body, timeout=30,
                   headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    assert_client_error(path, r, "nested too deeply")


@pytest.mark.parametrize("path, model", ROUTES, ids=[f"{p}-{m}" for p, m in ROUTES])
def test_a_body_just_under_the_parsers_depth_limit_is_not_a_500(gateway: str, key: str, path: str, model: str) -> None:
    """1,000 levels parse (orjson stops at 1,024) but are deeper than Python recursion goes: the
    translators and the encoder fail later, and that still answers the client's 400."""
    raw = valid_body(path, model)
    text = httpx.Request("POST", "/", json=raw).content.decode()
    if "/messages" in path:  # deep inside a tool schema, which every translator copies
        deep = '"tools":[{"name":"t","input_schema":{"type":"object","properties":' + nested(1000) + "}}]"
    elif path.endswith("/chat/completions"):
        deep = ('"tools":[{"type":"function","function":{"name":"t","parameters":{"type":"object","properties":'
                + nested(1000) + "}}}]")
    else:
        deep = '"tools":[{"type":"function","name":"t","parameters":{"type":"object","properties":' + nested(1000) + "}}]"
    r = httpx.post(gateway + path, content=text[:-1] + "," + deep + "}", timeout=30,
                   headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    assert_client_error(path, r, "nested too deeply")


@pytest.mark.parametrize("path, model", [("/v1/responses", "claude-sonnet-4-6"), ("/v1/responses", "gpt-5.5"),
                                         ("/backend-api/codex/responses", "gpt-5.5")])
@pytest.mark.parametrize("stream", [False, True])
def test_responses_without_input_is_openais_400(gateway: str, key: str, fake: Any, path: str, model: str,
                                                 stream: bool) -> None:
    r = httpx.post(gateway + path, json={"model": model, "stream": stream, "instructions": "Be terse."},
                   headers={"authorization": f"Bearer {key}"}, timeout=30)
    payload = assert_client_error(path, r, "Missing required parameter: 'input'.")
    assert payload["error"]["param"] == "input" and payload["error"]["code"] == "missing_required_parameter"
    row = wait_for_usage(1, timeout=30)[0]
    assert row.status_code == 400 and row.error_type == "missing_required_parameter"
    # a null input is missing too; an empty list is a (warm-up style) input and is not refused here
    r = httpx.post(gateway + path, json={"model": model, "input": None},
                   headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert_client_error(path, r, "Missing required parameter: 'input'.")


def test_a_wrong_key_is_told_first(gateway: str) -> None:
    r = httpx.post(gateway + "/v1/responses", json={"model": "gpt-5.5"}, headers={"authorization": "Bearer nope"})
    assert r.status_code == 401
