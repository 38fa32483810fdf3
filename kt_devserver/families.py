"""Token families: the repository of sessions, their access and refresh tokens, and OAuth grants.

A family (a `sessions` row) is one sign-in: every access and refresh token issued from it, through
`/v1/auth/login` or through an OAuth code or device-code exchange; the families OAuth issued also
have an `oauth_grants` row (client, scope, how the user authenticated). Revoking a family ends all
its tokens. Secrets are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from dataclasses import dataclass

from kt_devserver.credentials import new_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    mfa_authenticated: bool
    created_at: float
    expires_at: float
    revoked_at: float | None
    # The thumbprint of the DPoP key every token of the family is bound to (RFC 9449 cnf.jkt).
    dpop_jkt: str | None = None


@dataclass(frozen=True)
class IssuedPair:
    """Hashes and expiries of a new access + refresh token pair (secrets stay with the caller).

    `refresh_hash` is None for an OAuth family granted without `offline_access`.
    """

    access_hash: str
    access_expires_at: float
    refresh_hash: str | None
    refresh_expires_at: float


@dataclass(frozen=True)
class RefreshToken:
    session_id: str
    expires_at: float
    spent_at: float | None


@dataclass(frozen=True)
class Grant:
    """How an OAuth token family was granted: client, scope and the authentication behind it."""

    session_id: str
    client_id: str
    scope: str
    auth_time: float
    mfa: bool
    # The resource (RFC 8707) its access tokens are for: their audience. None in grants stored
    # before audiences were kept (this server's own API).
    resource: str | None = None


class Refused(enum.Enum):
    """Why a refresh token cannot be rotated."""

    UNKNOWN = "unknown"
    REVOKED = "revoked"  # its family was revoked
    REPLAYED = "replayed"  # spent already: its family is revoked now
    EXPIRED = "expired"


@dataclass(frozen=True)
class Redeemable:
    """A refresh token that may be rotated now, and its family."""

    token_hash: str
    session: Session


class TokenFamilies:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection

    def create(
        self,
        *,
        user_id: str,
        mfa_authenticated: bool,
        now: float,
        expires_at: float,
        pair: IssuedPair,
    ) -> Session:
        """A first-party sign-in's family and its first pair."""
        session = Session(new_id("ses_"), user_id, mfa_authenticated, now, expires_at, None)
        with self._conn:
            self.insert(session, pair)
        return session

    def insert(self, session: Session, pair: IssuedPair, *, grant: Grant | None = None) -> None:
        """Insert a family, its first tokens and any OAuth grant, in the caller's transaction."""
        self._conn.execute(
            "INSERT INTO sessions (id, user_id, mfa_authenticated, created_at, expires_at,"
            " dpop_jkt) VALUES (?, ?, ?, ?, ?, ?)",
            (
                session.id,
                session.user_id,
                int(session.mfa_authenticated),
                session.created_at,
                session.expires_at,
                session.dpop_jkt,
            ),
        )
        self._insert_pair(session.id, pair)
        if grant is not None:
            self._conn.execute(
                "INSERT INTO oauth_grants (session_id, client_id, scope, auth_time, mfa, resource)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    grant.client_id,
                    grant.scope,
                    grant.auth_time,
                    int(grant.mfa),
                    grant.resource,
                ),
            )

    def _insert_pair(self, session_id: str, pair: IssuedPair) -> None:
        self._conn.execute(
            "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
            (pair.access_hash, session_id, pair.access_expires_at),
        )
        if pair.refresh_hash is not None:
            self._conn.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
                (pair.refresh_hash, session_id, pair.refresh_expires_at),
            )

    def get(self, session_id: str) -> Session:
        row = self._conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return _session(row)

    def grant(self, session_id: str) -> Grant | None:
        """The OAuth grant behind a family; None for a first-party sign-in's."""
        row = self._conn.execute(
            "SELECT * FROM oauth_grants WHERE session_id = ?", (session_id,)
        ).fetchone()
        if row is None:
            return None
        return Grant(
            session_id=row["session_id"],
            client_id=row["client_id"],
            scope=row["scope"],
            auth_time=row["auth_time"],
            mfa=bool(row["mfa"]),
            resource=row["resource"],
        )

    def find_access_token(self, token_hash: str) -> tuple[Session, float] | None:
        """The family an access token belongs to, and the token's own expiry."""
        row = self._conn.execute(
            "SELECT s.*, a.expires_at AS access_expires_at FROM access_tokens a"
            " JOIN sessions s ON s.id = a.session_id WHERE a.token_hash = ?",
            (token_hash,),
        ).fetchone()
        return None if row is None else (_session(row), float(row["access_expires_at"]))

    def find_refresh_token(self, token_hash: str) -> RefreshToken | None:
        row = self._conn.execute(
            "SELECT * FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        if row is None:
            return None
        return RefreshToken(row["session_id"], row["expires_at"], row["spent_at"])

    def redeemable(self, token_hash: str, *, now: float) -> Redeemable | Refused:
        """Whether a refresh token may be rotated now. A spent one presented again revokes its
        whole family (RFC 9700 §4.14.2): someone has a copy."""
        row = self.find_refresh_token(token_hash)
        if row is None:
            return Refused.UNKNOWN
        session = self.get(row.session_id)
        if session.revoked_at is not None:
            return Refused.REVOKED
        if row.spent_at is not None:
            self.revoke(session.id, now=now)
            logger.warning("refresh token replayed; family %s revoked", session.id)
            return Refused.REPLAYED
        if now >= row.expires_at:
            return Refused.EXPIRED
        return Redeemable(token_hash, session)

    def rotate(self, token: Redeemable, *, now: float, pair: IssuedPair) -> bool:
        """Spend the refresh token and store its successor pair in one transaction. False if it
        was spent meanwhile (two uses racing): then its family is revoked, as for a replay."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE refresh_tokens SET spent_at = ? WHERE token_hash = ? AND spent_at IS NULL",
                (now, token.token_hash),
            )
            if cursor.rowcount == 1:
                self._insert_pair(token.session.id, pair)
                return True
        self.revoke(token.session.id, now=now)
        return False

    def revoke(self, session_id: str, *, now: float) -> None:
        """Revoke the family and every family a token exchange derived from it (delegation,
        RFC 8693: exchanged_sessions.parent_session_id), and from those, and so on."""
        with self._conn:
            self._conn.execute(
                "WITH RECURSIVE family(id) AS (SELECT ? UNION"
                " SELECT e.session_id FROM exchanged_sessions e"
                " JOIN family f ON e.parent_session_id = f.id)"
                " UPDATE sessions SET revoked_at = ? WHERE id IN family AND revoked_at IS NULL",
                (session_id, now),
            )

    def delete_access_token(self, token_hash: str) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM access_tokens WHERE token_hash = ?", (token_hash,))


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        mfa_authenticated=bool(row["mfa_authenticated"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        dpop_jkt=row["dpop_jkt"],
    )
