"""Tables of the OAuth/OIDC authorization server, kept in the same SQLite file as the API's.

- `oauth_codes`: authorization codes (hash only), single use; `session_id` is the token family
  the code was exchanged for, so a replayed code can revoke it.
- `oauth_grants`: one row per token family (a `sessions` row) issued through OAuth: the client,
  scope and how the user authenticated. Access and refresh tokens live in the API's
  `access_tokens`/`refresh_tokens` tables, so they work on `/v1/auth/*` like a password session.
- `oauth_browser_sessions`: the AS's browser sign-in sessions (cookie secret stored as a hash).
- `oauth_transactions`: one pending authorization request, from `GET /oauth/authorize` to the
  consent decision, bound to a browser session.
- `oauth_signing_keys`: the ID-token signing key (see keys.py).
- `oauth_device_codes`: RFC 8628 device authorizations: the device code and the user code are
  stored as hashes only; `status` goes pending → approved/denied in the browser, `used_at` and
  `session_id` are set when the device exchanges an approved code (single use).
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
CREATE TABLE IF NOT EXISTS oauth_device_codes (
    id TEXT PRIMARY KEY,
    device_code_hash TEXT NOT NULL UNIQUE,
    user_code_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    poll_interval REAL NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_poll_at REAL,
    status TEXT NOT NULL,
    user_id TEXT REFERENCES users(id),
    auth_time REAL,
    mfa INTEGER NOT NULL DEFAULT 0,
    decided_at REAL,
    used_at REAL,
    session_id TEXT REFERENCES sessions(id)
);
CREATE INDEX IF NOT EXISTS oauth_device_codes_user_code
    ON oauth_device_codes(user_code_hash, expires_at);
"""

DEVICE_PENDING, DEVICE_APPROVED, DEVICE_DENIED = "pending", "approved", "denied"


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


@dataclass(frozen=True)
class DeviceCode:
    """One device authorization (RFC 8628); secrets are held as hashes only."""

    id: str
    device_code_hash: str
    user_code_hash: str
    client_id: str
    scope: str
    poll_interval: float
    created_at: float
    expires_at: float
    last_poll_at: float | None
    status: str
    user_id: str | None
    auth_time: float | None
    mfa: bool
    decided_at: float | None
    used_at: float | None
    session_id: str | None

    # authlib's DeviceCredentialMixin
    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope


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
            self._insert_family(
                session_id,
                user_id=code.user_id,
                client_id=code.client_id,
                scope=code.scope,
                auth_time=code.auth_time,
                mfa=code.mfa,
                session_expires_at=session_expires_at,
                access_hash=access_hash,
                access_expires_at=access_expires_at,
                refresh_hash=refresh_hash,
            )
            self._conn.execute(
                "UPDATE oauth_codes SET session_id = ? WHERE code_hash = ?",
                (session_id, code.code_hash),
            )
        return session_id

    def _insert_family(
        self,
        session_id: str,
        *,
        user_id: str,
        client_id: str,
        scope: str,
        auth_time: float,
        mfa: bool,
        session_expires_at: float,
        access_hash: str,
        access_expires_at: float,
        refresh_hash: str | None,
    ) -> None:
        """Insert a token family and its first tokens; the caller holds the transaction."""
        # created_at is when the user signed in (the age of its MFA proof, for mfa_max_age);
        # the family's absolute expiry counts from the exchange.
        self._conn.execute(
            "INSERT INTO sessions (id, user_id, mfa_authenticated, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (session_id, user_id, int(mfa), auth_time, session_expires_at),
        )
        self._conn.execute(
            "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
            (access_hash, session_id, access_expires_at),
        )
        if refresh_hash is not None:
            self._conn.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
                (refresh_hash, session_id, session_expires_at),
            )
        self._conn.execute(
            "INSERT INTO oauth_grants (session_id, client_id, scope, auth_time, mfa)"
            " VALUES (?, ?, ?, ?, ?)",
            (session_id, client_id, scope, auth_time, int(mfa)),
        )

    # --- device authorizations (RFC 8628) -----------------------------------------------------

    def create_device_code(
        self,
        *,
        device_code_hash: str,
        user_code_hash: str,
        client_id: str,
        scope: str,
        poll_interval: float,
        now: float,
        expires_at: float,
    ) -> str:
        device_id = new_id("dev_")
        with self._conn:
            self._conn.execute(
                "INSERT INTO oauth_device_codes (id, device_code_hash, user_code_hash, client_id,"
                " scope, poll_interval, created_at, expires_at, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    device_id,
                    device_code_hash,
                    user_code_hash,
                    client_id,
                    scope,
                    poll_interval,
                    now,
                    expires_at,
                    DEVICE_PENDING,
                ),
            )
        return device_id

    def user_code_in_use(self, user_code_hash: str, *, now: float) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM oauth_device_codes WHERE user_code_hash = ? AND expires_at > ?",
            (user_code_hash, now),
        ).fetchone()
        return row is not None

    def pending_device_code(self, user_code_hash: str, *, now: float) -> DeviceCode | None:
        """The live, undecided device authorization with this user code, if any."""
        row = self._conn.execute(
            "SELECT * FROM oauth_device_codes WHERE user_code_hash = ? AND expires_at > ?"
            " AND status = ?",
            (user_code_hash, now, DEVICE_PENDING),
        ).fetchone()
        return None if row is None else _device(row)

    def device_code(self, device_id: str) -> DeviceCode | None:
        row = self._conn.execute(
            "SELECT * FROM oauth_device_codes WHERE id = ?", (device_id,)
        ).fetchone()
        return None if row is None else _device(row)

    def find_device_code(self, device_code_hash: str) -> DeviceCode | None:
        row = self._conn.execute(
            "SELECT * FROM oauth_device_codes WHERE device_code_hash = ?", (device_code_hash,)
        ).fetchone()
        return None if row is None else _device(row)

    def record_poll(self, device_id: str, *, now: float, poll_interval: float) -> None:
        with self._conn:
            self._conn.execute(
                "UPDATE oauth_device_codes SET last_poll_at = ?, poll_interval = ? WHERE id = ?",
                (now, poll_interval, device_id),
            )

    def decide_device_code(
        self,
        device_id: str,
        *,
        approved: bool,
        now: float,
        user_id: str | None = None,
        auth_time: float | None = None,
        mfa: bool = False,
    ) -> bool:
        """Approve or deny a pending, unexpired device code; False if it no longer is one."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE oauth_device_codes SET status = ?, user_id = ?, auth_time = ?, mfa = ?,"
                " decided_at = ? WHERE id = ? AND status = ? AND expires_at > ?",
                (
                    DEVICE_APPROVED if approved else DEVICE_DENIED,
                    user_id,
                    auth_time,
                    int(mfa),
                    now,
                    device_id,
                    DEVICE_PENDING,
                    now,
                ),
            )
        return cursor.rowcount == 1

    def exchange_device_code(
        self,
        device: DeviceCode,
        *,
        now: float,
        session_expires_at: float,
        access_hash: str,
        access_expires_at: float,
        refresh_hash: str | None,
    ) -> str | None:
        """Spend an approved device code and store the token family it buys, in one transaction.

        Returns the new family's session id, or None if the code was already spent.
        """
        assert device.user_id is not None and device.auth_time is not None
        session_id = new_id("ses_")
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE oauth_device_codes SET used_at = ? WHERE id = ? AND status = ?"
                " AND used_at IS NULL",
                (now, device.id, DEVICE_APPROVED),
            )
            if cursor.rowcount != 1:
                return None
            self._insert_family(
                session_id,
                user_id=device.user_id,
                client_id=device.client_id,
                scope=device.scope,
                auth_time=device.auth_time,
                mfa=device.mfa,
                session_expires_at=session_expires_at,
                access_hash=access_hash,
                access_expires_at=access_expires_at,
                refresh_hash=refresh_hash,
            )
            self._conn.execute(
                "UPDATE oauth_device_codes SET session_id = ? WHERE id = ?",
                (session_id, device.id),
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
        self, txn_id: str, *, step: str, user_id: str | None, password_at: float | None = None
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


def _device(row: sqlite3.Row) -> DeviceCode:
    return DeviceCode(
        id=row["id"],
        device_code_hash=row["device_code_hash"],
        user_code_hash=row["user_code_hash"],
        client_id=row["client_id"],
        scope=row["scope"],
        poll_interval=row["poll_interval"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_poll_at=row["last_poll_at"],
        status=row["status"],
        user_id=row["user_id"],
        auth_time=row["auth_time"],
        mfa=bool(row["mfa"]),
        decided_at=row["decided_at"],
        used_at=row["used_at"],
        session_id=row["session_id"],
    )
