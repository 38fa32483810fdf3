"""Finishing a browser or device sign-in: the account as the API sees it, then the session kept
in place of the old one (which is ended on its server); a password sign-in ends with the same
`Authenticator.save`."""

from __future__ import annotations

import dataclasses
import math

from ..api import BearerAuth
from ..authenticate import Authenticator
from ..dpop import Prover
from ..errors import KtError
from ..session import Session
from ..store import CredentialStore
from .oidc import SignedIn, SignInRequest, session_from_sign_in


def finish_oauth_sign_in(
    authenticator: Authenticator,
    where: CredentialStore,
    signed: SignedIn,
    login: SignInRequest,
    *,
    method: str,
) -> Session:
    """The session for `login.api_url`, whichever issuer signed the person in (issue 10 case 8:
    the API URL is never replaced by the issuer). Tokens from the API's own issuer are API
    sessions, described by its whoami; a foreign issuer's stay with it (the API is not asked)."""
    session = session_from_sign_in(
        signed, login=login, api_url=login.api_url, now=authenticator.clock(), method=method
    )
    if session.foreign_issuer is None:
        session = with_account(authenticator, session, dpop=signed.tokens.dpop)
    authenticator.save(where, session)
    return session


def with_account(
    authenticator: Authenticator, session: Session, *, dpop: Prover | None = None
) -> Session:
    """Organization, role and scopes as the API sees the new session (whoami; a DPoP session's
    token with a proof by `dpop`, its key); a session the API will not describe is ended
    rather than kept."""
    try:
        account = authenticator.api(session.api_url).whoami(
            BearerAuth(session.access_token, session.api_url, dpop=dpop)
        )
    except KtError:
        authenticator.revoke(session)
        raise
    return dataclasses.replace(
        session,
        user_email=session.user_email if account.email is None else account.email,
        user_id=session.user_id if account.user_id is None else account.user_id,
        organization=account.organization or "",
        role=account.role or "",
        scopes=account.scopes,
        mfa_authenticated=account.mfa_authenticated,
    )


def sign_in_notices(session: Session, signed: SignedIn, *, now: float) -> list[str]:
    """What the person should know about a session that works, but less well than usual: no
    refresh token (so a new sign-in when the access token expires), no way to revoke it."""
    notes = []
    if session.refresh_token is None:
        why = (
            "offline_access was not granted"
            if "offline_access" not in session.scopes
            else "none was issued"
        )
        if session.expires_at is not None:
            minutes = max(1, math.ceil((session.expires_at - now) / 60))
            when = f"in {minutes} minute{'s' if minutes != 1 else ''}"
        else:
            when = "when the access token expires"
        notes.append(
            f"The identity provider issued no refresh token ({why}): "
            f"you will need to sign in again {when}."
        )
    if signed.meta.revocation_endpoint is None:
        notes.append(
            "The identity provider offers no token revocation ("
            + signed.meta.missing("revocation_endpoint")
            + "): kt auth logout can forget this session here but not end it there."
        )
    return notes
