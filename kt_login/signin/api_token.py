"""Keeping an existing API token as a profile's credential (`kt auth login --with-token`).

The token is asked who it belongs to first (whoami), so a token the API refuses is never kept,
and what is kept describes it as the server does: its account and its own expiry. It is never
refreshed (there is no refresh token) and never revoked by kt: it is the user's to revoke.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..api import ApiClient, BearerAuth
from ..authenticate import API_TOKEN
from ..errors import NotLoggedIn, UsageError
from ..session import KEEPTRUSTS, Session


def api_token_sign_in(api: ApiClient, token: str, *, now: float) -> Session:
    """The Session that keeps `token` for `api`, once whoami accepted it: NotLoggedIn (exit 3)
    when the API refuses it, UsageError when it is a session's access token, not an API
    token."""
    try:
        account = api.whoami(BearerAuth(token, api.api_url))
    except NotLoggedIn as exc:
        raise NotLoggedIn(f"the API at {api.api_url} refused the token ({exc.message})") from None
    if account.auth_method not in (None, API_TOKEN):
        raise UsageError(
            f"that is not an API token (the API says it is a {account.auth_method} credential); "
            "create one with kt auth token create"
        )
    return Session(
        api_url=api.api_url,
        access_token=token,
        refresh_token=None,
        expires_at=_epoch(account.reply.get("expires_at")),
        method=API_TOKEN,
        kind=KEEPTRUSTS,
        user_email=account.email or "",
        user_id=account.user_id or "",
        organization=account.organization or "",
        role=account.role or "",
        scopes=account.scopes,
        mfa_authenticated=False,
        obtained_at=now,
    )


def _epoch(value: object) -> float | None:
    """whoami's ISO-8601 `expires_at` as epoch seconds; None when missing or not a time."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        return None
