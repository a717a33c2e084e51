"""A refusal in each client's format (gateway.refusals): the HTTP body and the WebSocket error frame."""
from __future__ import annotations

from gateway import refusals
from gateway.refusals import RefusalError


def test_an_anthropic_client_sees_an_anthropic_type_only_when_the_error_type_is_one():
    upstream = RefusalError(429, "slow down", error_type="rate_limit_error")
    ours = RefusalError(404, "Unknown model 'x'.", error_type="model_not_found")
    assert refusals.body(upstream, "anthropic") == {
        "type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    assert refusals.body(ours, "anthropic") == {
        "type": "error", "error": {"type": "not_found_error", "message": "Unknown model 'x'."}}


def test_an_openai_client_gets_the_error_type_as_its_code_and_the_param():
    refusal = RefusalError(400, "Missing required parameter: 'input'.", error_type="missing_required_parameter",
                           param="input")
    for client_format in ("chat", "responses"):
        assert refusals.body(refusal, client_format) == {"error": {
            "message": "Missing required parameter: 'input'.", "type": "invalid_request_error", "param": "input",
            "code": "missing_required_parameter"}}


def test_a_frame_carries_the_status_the_responses_error_and_only_the_headers_codex_reads():
    refusal = RefusalError(429, "Try again in 3 s.", error_type="rate_limit_exceeded",
                           headers={"retry-after": "3", "allow": "POST"})
    assert refusals.frame(refusal, "req_1") == {
        "type": "error", "status": 429,
        "error": {"message": "Try again in 3 s.", "type": "rate_limit_exceeded", "param": None,
                  "code": "rate_limit_exceeded"},
        "headers": {"retry-after": "3", "x-request-id": "req_1"}}
    assert refusals.frame(RefusalError(400, "bad"))["headers"] == {}


def test_a_limit_is_a_429_refusal_with_the_seconds_to_wait():
    from gateway.limits import LimitExceededError

    refusal = LimitExceededError("This key is limited to 5 requests per minute.", 2.2)
    assert isinstance(refusal, RefusalError)
    assert (refusal.status, refusal.headers, refusal.error_type) == (429, {"retry-after": "3"}, "rate_limit_exceeded")
    assert refusal.message == "This key is limited to 5 requests per minute. Try again in 3 s."
