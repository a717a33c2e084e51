"""API key material: generation and digests. Pure Python; the secret is passed in.

A key looks like ``sk-ph-<40 url-safe chars>``; its first 12 characters are the
visible prefix. Only an HMAC-SHA256 digest of the whole key is stored.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "sk-ph-"
VISIBLE_CHARS = 12


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def visible_prefix(raw_key: str) -> str:
    return raw_key[:VISIBLE_CHARS]


def digest_key(raw_key: str, secret: str) -> str:
    pepper = hashlib.sha256(b"proxyhub-api-key:" + secret.encode()).digest()
    return hmac.new(pepper, raw_key.encode(), hashlib.sha256).hexdigest()


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
