"""The Responses API over WebSocket (PROTOCOLS.md §3.7), end to end with a real WebSocket client.

aiohttp's ws_connect against the gateway (uvicorn in-process, and a daphne process) and the fake
upstreams: both model families, several responses on one connection, a tool round trip where the
second response carries only the new items, warm-ups, errors in the frame shape Codex reads,
a client that hangs up mid-response, and the usage rows.
"""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import wait_for_usage
from tests.servers import ROOT, daphne, server_env

pytestmark = pytest.mark.django_db(transaction=True)

GPT, CLAUDE = "gpt-5.5", "claude-sonnet-4-6"
TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def ws_url(base: str, path: str = "/v1/responses") -> str:
    return base.replace("http://", "ws://") + path


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def create(model: str, items: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A response.create message as Codex CLI sends it (no instructions, store false, streaming)."""
    return {"type": "response.create", "model": model, "input": items, "store": False, "stream": True,
            "tools": [], "tool_choice": "auto", "parallel_tool_calls": False,
            "include": ["reasoning.encrypted_content"], **fields}


class Client:
    """One WebSocket connection; respond() sends a message and collects frames up to the response's end."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def respond(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        await self.ws.send_str(json.dumps(message))
        frames: list[dict[str, Any]] = []
        while True:
            msg = await self.ws.receive(timeout=20)
            assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, frames)
            frame = json.loads(msg.data)
            if frame["type"] == "keepalive":
                continue
            frames.append(frame)
            if frame["type"] in TERMINAL:
                return frames


async def connected(base: str, key: str, path: str = "/v1/responses", **headers: str) -> tuple[aiohttp.ClientSession, Client]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(ws_url(base, path), headers={
        "authorization": f"Bearer {key}", "openai-beta": "responses_websockets=2026-02-06",
        "originator": "codex_exec", "session-id": "0199aaaa-bbbb-cccc-dddd-eeeeeeeeeeee", **headers})
    return session, Client(ws)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")


def completed(frames: list[dict[str, Any]]) -> dict[str, Any]:
    assert frames[-1]["type"] == "response.completed", frames[-1]
    return frames[-1]["response"]


@pytest.fixture
def key(api_key_factory):
    return api_key_factory(models=["gpt-*", "claude-*"])[1]


@pytest.fixture
def accounts(credential_factory):
    credential_factory("claude")
    credential_factory("codex")


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_several_responses_stream_in_sequence_on_one_connection(gateway, key, accounts, fake, model):
    async def talk() -> list[list[dict[str, Any]]]:
        session, client = await connected(gateway, key)
        async with session:
            return [await client.respond(create(model, [user("first")])),
                    await client.respond(create(model, [user("second")]))]

    first, second = run(talk())
    for frames, word in ((first, "first"), (second, "second")):
        assert frames[0]["type"] == "response.created"
        assert text_of(frames) == f"Echo: {word}"
        done = completed(frames)
        assert done["usage"]["output_tokens"] > 0 and done["id"]
        items = [f["item"] for f in frames if f["type"] == "response.output_item.done"]
        assert any(i["type"] == "message" for i in items)
    assert completed(first)["id"] != completed(second)["id"]
    provider = "codex" if model == GPT else "claude"
    assert len(fake.requests(provider)) == 2
    rows = wait_for_usage(2, timeout=30)
    assert [(r.endpoint, r.provider, r.status_code, r.outcome) for r in rows] == [
        ("responses_ws", provider, 200, "ok")] * 2
    assert all(r.output_tokens > 0 and r.input_tokens + r.cache_read_tokens > 0 and r.credential_id for r in rows)
    assert rows[0].request_id != rows[1].request_id


@pytest.mark.parametrize("reasoning", [None, {"effort": "medium", "summary": "auto"}], ids=["plain", "reasoning"])
@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_tool_round_trip_sends_only_new_items_and_the_upstream_gets_the_whole_conversation(
        gateway, key, accounts, fake, model, reasoning):
    # With reasoning, the chained history carries the reasoning item (Claude: its signed thinking) back.
    extra = {"reasoning": reasoning} if reasoning else {}

    async def talk() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        session, client = await connected(gateway, key)
        async with session:
            first = await client.respond(create(model, [user("use the tool please")], tools=[WEATHER], **extra))
            call = next(f["item"] for f in first if f["type"] == "response.output_item.done"
                        and f["item"]["type"] == "function_call")
            # As Codex does: previous_response_id and only what came after that response.
            output = {"type": "function_call_output", "call_id": call["call_id"], "output": "18C, cloudy"}
            second = await client.respond(create(model, [output], tools=[WEATHER], **extra,
                                                 previous_response_id=completed(first)["id"]))
            return first, second

    first, second = run(talk())
    call = next(f["item"] for f in first if f["type"] == "response.output_item.done"
                and f["item"]["type"] == "function_call")
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    assert text_of(second) == "Tool said: 18C, cloudy"
    upstream = fake.requests("codex" if model == GPT else "claude")[-1].json
    if model == GPT:
        kinds = [item.get("type") for item in upstream["input"]]
        assert "previous_response_id" not in upstream
        assert kinds[0] == "message" and "function_call" in kinds and kinds[-1] == "function_call_output"
        assert upstream["input"][0]["content"][0]["text"] == "use the tool please"
        assert "reasoning" in kinds or not reasoning  # (codex_body asks for reasoning by default anyway)
    else:
        roles = [(m["role"], [b["type"] for b in m["content"]] if isinstance(m["content"], list) else "text")
                 for m in upstream["messages"]]
        assistant = ["thinking", "tool_use"] if reasoning else ["tool_use"]
        assert roles[0][0] == "user" and ("assistant", assistant) in roles, roles
        assert roles[-1] == ("user", ["tool_result"])
    assert len(wait_for_usage(2, timeout=30)) == 2


def test_warm_up_is_answered_without_an_upstream_call_and_starts_the_chain(gateway, key, accounts, fake):
    developer = {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be terse."}]}

    async def talk() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        session, client = await connected(gateway, key)
        async with session:
            warm = await client.respond(create(GPT, [developer], generate=False))
            real = await client.respond(create(GPT, [user("after warm-up")],
                                               previous_response_id=completed(warm)["id"]))
            return warm, real

    warm, real = run(talk())
    assert [f["type"] for f in warm] == ["response.created", "response.completed"]
    assert completed(warm)["output"] == [] and completed(warm)["usage"]["total_tokens"] == 0
    assert text_of(real) == "Echo: after warm-up"
    requests = fake.requests("codex")
    assert len(requests) == 1  # the warm-up never reached the upstream
    roles = [item.get("role") for item in requests[0].json["input"]]
    assert roles == ["developer", "user"]
    rows = wait_for_usage(2, timeout=30)
    assert [(r.endpoint, r.output_tokens > 0, r.credential_id is None) for r in rows] == [
        ("responses_ws_warmup", False, True), ("responses_ws", True, False)]


def test_unknown_previous_response_is_an_error_frame_codex_resends_on(gateway, key, accounts, fake):
    async def talk() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        session, client = await connected(gateway, key)
        async with session:
            missing = await client.respond(create(GPT, [user("more")], previous_response_id="resp_nowhere"))
            after = await client.respond(create(GPT, [user("full resend")]))  # the connection still serves
            return missing, after

    missing, after = run(talk())
    assert missing == [{"type": "error", "status": 409, "headers": missing[0]["headers"], "error": {
        "message": missing[0]["error"]["message"], "type": "invalid_request_error", "param": None,
        "code": "previous_response_not_found"}}]
    assert "resp_nowhere" in missing[0]["error"]["message"]
    assert text_of(after) == "Echo: full resend"
    assert len(fake.requests("codex")) == 1


@pytest.mark.parametrize("model, status, code", [("gpt-9-nonexistent", 404, "model_not_found"),
                                                 (CLAUDE, 403, "model_not_allowed")])
def test_refused_model_is_an_error_frame_with_its_status(gateway, api_key_factory, accounts, fake, model, status,
                                                         code):
    key = api_key_factory(models=["gpt-*"])[1]

    async def talk() -> list[dict[str, Any]]:
        session, client = await connected(gateway, key)
        async with session:
            return await client.respond(create(model, [user("hi")]))

    frames = run(talk())
    assert len(frames) == 1
    frame = frames[0]
    assert (frame["type"], frame["status"], frame["error"]["code"]) == ("error", status, code)
    assert frame["error"]["type"] and frame["error"]["message"]
    assert fake.requests("codex") == [] and fake.requests("claude") == []
    rows = wait_for_usage(1, timeout=30)
    assert [(r.endpoint, r.status_code, r.outcome, r.error_type) for r in rows] == [
        ("responses_ws", status, "rejected", code)]


def raw_upgrade(base: str, path: str, key: str) -> bytes:
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     f"Authorization: Bearer {key}\r\n\r\n".encode())
        sock.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data or (b"content-length" in data.lower() and not data.endswith(b"}")):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


async def refused(base: str, key: str) -> tuple[dict[str, Any], int | None]:
    """What a wrong key gets: the first request's answer, and the close code after it."""
    session, client = await connected(base, key)
    async with session:
        frames = await client.respond(create(GPT, [user("hi")]))
        closing = await client.ws.receive(timeout=10)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
        assert len(frames) == 1
        return frames[0], client.ws.close_code


def test_wrong_key_gets_a_401_error_frame_in_openai_shape(gateway, key, accounts, fake):
    frame, close_code = run(refused(gateway, "sk-proxyhub-wrong"))
    assert (frame["type"], frame["status"], close_code) == ("error", 401, 1008)
    assert frame["error"]["code"] == "invalid_api_key" and frame["error"]["type"] == "authentication_error"
    assert "Invalid API key" in frame["error"]["message"] and "sk-proxyhub-wrong" not in json.dumps(frame)
    assert fake.requests("codex") == []


def test_wrong_keys_past_the_throttle_get_429_frames_with_retry_after(gateway, key, accounts, fake, settings):
    settings.PROXYHUB_BAD_KEY_LIMIT = 2

    async def attempts() -> list[dict[str, Any]]:
        return [(await refused(gateway, f"sk-proxyhub-wrong-{n}"))[0] for n in range(3)]

    frames = run(attempts())
    assert [f["status"] for f in frames] == [401, 401, 429]
    assert int(frames[2]["headers"]["retry-after"]) >= 1
    assert raw_upgrade(gateway, "/v1/responses", key).startswith(b"HTTP/1.1 101")  # a good key still connects


def test_websocket_on_a_path_without_one_gets_426(gateway, key):
    for path in ("/v1/chat/completions", "/v1/messages", "/somewhere"):
        assert raw_upgrade(gateway, path, key).startswith(b"HTTP/1.1 426"), path
    assert raw_upgrade(gateway, "/backend-api/codex/responses", key).startswith(b"HTTP/1.1 101")


def test_client_closing_mid_response_cancels_the_upstream_request(gateway, key, accounts, fake):
    fake.add_fault("codex", "slow", delay=0.4)

    async def talk() -> list[dict[str, Any]]:
        session, client = await connected(gateway, key)
        async with session:
            await client.ws.send_str(json.dumps(create(GPT, [user("a long answer")])))
            first = json.loads((await client.ws.receive(timeout=20)).data)
            await client.ws.close()
            return [first]

    frames = run(talk())
    assert frames[0]["type"] == "response.created"
    assert fake.wait_for(lambda: fake.cancelled_streams("codex") == 1, timeout=10)
    rows = wait_for_usage(1, timeout=30)
    assert [(r.endpoint, r.outcome) for r in rows] == [("responses_ws", "client_cancelled")]


def test_upstream_cut_mid_stream_is_an_error_frame_with_a_status(gateway, key, accounts, fake):
    fake.add_fault("codex", "drop_mid_stream")

    async def talk() -> list[dict[str, Any]]:
        session, client = await connected(gateway, key)
        async with session:
            return await client.respond(create(GPT, [user("cut me off")]))

    frames = run(talk())
    assert frames[-1]["type"] == "error" and frames[-1]["status"] == 502
    assert frames[-1]["error"]["message"]
    rows = wait_for_usage(1, timeout=30)
    assert rows[0].outcome == "upstream_error"


def test_idle_connection_is_closed(gateway, key, settings):
    settings.PROXYHUB_WS_IDLE_SECONDS = 0.5

    async def talk() -> tuple[aiohttp.WSMsgType, int | None]:
        session, client = await connected(gateway, key)
        async with session:
            msg = await client.ws.receive(timeout=10)
            return msg.type, client.ws.close_code

    kind, code = run(talk())
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and code == 1000


def test_daphne_serves_the_websocket_mode(tmp_path, fake):
    env = server_env(fake, f"sqlite:///{tmp_path / 'db.sqlite3'}", SECRET_KEY="test-secret-for-daphne")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    tokens = fake.issue_codex_tokens(email="team@example.com", account_id="acct-daphne")
    token_file = tmp_path / "auth.json"
    token_file.write_text(json.dumps({"tokens": {"access_token": tokens["access_token"], "id_token": tokens["id_token"],
                                                 "refresh_token": tokens["refresh_token"],
                                                 "account_id": "acct-daphne"}}))
    subprocess.run([*manage, "import_credentials", str(token_file)], env=env, check=True, capture_output=True)
    issued = subprocess.run([*manage, "issue_key", "carol", "--models", "gpt-*"], env=env, check=True,
                            capture_output=True, text=True)
    key = issued.stdout.strip().splitlines()[-1]

    async def talk(url: str) -> list[dict[str, Any]]:
        session, client = await connected(url, key)
        async with session:
            return await client.respond(create(GPT, [user("from daphne")]))

    with daphne(env) as server:
        frames = run(talk(server.url))
        wrong, _ = run(refused(server.url, "sk-wrong"))
        assert (wrong["status"], wrong["error"]["code"]) == (401, "invalid_api_key")
        assert raw_upgrade(server.url, "/v1/chat/completions", key).startswith(b"HTTP/1.1 426")
    assert text_of(frames) == "Echo: from daphne"
    assert key not in server.output and tokens["access_token"] not in server.output


def test_bad_messages_are_error_frames_and_the_connection_goes_on(gateway, key, accounts, fake):
    deep = '{"type":"response.create","model":"gpt-5.5","input":' + "[" * 100_000 + "]" * 100_000 + "}"

    async def talk() -> list[list[dict[str, Any]]]:
        session, client = await connected(gateway, key)
        async with session:
            answers = []
            for raw in ("not json", json.dumps({"type": "response.append", "input": []}), deep,
                        json.dumps({"type": "response.create", "model": GPT})):
                await client.ws.send_str(raw)
                answers.append([json.loads((await client.ws.receive(timeout=20)).data)])
            answers.append(await client.respond(create(GPT, [user("still here")])))
            return answers

    *errors, last = run(talk())
    assert [(e[0]["type"], e[0]["status"]) for e in errors] == [("error", 400)] * 4
    assert errors[2][0]["error"]["message"] == "Request body is nested too deeply."
    assert errors[3][0]["error"]["code"] == "missing_required_parameter"
    assert text_of(last) == "Echo: still here"


def test_key_limits_apply_per_response(gateway, api_key_factory, accounts, fake):
    api_key, raw = api_key_factory(models=["gpt-*"])
    api_key.requests_per_minute = 1
    api_key.save()

    async def talk() -> list[list[dict[str, Any]]]:
        session, client = await connected(gateway, raw)
        async with session:
            return [await client.respond(create(GPT, [user("one")])),
                    await client.respond(create(GPT, [user("two")]))]

    first, second = run(talk())
    assert text_of(first) == "Echo: one"
    frame = second[0]
    assert (frame["type"], frame["status"], frame["error"]["code"]) == ("error", 429, "rate_limit_exceeded")
    assert int(frame["headers"]["retry-after"]) >= 1  # Codex waits this long before it retries
    assert len(fake.requests("codex")) == 1


def test_long_upstream_silence_sends_keepalive_frames(gateway, key, accounts, fake, settings):
    settings.PROXYHUB_KEEPALIVE_SECONDS = 0.1  # read by the relay per stream
    fake.add_fault("codex", "slow", delay=0.3)

    async def talk() -> list[dict[str, Any]]:
        session, client = await connected(gateway, key)
        async with session:
            await client.ws.send_str(json.dumps(create(GPT, [user("take your time")])))
            frames: list[dict[str, Any]] = []
            while not frames or frames[-1]["type"] != "keepalive":
                frames.append(json.loads((await client.ws.receive(timeout=20)).data))
            return frames  # closing here cancels the rest

    kinds = [f["type"] for f in run(talk())]
    # Only between whole events of a started stream, which Codex ignores but which resets its idle timer.
    assert kinds[0] == "response.created" and kinds[-1] == "keepalive", kinds
    assert fake.wait_for(lambda: fake.cancelled_streams("codex") == 1, timeout=10)


def test_message_larger_than_the_body_limit_is_a_413_frame(gateway, key, accounts, fake, settings):
    settings.PROXYHUB_MAX_BODY_BYTES = 1000

    async def talk() -> list[list[dict[str, Any]]]:
        session, client = await connected(gateway, key)
        async with session:
            return [await client.respond(create(GPT, [user("x" * 2000)])),
                    await client.respond(create(GPT, [user("small")]))]

    big, small = run(talk())
    assert (big[0]["type"], big[0]["status"], big[0]["error"]["code"]) == ("error", 413, "request_too_large")
    assert text_of(small) == "Echo: small"
    assert len(fake.requests("codex")) == 1
