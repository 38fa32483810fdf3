"""Checking a password or a TOTP code: the one way the API and the sign-in pages both do it.

Every attempt is throttled (throttle.py) per account or user and per client address, before the
password or code is looked at, so a refusal (`TooManyAttempts`) says nothing about either; an
unknown email is an account like any other. A TOTP code is good once (RFC 6238 §5.2): its time
step must be newer than the last one the user had accepted.
"""

from __future__ import annotations

import asyncio
import enum

from kt_devserver import passwords, totp
from kt_devserver.db import User
from kt_devserver.state import State
from kt_devserver.throttle import Backoff, TooManyAttempts

# Failures before the backoff starts: per account (password) or user (MFA codes, across all
# mfa_tokens and sign-in pages), and per client address (passwords and codes, any account).
ACCOUNT_FREE_FAILURES = 10
ADDRESS_FREE_FAILURES = 50

__all__ = ["Code", "TooManyAttempts", "check_code", "check_password"]


class Code(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    REUSED = "reused"

    @property
    def refusal(self) -> str:
        """What to tell the person (no final stop: callers add what follows)."""
        if self is Code.REUSED:
            return "That code was already used; wait for the next one"
        return "Wrong code"


def _backoff(state: State, free: int) -> Backoff:
    settings = state.settings
    return Backoff(
        free=free, base_delay=settings.throttle_base_delay, max_delay=settings.throttle_max_delay
    )


def _address_key(address: str | None) -> str:
    return f"address:{address or '?'}"


def _attempt(state: State, owner_key: str, address: str | None) -> None:
    state.throttle.attempt(
        {
            owner_key: _backoff(state, ACCOUNT_FREE_FAILURES),
            _address_key(address): _backoff(state, ADDRESS_FREE_FAILURES),
        },
        state.clock(),
    )


def _succeeded(state: State, owner_key: str, address: str | None) -> None:
    state.throttle.forgive(owner_key, all_failures=True)
    state.throttle.forgive(_address_key(address), all_failures=False)


async def check_password(
    state: State, *, email: str, password: str, address: str | None
) -> User | None:
    """The user whose password this is; None for a wrong password, an unknown email or an SSO
    user (no password), after the same work. Raises TooManyAttempts while throttled."""
    account = f"password:{email.lower()}"
    _attempt(state, account, address)
    user = state.db.find_user_by_email(email) if email else None
    if user is None or not user.password_hash.startswith("scrypt$"):
        await asyncio.to_thread(passwords.verify_unknown_user, password)
        return None
    if not await asyncio.to_thread(passwords.verify_password, password, user.password_hash):
        return None
    _succeeded(state, account, address)
    return user


def check_code(state: State, user: User, code: str, *, address: str | None) -> Code:
    """Whether `code` is the user's current TOTP code, not used before. Raises TooManyAttempts
    while throttled."""
    key = f"mfa:{user.id}"
    _attempt(state, key, address)
    if user.totp_secret is None:
        return Code.WRONG
    step = totp.matching_step(user.totp_secret, code, state.clock())
    if step is None:
        return Code.WRONG
    if not state.db.accept_totp_step(user.id, step):
        return Code.REUSED
    _succeeded(state, key, address)
    return Code.ACCEPTED
