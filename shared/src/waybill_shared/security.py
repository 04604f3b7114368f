"""API keys: random, shown once, stored as a SHA-256 digest (keys are 256-bit random,
so a fast hash is safe; a slow KDF would only slow every request)."""

from __future__ import annotations

import hashlib
import secrets


def new_api_key() -> str:
    return "wb_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
