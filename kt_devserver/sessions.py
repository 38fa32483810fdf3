"""Issuing sessions (access + refresh token families) and short-lived single-use MFA tokens."""

from __future__ import annotations

from kt_devserver import scopes
from kt_devserver.credentials import (
    ACCESS_TOKEN_PREFIX,
    MFA_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    hash_secret,
    new_secret,
)
from kt_devserver.db import User
from kt_devserver.errors import JsonValue
from kt_devserver.families import IssuedPair, Session
from kt_devserver.state import State
from kt_devserver.views import organization_json, user_json


class NewPair:
    """A fresh access + refresh token pair: secrets for the reply, hashes for the database."""

    def __init__(self, state: State, *, now: float, session_expires_at: float) -> None:
        self.access_token = new_secret(ACCESS_TOKEN_PREFIX)
        self.refresh_token = new_secret(REFRESH_TOKEN_PREFIX)
        self.stored = IssuedPair(
            access_hash=hash_secret(self.access_token),
            access_expires_at=min(now + state.settings.access_token_ttl, session_expires_at),
            refresh_hash=hash_secret(self.refresh_token),
            # Refresh tokens share the family's absolute expiry: rotation never extends a login.
            refresh_expires_at=session_expires_at,
        )


def start_session(state: State, user: User, *, mfa_authenticated: bool) -> dict[str, JsonValue]:
    now = state.clock()
    expires_at = now + state.settings.refresh_token_ttl
    pair = NewPair(state, now=now, session_expires_at=expires_at)
    session = state.db.families.create(
        user_id=user.id,
        mfa_authenticated=mfa_authenticated,
        now=now,
        expires_at=expires_at,
        pair=pair.stored,
    )
    return session_json(state, user, session, pair, now)


def session_json(
    state: State, user: User, session: Session, pair: NewPair, now: float
) -> dict[str, JsonValue]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": max(0, int(pair.stored.access_expires_at - now)),
        "refresh_expires_in": max(0, int(pair.stored.refresh_expires_at - now)),
        "session_id": session.id,
        "mfa_authenticated": session.mfa_authenticated,
        "user": user_json(user),
        "organization": organization_json(state.db.get_organization(user.org_id)),
        "role": user.role,
        "scopes": list(scopes.ordered(scopes.for_role(user.role))),
    }


def issue_mfa_token(state: State, user: User, *, purpose: str) -> tuple[str, int]:
    """A new MFA token for `user` and its lifetime in seconds."""
    token = new_secret(MFA_TOKEN_PREFIX)
    ttl = state.settings.mfa_token_ttl
    state.db.create_mfa_token(
        token_hash=hash_secret(token),
        user_id=user.id,
        purpose=purpose,
        expires_at=state.clock() + ttl,
    )
    return token, ttl
