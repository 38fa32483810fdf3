"""Password sign-in and the MFA challenge: the first-party API, not ROPC (SECURITY.md LC-09)."""

from __future__ import annotations

from collections.abc import Callable

from ..api import ApiClient
from ..errors import ApiError
from ..session import Session

MAX_CODE_ATTEMPTS = 3


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
