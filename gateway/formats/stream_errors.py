"""How a stream that already started ends in error, per client format. Pure.

Once the 200 and some events went out, a failure can only be told as an
event in the client's own stream format (PROTOCOLS.md §1.9, §2.6, §3.5).
"""
from __future__ import annotations

from gateway.formats.sse import DONE, data_event, named_event


def anthropic_error(error_type: str, message: str) -> list[bytes]:
    return [named_event({"type": "error", "error": {"type": error_type, "message": message}})]


def chat_error(error_type: str, message: str) -> list[bytes]:
    return [data_event({"error": {"message": message, "type": error_type, "param": None, "code": error_type}}), DONE]


def responses_error(error_type: str, message: str, next_sequence: int, response_id: str = "") -> list[bytes]:
    error = {"type": "error", "code": error_type, "message": message, "param": None,
             "sequence_number": next_sequence}
    failed = {
        "type": "response.failed", "sequence_number": next_sequence + 1,
        "response": {"id": response_id or "resp_failed", "object": "response", "status": "failed",
                     "error": {"code": error_type, "message": message}, "output": []},
    }
    return [named_event(error), named_event(failed)]


def stream_error(client_format: str, error_type: str, message: str, next_sequence: int = 0) -> list[bytes]:
    if client_format == "anthropic":
        return anthropic_error(error_type, message)
    if client_format == "chat":
        return chat_error(error_type, message)
    return responses_error(error_type, message, next_sequence)
