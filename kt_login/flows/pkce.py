"""PKCE (RFC 7636) with S256 only, and the other per-request secrets: state and nonce.

Two lines of hashlib instead of authlib's helper keep `kt` from importing authlib at all.
"""

from __future__ import annotations

import base64
import hashlib
import secrets


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_verifier() -> str:
    """43 characters from 32 random bytes: 256 bits, within RFC 7636's 43–128 and its alphabet."""
    return b64url(secrets.token_bytes(32))


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_state() -> str:
    return b64url(secrets.token_bytes(24))


def new_nonce() -> str:
    return b64url(secrets.token_bytes(24))
