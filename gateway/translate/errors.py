"""The one exception translators raise for client input they cannot map.

The gateway turns it into a 400 (or ``status``) in the client's own error format.
"""
from __future__ import annotations


# Both kinds of Codex remote compaction (/responses/compact, a compaction_trigger item) for another model.
COMPACTION_UNSUPPORTED = ("Remote compaction is only available for ChatGPT (Codex) models. Codex CLI compacts "
                          "locally when its model provider is not named \"OpenAI\" (use the config.toml from "
                          "your ProxyHub page).")


class TranslationError(ValueError):
    def __init__(self, message: str, *, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
