"""The id of the /v1 request being served: on its response, in its usage row and in its log lines.

gateway.app calls adopt() first thing for each request; the id lives in a
contextvar, so every coroutine, task and sync_to_async call of that request
sees it, and RequestIdFilter (installed on the log handler by
proxyhub/settings.py LOGGING) stamps it on every log record as
``%(request_id)s`` ("-" outside a request). Imports no Django: logging is
configured before the apps are loaded.
"""
from __future__ import annotations

import logging
import re
from contextvars import ContextVar

from gateway.usage.rows import new_request_id

# A client's own id is kept when it looks like an id: no spaces or control
# characters (it goes into log lines and a response header), at most 128 characters.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")

REQUEST_ID: ContextVar[str] = ContextVar("proxyhub_request_id", default="")


def adopt(sent: str | None) -> str:
    """This request's id: the client's ``x-request-id`` if it sent a sane one, else a new one."""
    request_id = sent if sent and _SANE.fullmatch(sent) else new_request_id()
    REQUEST_ID.set(request_id)
    return request_id


def current() -> str:
    """The id of the request this code runs for, or "" outside one."""
    return REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record, so a format can name it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True
