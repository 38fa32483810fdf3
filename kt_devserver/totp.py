"""TOTP (RFC 6238) codes via pyotp, accepting the demo's short well-known secret.

pyotp 2.10+ refuses secrets shorter than 112 bits (NIST SP 800-63B-4). The demo secret
`JBSWY3DPEHPK3PXP` is the widely used 80-bit example, kept so the README, authenticator apps and
tests all agree; pyotp documents lowering `min_secret_length_bits` in a subclass for this case.
Tests compute codes with `kt_devserver.totp.code(secret, for_time)`.
"""

from __future__ import annotations

import hmac
import time

import pyotp


class _DemoTOTP(pyotp.TOTP):
    min_secret_length_bits = 80


def code(secret: str, for_time: float | None = None) -> str:
    """The 6-digit code for `secret` at `for_time` (default: now)."""
    return _DemoTOTP(secret).at(time.time() if for_time is None else for_time)


def matching_step(secret: str, candidate: str, now: float) -> int | None:
    """The 30-second time step (RFC 6238 counter) whose code `candidate` is — now's, or the one
    before or after it — or None. The caller refuses a step at or before the last one it accepted
    (§5.2: a code is good once)."""
    candidate = candidate.replace(" ", "")
    if len(candidate) != 6 or not candidate.isdigit():
        return None
    otp = _DemoTOTP(secret)
    current = otp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(otp.generate_otp(step), candidate):
            return step
    return None


def unused_code(secret: str, last_step: int | None, now: float) -> str | None:
    """A code accepted at `now` and newer than `last_step`: now's, else the next step's; None
    when both were used (the next one comes within 30 seconds)."""
    otp = _DemoTOTP(secret)
    current = otp.timecode(now)
    for step in (current, current + 1):
        if last_step is None or step > last_step:
            return otp.generate_otp(step)
    return None
