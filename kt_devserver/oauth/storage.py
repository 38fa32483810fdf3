"""The authorization server's own rows (tables in schema.py), on the database's one connection.

Authorization codes, device authorizations, browser sign-in sessions, pending authorization
requests (transactions), the ID-token signing key and federated sign-in (SSO) attempts and
identities. The token families that codes buy are stored through `Database.families`, in the
transaction that spends the code.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from kt_devserver.credentials import hash_secret, new_id
from kt_devserver.db import Database
from kt_devserver.families import Grant, IssuedPair, Session

DEVICE_PENDING, DEVICE_APPROVED, DEVICE_DENIED = "pending", "approved", "denied"
# The signed-in user's organization does not allow device sign-in (`organizations.device_flow`).
DEVICE_REFUSED = "refused"

_SPEND_CODE = "UPDATE oauth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL"
_LINK_CODE = "UPDATE oauth_codes SET session_id = ? WHERE code_hash = ?"
_SPEND_DEVICE_CODE = (
    "UPDATE oauth_device_codes SET used_at = ? WHERE id = ? AND used_at IS NULL AND status = ?"
)
_LINK_DEVICE_CODE = "UPDATE oauth_device_codes SET session_id = ? WHERE id = ?"


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
    # RFC 8707: the API the tokens it buys are for (None: stored before; this server's API).
    resource: str | None = None

    # authlib's AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


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
    resource: str | None = None  # RFC 8707, as AuthCode's

    # authlib's DeviceCredentialMixin
    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class SsoAttempt:
    """One federated sign-in in flight (oauth/sso.py), found by the hash of its `state`."""

    txn_id: str
    browser_session_id: str
    nonce: str
    code_verifier: str
    expires_at: float
    used_at: float | None


class OAuthStore:
    def __init__(self, db: Database) -> None:
        self._conn = db.connection
        self._families = db.families

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
                " nonce, auth_time, mfa, code_challenge, code_challenge_method, expires_at,"
                " resource) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    code.resource,
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

    def exchange(
        self,
        credential: AuthCode | DeviceCode,
        *,
        now: float,
        pair: IssuedPair,
        dpop_jkt: str | None = None,
    ) -> str | None:
        """Spend an authorization code or an approved device code and store the token family it
        buys, with `pair` as its first tokens, in one transaction; `dpop_jkt` binds the family to
        that DPoP key.

        Returns the new family's session id, or None if the credential was already spent.
        """
        spend: tuple[str, tuple[object, ...]]
        if isinstance(credential, AuthCode):
            key, link = credential.code_hash, _LINK_CODE
            spend = _SPEND_CODE, (now, key)
        else:
            key, link = credential.id, _LINK_DEVICE_CODE
            spend = _SPEND_DEVICE_CODE, (now, key, DEVICE_APPROVED)
        user_id, auth_time = credential.user_id, credential.auth_time
        assert user_id is not None and auth_time is not None  # a device code is approved
        # created_at is when the user signed in (the age of its MFA proof, for mfa_max_age);
        # the family's absolute expiry counts from the exchange.
        session = Session(
            new_id("ses_"),
            user_id,
            credential.mfa,
            auth_time,
            pair.refresh_expires_at,
            None,
            dpop_jkt,
        )
        grant = Grant(
            session.id,
            credential.client_id,
            credential.scope,
            auth_time,
            credential.mfa,
            resource=credential.resource,
        )
        with self._conn:
            if self._conn.execute(*spend).rowcount != 1:
                return None
            self._families.insert(session, pair, grant=grant)
            self._conn.execute(link, (session.id, key))
        return session.id

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
        resource: str | None = None,
    ) -> str:
        device_id = new_id("dev_")
        with self._conn:
            self._conn.execute(
                "INSERT INTO oauth_device_codes (id, device_code_hash, user_code_hash, client_id,"
                " scope, poll_interval, created_at, expires_at, status, resource)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    resource,
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
        refused: bool = False,
    ) -> bool:
        """Approve or deny a pending, unexpired device code; False if it no longer is one.
        `refused`: denied because `user_id`'s organization does not allow device sign-in."""
        status = DEVICE_REFUSED if refused else DEVICE_APPROVED if approved else DEVICE_DENIED
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE oauth_device_codes SET status = ?, user_id = ?, auth_time = ?, mfa = ?,"
                " decided_at = ? WHERE id = ? AND status = ? AND expires_at > ?",
                (
                    status,
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

    # --- federated sign-in (SSO) -------------------------------------------------------------

    def save_sso_attempt(
        self, state: str, txn_id: str, session_id: str, nonce: str, verifier: str, expires_at: float
    ) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO sso_attempts (state_hash, txn_id, browser_session_id, nonce,"
                " code_verifier, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (hash_secret(state), txn_id, session_id, nonce, verifier, expires_at),
            )

    def take_sso_attempt(self, state: str, *, now: float) -> SsoAttempt | None:
        """The attempt `state` names, marked used; None if unknown, used or expired."""
        state_hash = hash_secret(state)
        with self._conn:
            row = self._conn.execute(
                "SELECT * FROM sso_attempts WHERE state_hash = ?", (state_hash,)
            ).fetchone()
            if row is None or row["used_at"] is not None or now >= row["expires_at"]:
                return None
            self._conn.execute(
                "UPDATE sso_attempts SET used_at = ? WHERE state_hash = ?", (now, state_hash)
            )
        return SsoAttempt(
            row["txn_id"],
            row["browser_session_id"],
            row["nonce"],
            row["code_verifier"],
            row["expires_at"],
            now,
        )

    def sso_user(self, iss: str, sub: str) -> str | None:
        row = self._conn.execute(
            "SELECT user_id FROM sso_identities WHERE iss = ? AND sub = ?", (iss, sub)
        ).fetchone()
        return None if row is None else str(row["user_id"])

    def link_sso_identity(self, iss: str, sub: str, user_id: str, *, now: float) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO sso_identities (iss, sub, user_id, created_at) VALUES (?, ?, ?, ?)",
                (iss, sub, user_id, now),
            )


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
        resource=row["resource"],
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
        resource=row["resource"],
    )
