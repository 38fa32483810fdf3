"""Password sign-in and the MFA challenge: the first-party API, not ROPC (SECURITY.md LC-09)."""

from __future__ import annotations

from collections.abc import Callable

from ..api import ApiClient
from ..errors import ApiError, MfaRequired
from ..session import Session

# How many codes one prompt takes at most: a bound for a server that never stops answering
# "wrong code". The server's own limit (kt-devserver: 5 per mfa_token) normally ends it first,
# with an answer that says so; at this bound the mfa_token comes back to continue with.
MAX_CODE_ATTEMPTS = 10


def password_sign_in(
    api: ApiClient,
    email: str,
    password: str,
    *,
    ask_code: Callable[[], str] | None,
    on_rejected: Callable[[str], None] = lambda why: None,
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
    on_rejected: Callable[[str], None] = lambda why: None,
) -> Session:
    """Trade the mfa_token and a one-time code for a session. A rejected code is asked for again
    (`on_rejected` is told what the server said) for as long as the server takes codes for this
    token, up to `attempts` codes; past that, MfaRequired with the mfa_token, which stays good
    for another try. Any other answer (the token burnt or expired, throttling) leaves as it is."""
    attempt = 1
    while True:
        code = ask_code()
        try:
            return api.mfa_challenge(mfa_token, code)
        except ApiError as exc:
            if exc.code != "auth.invalid_mfa_code":
                raise
            if attempt >= attempts:
                raise MfaRequired(
                    f"the code was not accepted ({exc.message})", mfa_token=mfa_token
                ) from None
            on_rejected(exc.message)
        attempt += 1
