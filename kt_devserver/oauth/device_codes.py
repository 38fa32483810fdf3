"""RFC 8628 device codes and user codes: generation, the user code's format and normalisation.

- device code: `ktd_` + 32 random bytes (base64url); the device keeps it secret and only its
  SHA-256 hash is stored (RFC 8628 §5.2).
- user code: 8 characters from the base-20 alphabet of RFC 8628 §6.1 (no vowels, no digits, so
  no look-alikes and no words), about 34.5 bits, shown as `XXXX-XXXX`. Accepted in any case, with
  or without the dash and spaces. Also stored as a hash only. Guessing is bounded by the entry
  rate limit of the verification page (§5.1).
"""

from __future__ import annotations

import secrets

from kt_devserver.credentials import hash_secret, new_secret

DEVICE_CODE_PREFIX = "ktd_"  # noqa: S105 - a prefix, not a secret
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
# The longest input worth normalising: 8 characters plus dashes/spaces a person might type.
MAX_USER_CODE_INPUT = 32
# RFC 8628 §3.5: on slow_down the interval grows by 5 seconds for this and every later poll.
SLOW_DOWN_STEP = 5

VERIFICATION_PATH = "/device"


def new_device_code() -> str:
    return new_secret(DEVICE_CODE_PREFIX)


def new_user_code() -> str:
    """A fresh user code, normalised (8 letters, no dash)."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def display_user_code(normalised: str) -> str:
    half = USER_CODE_LENGTH // 2
    return f"{normalised[:half]}-{normalised[half:]}"


def normalise_user_code(raw: str | None) -> str | None:
    """The 8-letter form of what a person typed, or None if it cannot be a user code."""
    if raw is None or len(raw) > MAX_USER_CODE_INPUT:
        return None
    letters = "".join(ch for ch in raw if ch not in " \t-").upper()
    if len(letters) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in letters):
        return None
    return letters


def user_code_hash(normalised: str) -> str:
    return hash_secret(normalised)
