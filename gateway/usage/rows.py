"""UsageRow: one finished /v1 request as plain data, what the /v1 path hands to the writer.

A slotted dataclass, not a model instance: building a Django model per request
in the event loop showed in the profile (issue 7), and a row must also go to
the journal as JSON. Its fields are UsageRecord's columns.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any


class Outcome:
    """UsageRecord.Outcome's values, importable without Django."""

    OK = "ok"
    UPSTREAM_ERROR = "upstream_error"
    CLIENT_CANCELLED = "client_cancelled"
    REJECTED = "rejected"


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


def _new_uid() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class UsageRow:
    endpoint: str
    uid: str = field(default_factory=_new_uid)  # unique per row: replays insert a row once
    request_id: str = field(default_factory=new_request_id)  # the x-request-id, maybe the client's
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    api_key_id: int | None = None
    user_id: int | None = None
    key_prefix: str = ""
    credential_id: int | None = None
    provider: str = ""
    requested_model: str = ""
    upstream_model: str = ""
    stream: bool = False
    status_code: int = 0
    outcome: str = Outcome.OK
    error_type: str = ""
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    attempts: int = 1
    duration_ms: int = 0
    ttfb_ms: int | None = None
    conversation: str = ""  # the client's session (formats.conversation), "" when it named none
    is_check: bool = False  # sent by `doctor` / the Check button (x-proxyhub-check: 1), not real work

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["created_at"] = self.created_at.isoformat()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageRow:
        known = {k: v for k, v in data.items() if k in COLUMNS}
        known["created_at"] = datetime.fromisoformat(known["created_at"])
        return cls(**known)


COLUMNS = tuple(f.name for f in fields(UsageRow))


def base_model(requested: str) -> str:
    """``gpt-5.5(high)`` -> ``gpt-5.5``: a thinking suffix is not part of the model's name."""
    return requested.split("(", 1)[0]
