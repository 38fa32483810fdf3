"""TOTP (RFC 6238) codes via pyotp, accepting the demo's short well-known secret.

pyotp 2.10+ refuses secrets shorter than 112 bits (NIST SP 800-63B-4). The demo secret
`JBSWY3DPEHPK3PXP` is the widely used 80-bit example, kept so the README, authenticator apps and
tests all agree; pyotp documents lowering `min_secret_length_bits` in a subclass for this case.
Tests compute codes with `kt_devserver.totp.code(secret, for_time)`.
"""

from __future__ import annotations

import time

import pyotp


class _DemoTOTP(pyotp.TOTP):
    min_secret_length_bits = 80


def code(secret: str, for_time: float | None = None) -> str:
    """The 6-digit code for `secret` at `for_time` (default: now)."""
    return _DemoTOTP(secret).at(time.time() if for_time is None else for_time)


def matches(secret: str, candidate: str, now: float) -> bool:
    """Whether `candidate` is the code for now or the 30-second step before or after it."""
    candidate = candidate.replace(" ", "")
    if len(candidate) != 6 or not candidate.isdigit():
        return False
    return _DemoTOTP(secret).verify(candidate, for_time=now, valid_window=1)
