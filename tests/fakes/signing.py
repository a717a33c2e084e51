"""Opaque blobs the fakes hand out and later recognise.

Real upstreams sign thinking blocks (Anthropic ``signature``) and encrypt
reasoning (Codex ``encrypted_content``) so that clients cannot forge or edit
them, and each upstream rejects the other's blobs.  The fakes imitate this
with an HMAC under a per-process key.  Recognising a blob then needs no shared
registry, which keeps the rule modules pure functions.

Shapes:
    Anthropic thinking signature   "sig_" + hex(mac(thinking text))
    Anthropic redacted_thinking    "red_" + nonce + mac(nonce)
    Codex encrypted_content        "enc_" + nonce + mac(nonce)

The thinking signature covers the thinking text, because Anthropic rejects a
thinking block whose text was edited.  Codex reasoning is bound to nothing but
itself: clients resend the summary as received, but it is not part of the blob.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

# One key per test process: the fakes and the tests always share a process.
_KEY = secrets.token_bytes(32)
_MAC_HEX = 40
_NONCE_HEX = 16


def _mac(purpose: str, payload: str) -> str:
    message = f"{purpose}\0{payload}".encode()
    return hmac.new(_KEY, message, hashlib.sha256).hexdigest()[:_MAC_HEX]


def _nonce(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:_NONCE_HEX]


def sign_thinking(text: str) -> str:
    """Signature for an Anthropic thinking block holding ``text``."""
    return "sig_" + _mac("thinking", text)


def is_issued_signature(signature: object, text: object) -> bool:
    """True when ``signature`` was made by sign_thinking() for exactly ``text``."""
    if not isinstance(signature, str) or not isinstance(text, str):
        return False
    return hmac.compare_digest(signature, sign_thinking(text))


def _issue_sealed(prefix: str, purpose: str, seed: str) -> str:
    nonce = _nonce(seed)
    return f"{prefix}{nonce}{_mac(purpose, nonce)}"


def _is_sealed(value: object, prefix: str, purpose: str) -> bool:
    if not isinstance(value, str) or not value.startswith(prefix):
        return False
    body = value[len(prefix) :]
    nonce, mac = body[:_NONCE_HEX], body[_NONCE_HEX:]
    return len(nonce) == _NONCE_HEX and hmac.compare_digest(mac, _mac(purpose, nonce))


def issue_encrypted_content(seed: str) -> str:
    """Codex reasoning ``encrypted_content``; ``seed`` makes it stable per request."""
    return _issue_sealed("enc_", "reasoning", seed)


def is_issued_encrypted_content(value: object) -> bool:
    """True when ``value`` came from issue_encrypted_content()."""
    return _is_sealed(value, "enc_", "reasoning")


def issue_compaction(seed: str) -> str:
    """``encrypted_content`` of a ``compaction`` item (the compacted history, opaque)."""
    return _issue_sealed("cmp_", "compaction", seed)


def is_issued_compaction(value: object) -> bool:
    """True when ``value`` came from issue_compaction()."""
    return _is_sealed(value, "cmp_", "compaction")


def issue_redacted_thinking(seed: str) -> str:
    """``data`` for a redacted_thinking block the fake Anthropic will accept.

    The fake never sends redacted thinking itself; tests that need one in a
    conversation history make it here.
    """
    return _issue_sealed("red_", "redacted", seed)


def is_issued_redacted_thinking(value: object) -> bool:
    """True when ``value`` came from issue_redacted_thinking()."""
    return _is_sealed(value, "red_", "redacted")
