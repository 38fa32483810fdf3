"""Opaque random credentials and identifiers; only SHA-256 hashes of secrets are ever stored."""

from __future__ import annotations

import hashlib
import secrets

# Prefixes of the opaque secrets (they say what kind of credential it is, not the credential).
ACCESS_TOKEN_PREFIX = "kta_"  # noqa: S105
REFRESH_TOKEN_PREFIX = "ktr_"  # noqa: S105
MFA_TOKEN_PREFIX = "ktm_"  # noqa: S105
API_TOKEN_PREFIX = "kt_live_"  # noqa: S105
# What list replies show of an API token: the prefix and four characters of the random part.
API_TOKEN_DISPLAY_LENGTH = len(API_TOKEN_PREFIX) + 4


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
