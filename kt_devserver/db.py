"""SQLite schema and queries: one connection, typed rows, secrets stored only as SHA-256 hashes.

aiohttp runs handlers on one thread, so a single connection is shared (`check_same_thread=False`
only because the password hash check runs in a worker thread that never touches the database).
Multi-statement changes run inside `with self._conn:` so they commit or roll back as one.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kt_devserver.credentials import new_id

MEMORY = ":memory:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret TEXT
);
-- A session is one login: the family of every access and refresh token issued from it.
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    mfa_authenticated INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS access_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    expires_at REAL NOT NULL,
    spent_at REAL
);
CREATE TABLE IF NOT EXISTS mfa_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    purpose TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,
    failed_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL,
    -- The token this one was created with (None: created by a session); revoked with it.
    parent_id TEXT REFERENCES api_tokens(id)
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens(user_id, created_at);
"""
ADDED_COLUMNS = (("api_tokens", "parent_id", "TEXT REFERENCES api_tokens(id)"),)


@dataclass(frozen=True)
class Organization:
    id: str
    name: str


@dataclass(frozen=True)
class User:
    id: str
    org_id: str
    email: str
    name: str
    role: str
    password_hash: str
    totp_secret: str | None


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    mfa_authenticated: bool
    created_at: float
    expires_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class IssuedPair:
    """Hashes and expiries of a new access + refresh token pair (secrets stay with the caller)."""

    access_hash: str
    access_expires_at: float
    refresh_hash: str
    refresh_expires_at: float


@dataclass(frozen=True)
class RefreshToken:
    session_id: str
    expires_at: float
    spent_at: float | None


@dataclass(frozen=True)
class MfaToken:
    token_hash: str
    user_id: str
    purpose: str
    expires_at: float
    used_at: float | None
    failed_attempts: int


@dataclass(frozen=True)
class ApiToken:
    id: str
    user_id: str
    name: str
    scopes: tuple[str, ...]
    prefix: str
    created_at: float
    expires_at: float
    last_used_at: float | None
    revoked_at: float | None


@dataclass(frozen=True)
class NewApiToken:
    name: str
    scopes: tuple[str, ...]
    secret_hash: str
    prefix: str
    expires_at: float
    parent_id: str | None = None


def _create_private_file(path: Path) -> None:
    """Create the database file owner-only before sqlite does (it holds hashes and TOTP secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Database:
    def __init__(self, path: str | Path) -> None:
        if str(path) != MEMORY:
            _create_private_file(Path(path))
        self._conn = sqlite3.connect(str(path), check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        with self._conn:
            self._conn.executescript(_SCHEMA)
            self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Columns added since a database file may have been created (CREATE IF NOT EXISTS
        keeps an existing table as it was)."""
        for table, column, declaration in ADDED_COLUMNS:
            present = {row["name"] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        self._conn.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The shared connection, for modules that keep their own tables in the same file."""
        return self._conn

    # --- organizations and users -------------------------------------------------------------

    def get_or_create_organization(self, name: str) -> Organization:
        with self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO organizations (id, name) VALUES (?, ?)",
                (new_id("org_"), name),
            )
        row = self._conn.execute("SELECT * FROM organizations WHERE name = ?", (name,)).fetchone()
        return Organization(id=row["id"], name=row["name"])

    def get_organization(self, org_id: str) -> Organization:
        row = self._conn.execute("SELECT * FROM organizations WHERE id = ?", (org_id,)).fetchone()
        return Organization(id=row["id"], name=row["name"])

    def create_user(
        self,
        *,
        org_id: str,
        email: str,
        name: str,
        role: str,
        password_hash: str,
        totp_secret: str | None,
    ) -> User:
        user = User(new_id("usr_"), org_id, email, name, role, password_hash, totp_secret)
        with self._conn:
            self._conn.execute(
                "INSERT INTO users (id, org_id, email, name, role, password_hash, totp_secret)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user.id, org_id, email, name, role, password_hash, totp_secret),
            )
        return user

    def find_user_by_email(self, email: str) -> User | None:
        row = self._conn.execute(
            "SELECT * FROM users WHERE email = ? COLLATE NOCASE", (email,)
        ).fetchone()
        return None if row is None else _user(row)

    def get_user(self, user_id: str) -> User:
        return _user(self._conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())

    def set_user_role(self, user_id: str, role: str) -> None:
        with self._conn:
            self._conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id))

    # --- sessions (login families) -----------------------------------------------------------

    def create_session(
        self,
        *,
        user_id: str,
        mfa_authenticated: bool,
        now: float,
        expires_at: float,
        pair: IssuedPair,
    ) -> Session:
        session = Session(new_id("ses_"), user_id, mfa_authenticated, now, expires_at, None)
        with self._conn:
            self._conn.execute(
                "INSERT INTO sessions (id, user_id, mfa_authenticated, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session.id, user_id, int(mfa_authenticated), now, expires_at),
            )
            self._insert_pair(session.id, pair)
        return session

    def _insert_pair(self, session_id: str, pair: IssuedPair) -> None:
        self._conn.execute(
            "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
            (pair.access_hash, session_id, pair.access_expires_at),
        )
        self._conn.execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
            (pair.refresh_hash, session_id, pair.refresh_expires_at),
        )

    def get_session(self, session_id: str) -> Session:
        row = self._conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return _session(row)

    def find_access_token(self, token_hash: str) -> tuple[Session, float] | None:
        """The session an access token belongs to, and the token's own expiry."""
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

    def spend_refresh_token(self, token_hash: str, *, now: float, pair: IssuedPair) -> bool:
        """Mark a refresh token spent and store its successor pair; False if already spent."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE refresh_tokens SET spent_at = ? WHERE token_hash = ? AND spent_at IS NULL",
                (now, token_hash),
            )
            if cursor.rowcount != 1:
                return False
            row = self._conn.execute(
                "SELECT session_id FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            self._insert_pair(row["session_id"], pair)
        return True

    def revoke_session(self, session_id: str, *, now: float) -> None:
        with self._conn:
            self._conn.execute(
                "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now, session_id),
            )

    # --- MFA tokens --------------------------------------------------------------------------

    def create_mfa_token(
        self, *, token_hash: str, user_id: str, purpose: str, expires_at: float
    ) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO mfa_tokens (token_hash, user_id, purpose, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (token_hash, user_id, purpose, expires_at),
            )

    def find_mfa_token(self, token_hash: str) -> MfaToken | None:
        row = self._conn.execute(
            "SELECT * FROM mfa_tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        if row is None:
            return None
        return MfaToken(
            token_hash=row["token_hash"],
            user_id=row["user_id"],
            purpose=row["purpose"],
            expires_at=row["expires_at"],
            used_at=row["used_at"],
            failed_attempts=row["failed_attempts"],
        )

    def record_mfa_failure(self, token_hash: str, *, now: float, max_attempts: int) -> None:
        """Count a wrong code; the token is burnt (marked used) at `max_attempts`."""
        with self._conn:
            self._conn.execute(
                "UPDATE mfa_tokens SET failed_attempts = failed_attempts + 1 WHERE token_hash = ?",
                (token_hash,),
            )
            self._conn.execute(
                "UPDATE mfa_tokens SET used_at = ?"
                " WHERE token_hash = ? AND used_at IS NULL AND failed_attempts >= ?",
                (now, token_hash, max_attempts),
            )

    def consume_mfa_token(self, token_hash: str, *, now: float) -> bool:
        """Mark an MFA token used; False if it already was (single use)."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE mfa_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
                (now, token_hash),
            )
        return cursor.rowcount == 1

    # --- API tokens --------------------------------------------------------------------------

    def create_api_token(self, *, user_id: str, now: float, token: NewApiToken) -> ApiToken:
        with self._conn:
            return self._insert_api_token(user_id, now, token)

    def _insert_api_token(self, user_id: str, now: float, token: NewApiToken) -> ApiToken:
        row = ApiToken(
            id=new_id("tok_"),
            user_id=user_id,
            name=token.name,
            scopes=token.scopes,
            prefix=token.prefix,
            created_at=now,
            expires_at=token.expires_at,
            last_used_at=None,
            revoked_at=None,
        )
        self._conn.execute(
            "INSERT INTO api_tokens (id, user_id, name, scopes, secret_hash, prefix, created_at,"
            " expires_at, parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                user_id,
                token.name,
                " ".join(token.scopes),
                token.secret_hash,
                token.prefix,
                now,
                token.expires_at,
                token.parent_id,
            ),
        )
        return row

    def get_api_token(self, token_id: str, *, user_id: str) -> ApiToken | None:
        row = self._conn.execute(
            "SELECT * FROM api_tokens WHERE id = ? AND user_id = ?", (token_id, user_id)
        ).fetchone()
        return None if row is None else _api_token(row)

    def find_api_token_by_hash(self, secret_hash: str) -> ApiToken | None:
        row = self._conn.execute(
            "SELECT * FROM api_tokens WHERE secret_hash = ?", (secret_hash,)
        ).fetchone()
        return None if row is None else _api_token(row)

    def list_api_tokens(self, user_id: str) -> list[ApiToken]:
        rows = self._conn.execute(
            "SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at, id", (user_id,)
        ).fetchall()
        return [_api_token(row) for row in rows]

    def touch_api_token(self, token_id: str, *, now: float) -> None:
        with self._conn:
            self._conn.execute(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (now, token_id)
            )

    def revoke_api_token(self, token_id: str, *, now: float) -> None:
        with self._conn:
            self._revoke_api_token(token_id, now)

    def _revoke_api_token(self, token_id: str, now: float) -> None:
        """Revoke the token and every token created with it, and with those, and so on."""
        self._conn.execute(
            "WITH RECURSIVE family(id) AS (SELECT ? UNION"
            " SELECT t.id FROM api_tokens t JOIN family f ON t.parent_id = f.id)"
            " UPDATE api_tokens SET revoked_at = ? WHERE id IN family AND revoked_at IS NULL",
            (token_id, now),
        )

    def rotate_api_token(
        self, old_id: str, *, user_id: str, now: float, token: NewApiToken
    ) -> ApiToken | None:
        """Revoke `old_id` and issue its successor in one transaction; None if it was revoked."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE api_tokens SET revoked_at = ?"
                " WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
                (now, old_id, user_id),
            )
            if cursor.rowcount != 1:
                return None
            self._revoke_api_token(old_id, now)
            return self._insert_api_token(user_id, now, token)


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        org_id=row["org_id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        password_hash=row["password_hash"],
        totp_secret=row["totp_secret"],
    )


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        mfa_authenticated=bool(row["mfa_authenticated"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def _api_token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        scopes=tuple(row["scopes"].split()),
        prefix=row["prefix"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )
