"""Signing secrets in the Standard Webhooks form: `whsec_` and base64 of the key bytes."""

from __future__ import annotations

import base64
import binascii
import secrets

PREFIX = "whsec_"
MIN_BYTES, MAX_BYTES = 24, 64


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str:
    """The secret if it is `whsec_` + base64 of 24 to 64 bytes; ValueError says why not."""
    if not secret.startswith(PREFIX):
        raise ValueError(f"a secret starts with {PREFIX!r}, then base64 of 24 to 64 random bytes")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a secret's part after 'whsec_' must be base64") from None
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise ValueError(f"a secret holds {MIN_BYTES} to {MAX_BYTES} bytes, not {len(key)}")
    return secret
