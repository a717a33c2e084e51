"""Encryption at rest for OAuth tokens (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

The key is ``PROXYHUB_ENCRYPTION_KEY`` or, when unset, derived from SECRET_KEY,
so a stolen database file alone does not reveal any token.
"""
from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(configured: str, secret_key: str) -> Fernet:
    if configured:
        return Fernet(configured.encode())
    digest = hashlib.sha256(b"proxyhub-token-encryption:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def fernet() -> Fernet:
    return _fernet(settings.PROXYHUB_ENCRYPTION_KEY, settings.SECRET_KEY)


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("stored token cannot be decrypted: was the encryption key changed?") from exc


class EncryptedTextField(models.TextField):
    """A text column holding Fernet ciphertext; Python code only ever sees plain text."""

    def from_db_value(self, value: str | None, expression: object, connection: object) -> str:
        return decrypt(value or "")

    def get_prep_value(self, value: object) -> str:
        return encrypt(str(value or ""))
