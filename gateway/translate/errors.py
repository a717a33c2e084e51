"""The one exception translators raise for client input they cannot map.

The gateway turns it into a 400 (or ``status``) in the client's own error format.
"""
from __future__ import annotations


class TranslationError(ValueError):
    def __init__(self, message: str, *, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
