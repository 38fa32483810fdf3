"""Tables of the OAuth/OIDC authorization server, kept in the same SQLite file as the API's.

- `oauth_codes`: authorization codes (hash only), single use; `session_id` is the token family
  the code was exchanged for, so a replayed code can revoke it.
- `oauth_grants`: one row per token family (a `sessions` row) issued through OAuth: the client,
  scope and how the user authenticated. Access and refresh tokens live in the API's
  `access_tokens`/`refresh_tokens` tables, so they work on `/v1/auth/*` like a password session.
- `oauth_browser_sessions`: the AS's browser sign-in sessions (cookie secret stored as a hash).
- `oauth_transactions`: one pending authorization request, from `GET /oauth/authorize` to the
  consent decision, bound to a browser session.
- `oauth_signing_keys`: the ID-token signing key (see oauth_keys.py).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from kt_devserver.credentials import new_id
from kt_devserver.db import Database, IssuedPair

_SCHEMA = """
CREATE TABLE IF NOT EXISTS oauth_signing_keys (
    kid TEXT PRIMARY KEY,
    private_jwk TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    nonce TEXT,
    auth_time REAL NOT NULL,
    mfa INTEGER NOT NULL,
    code_challenge TEXT NOT NULL,
    code_challenge_method TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,
    session_id TEXT REFERENCES sessions(id)
);
CREATE INDEX IF NOT EXISTS oauth_codes_nonce ON oauth_codes(client_id, nonce);
CREATE TABLE IF NOT EXISTS oauth_grants (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id),
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    auth_time REAL NOT NULL,
    mfa INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_browser_sessions (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id TEXT REFERENCES users(id),
    auth_time REAL,
    mfa INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_transactions (
    id TEXT PRIMARY KEY,
    browser_session_id TEXT NOT NULL REFERENCES oauth_browser_sessions(id),
    params TEXT NOT NULL,
    step TEXT NOT NULL,
    user_id TEXT REFERENCES users(id),
    password_at REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL,
    finished_at REAL
);
"""


@dataclass(frozen=True)
class AuthCode:
    code_hash: str
    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    nonce: str | None
    auth_time: float
    mfa: bool
    code_challenge: str
    code_challenge_method: str
    expires_at: float
    used_at: float | None
    session_id: str | None

    # authlib's AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class Grant:
    """How a token family was granted: client, scope and the authentication behind it."""

    session_id: str
    client_id: str
    scope: str
    auth_time: float
    mfa: bool


@dataclass(frozen=True)
class BrowserSession:
    id: str
    user_id: str | None
    auth_time: float | None
    mfa: bool
    expires_at: float


@dataclass(frozen=True)
class Transaction:
    id: str
    browser_session_id: str
    params: list[tuple[str, str]]
    step: str
    user_id: str | None
    password_at: float | None
    failures: int
    expires_at: float
    finished_at: float | None


class OAuthStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn = db.connection
        with self._conn:
            self._conn.executescript(_SCHEMA)

    # --- signing keys ------------------------------------------------------------------------

    def signing_key(self) -> str | None:
        row = self._conn.execute(
            "SELECT private_jwk FROM oauth_signing_keys ORDER BY created_at LIMIT 1"
        ).fetchone()
        return None if row is None else str(row["private_jwk"])

    def add_signing_key(self, kid: str, private_jwk: str, *, now: float) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO oauth_signing_keys (kid, private_jwk, created_at) VALUES (?, ?, ?)",
                (kid, private_jwk, now),
            )

    # --- authorization codes -----------------------------------------------------------------

    def save_code(self, code: AuthCode) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO oauth_codes (code_hash, client_id, redirect_uri, scope, user_id,"
                " nonce, auth_time, mfa, code_challenge, code_challenge_method, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    code.code_hash,
                    code.client_id,
                    code.redirect_uri,
                    code.scope,
                    code.user_id,
                    code.nonce,
                    code.auth_time,
                    int(code.mfa),
                    code.code_challenge,
                    code.code_challenge_method,
                    code.expires_at,
                ),
            )

    def find_code(self, code_hash: str) -> AuthCode | None:
        row = self._conn.execute(
            "SELECT * FROM oauth_codes WHERE code_hash = ?", (code_hash,)
        ).fetchone()
        return None if row is None else _code(row)

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM oauth_codes WHERE client_id = ? AND nonce = ?", (client_id, nonce)
        ).fetchone()
        return row is not None

    def exchange_code(
        self,
        code: AuthCode,
        *,
        now: float,
        session_expires_at: float,
        access_hash: str,
        access_expires_at: float,
        refresh_hash: str | None,
    ) -> str | None:
        """Spend `code` and store the token family it buys, in one transaction.

        Returns the new family's session id, or None if the code was already spent.
        """
        session_id = new_id("ses_")
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE oauth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL",
                (now, code.code_hash),
            )
            if cursor.rowcount != 1:
                return None
            # created_at is when the user signed in (the age of its MFA proof, for mfa_max_age);
            # the family's absolute expiry counts from the exchange.
            self._conn.execute(
                "INSERT INTO sessions (id, user_id, mfa_authenticated, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, code.user_id, int(code.mfa), code.auth_time, session_expires_at),
            )
            self._conn.execute(
                "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
                (access_hash, session_id, access_expires_at),
            )
            if refresh_hash is not None:
                self._conn.execute(
                    "INSERT INTO refresh_tokens (token_hash, session_id, expires_at)"
                    " VALUES (?, ?, ?)",
                    (refresh_hash, session_id, session_expires_at),
                )
            self._conn.execute(
                "INSERT INTO oauth_grants (session_id, client_id, scope, auth_time, mfa)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, code.client_id, code.scope, code.auth_time, int(code.mfa)),
            )
            self._conn.execute(
                "UPDATE oauth_codes SET session_id = ? WHERE code_hash = ?",
                (session_id, code.code_hash),
            )
        return session_id

    # --- grants (OAuth token families) -------------------------------------------------------

    def grant(self, session_id: str) -> Grant | None:
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
        )

    def rotate_refresh_token(self, token_hash: str, *, now: float, pair: IssuedPair) -> bool:
        return self.db.spend_refresh_token(token_hash, now=now, pair=pair)

    def delete_access_token(self, token_hash: str) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM access_tokens WHERE token_hash = ?", (token_hash,))

    # --- browser sessions --------------------------------------------------------------------

    def create_browser_session(self, secret_hash: str, *, now: float, ttl: float) -> str:
        session_id = new_id("bs_")
        with self._conn:
            self._conn.execute(
                "INSERT INTO oauth_browser_sessions (id, secret_hash, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (session_id, secret_hash, now, now + ttl),
            )
        return session_id

    def find_browser_session(self, secret_hash: str, *, now: float) -> BrowserSession | None:
        row = self._conn.execute(
            "SELECT * FROM oauth_browser_sessions WHERE secret_hash = ? AND expires_at > ?",
            (secret_hash, now),
        ).fetchone()
        if row is None:
            return None
        return BrowserSession(
            id=row["id"],
            user_id=row["user_id"],
            auth_time=row["auth_time"],
            mfa=bool(row["mfa"]),
            expires_at=row["expires_at"],
        )

    def sign_in(
        self, session_id: str, *, new_secret_hash: str, user_id: str, auth_time: float, mfa: bool
    ) -> None:
        """Record a completed sign-in and rotate the cookie secret (no session fixation)."""
        with self._conn:
            self._conn.execute(
                "UPDATE oauth_browser_sessions SET secret_hash = ?, user_id = ?, auth_time = ?,"
                " mfa = ? WHERE id = ?",
                (new_secret_hash, user_id, auth_time, int(mfa), session_id),
            )

    # --- transactions ------------------------------------------------------------------------

    def create_transaction(
        self,
        *,
        browser_session_id: str,
        params: list[tuple[str, str]],
        step: str,
        user_id: str | None,
        expires_at: float,
    ) -> str:
        txn_id = new_id("txn_") + new_id("")
        with self._conn:
            self._conn.execute(
                "INSERT INTO oauth_transactions (id, browser_session_id, params, step, user_id,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (txn_id, browser_session_id, json.dumps(params), step, user_id, expires_at),
            )
        return txn_id

    def transaction(self, txn_id: str) -> Transaction | None:
        row = self._conn.execute(
            "SELECT * FROM oauth_transactions WHERE id = ?", (txn_id,)
        ).fetchone()
        if row is None:
            return None
        return Transaction(
            id=row["id"],
            browser_session_id=row["browser_session_id"],
            params=[(str(k), str(v)) for k, v in json.loads(row["params"])],
            step=row["step"],
            user_id=row["user_id"],
            password_at=row["password_at"],
            failures=row["failures"],
            expires_at=row["expires_at"],
            finished_at=row["finished_at"],
        )

    def advance_transaction(
        self, txn_id: str, *, step: str, user_id: str, password_at: float | None = None
    ) -> None:
        with self._conn:
            self._conn.execute(
                "UPDATE oauth_transactions SET step = ?, user_id = ?,"
                " password_at = COALESCE(?, password_at) WHERE id = ?",
                (step, user_id, password_at, txn_id),
            )

    def record_failure(self, txn_id: str) -> int:
        """Count a wrong password or code; returns the new number of failures."""
        with self._conn:
            self._conn.execute(
                "UPDATE oauth_transactions SET failures = failures + 1 WHERE id = ?", (txn_id,)
            )
        row = self._conn.execute(
            "SELECT failures FROM oauth_transactions WHERE id = ?", (txn_id,)
        ).fetchone()
        return int(row["failures"])

    def finish_transaction(self, txn_id: str, *, now: float) -> bool:
        """Mark the transaction finished; False if it already was (a form posted twice)."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE oauth_transactions SET finished_at = ?"
                " WHERE id = ? AND finished_at IS NULL",
                (now, txn_id),
            )
        return cursor.rowcount == 1


def _code(row: sqlite3.Row) -> AuthCode:
    return AuthCode(
        code_hash=row["code_hash"],
        client_id=row["client_id"],
        redirect_uri=row["redirect_uri"],
        scope=row["scope"],
        user_id=row["user_id"],
        nonce=row["nonce"],
        auth_time=row["auth_time"],
        mfa=bool(row["mfa"]),
        code_challenge=row["code_challenge"],
        code_challenge_method=row["code_challenge_method"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
        session_id=row["session_id"],
    )
