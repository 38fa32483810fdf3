"""Password sign-in and the MFA challenge: the first-party API, not ROPC (SECURITY.md LC-09)."""

from __future__ import annotations

from collections.abc import Callable

from ..api import ApiClient
from ..errors import ApiError, MfaRequired
from ..session import Session

MAX_CODE_ATTEMPTS = 3


def password_sign_in(
    api: ApiClient,
    email: str,
    password: str,
    *,
    ask_code: Callable[[], str] | None,
    on_rejected: Callable[[], None] = lambda: None,
) -> Session:
    """Email and password; for an MFA account, the challenge with codes from `ask_code`. With
    no `ask_code` (nobody to ask), MfaRequired leaves with the mfa_token to answer it later."""
    try:
        return api.login(email, password)
    except MfaRequired as exc:
        if ask_code is None or not exc.mfa_token:
            raise
        return answer_mfa_challenge(api, exc.mfa_token, ask_code, on_rejected=on_rejected)


def answer_mfa_challenge(
    api: ApiClient,
    mfa_token: str,
    ask_code: Callable[[], str],
    *,
    attempts: int = MAX_CODE_ATTEMPTS,
    on_rejected: Callable[[], None] = lambda: None,
) -> Session:
    """Trade the mfa_token and a one-time code for a session; a rejected code is asked for
    again (`on_rejected` is told), up to `attempts` codes in all."""
    attempt = 1
    while True:
        code = ask_code()
        try:
            return api.mfa_challenge(mfa_token, code)
        except ApiError as exc:
            if exc.code != "auth.invalid_mfa_code" or attempt >= attempts:
                raise
        on_rejected()
        attempt += 1
