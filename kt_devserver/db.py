"""The database: one SQLite connection for every table (schema.py), typed rows, secrets stored
only as SHA-256 hashes. The first-party API's organizations, users, MFA and API tokens are queried
here; token families through `Database.families` (families.py), the authorization server's
tables through oauth/storage.py, on the same connection.

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
from kt_devserver.families import TokenFamilies
from kt_devserver.schema import ADDED_COLUMNS, SCHEMA

MEMORY = ":memory:"


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    # False: the organization turned device sign-in off for its users (issue 13 item 4)
    device_flow: bool = True


@dataclass(frozen=True)
class User:
    id: str
    org_id: str
    email: str
    name: str
    role: str
    password_hash: str
    totp_secret: str | None
    totp_last_step: int | None = None


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
            self._conn.executescript(SCHEMA)
            self._add_missing_columns()
        self.families = TokenFamilies(self._conn)

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
        return _organization(row)

    def find_organization(self, name: str) -> Organization | None:
        row = self._conn.execute("SELECT * FROM organizations WHERE name = ?", (name,)).fetchone()
        return None if row is None else _organization(row)

    def get_organization(self, org_id: str) -> Organization:
        row = self._conn.execute("SELECT * FROM organizations WHERE id = ?", (org_id,)).fetchone()
        return _organization(row)

    def set_organization_device_flow(self, org_id: str, enabled: bool) -> None:
        with self._conn:
            self._conn.execute(
                "UPDATE organizations SET device_flow = ? WHERE id = ?", (int(enabled), org_id)
            )

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

    def accept_totp_step(self, user_id: str, step: int) -> bool:
        """Record `step` as the user's last accepted TOTP step; False if it is not newer."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE users SET totp_last_step = ?"
                " WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
                (step, user_id, step),
            )
        return cursor.rowcount == 1

    def set_user_role(self, user_id: str, role: str) -> None:
        with self._conn:
            self._conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id))

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


def _organization(row: sqlite3.Row) -> Organization:
    return Organization(id=row["id"], name=row["name"], device_flow=bool(row["device_flow"]))


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        org_id=row["org_id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        password_hash=row["password_hash"],
        totp_secret=row["totp_secret"],
        totp_last_step=row["totp_last_step"],
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
