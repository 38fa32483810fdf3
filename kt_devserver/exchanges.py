"""RFC 8693 token exchange's records: trust rules for CI identities, spent subject-token `jti`s,
and the token families a token exchange issued (schema.py has the tables).

A trust rule lets one organization's CI jobs sign in with their own identity: a JWT from an
external OpenID Connect issuer (GitHub Actions, GitLab, a cloud's workload identity) whose `aud`
is the rule's audience and whose claims match the rule's patterns (`fnmatch`, case-sensitive,
e.g. `repository=acme/app`, `ref=refs/heads/main`) is exchanged for an API token with the rule's
scopes, living the rule's lifetime. The tokens are issued to the rule's workload user (role
`workload`, no password: it cannot sign in any other way), so whoami names the rule.

Rules never grant the `tokens:*` scopes: a CI identity must not become a way to mint long-lived
secrets, which is what federation is there to replace.
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from kt_devserver import scopes
from kt_devserver.credentials import new_id
from kt_devserver.db import Database

WORKLOAD_ROLE = "workload"
WORKLOAD_PASSWORD_HASH = "!workload"  # noqa: S105 - not a hash: no password ever matches it
WORKLOAD_EMAIL_DOMAIN = "workload.invalid"
# What a trust rule may grant: the API's scopes, except making tokens.
GRANTABLE_SCOPES: tuple[str, ...] = tuple(
    s for s in scopes.ALL_SCOPES if not s.startswith("tokens:")
)
MAX_RULE_LIFETIME = 3600
DEFAULT_RULE_LIFETIME = 900


@dataclass(frozen=True)
class TrustRule:
    id: str
    org_id: str
    name: str
    issuer: str
    audience: str
    claims: Mapping[str, str]
    scopes: tuple[str, ...]
    lifetime: int
    user_id: str
    created_at: float

    def mismatch(self, claims: Mapping[str, object]) -> str | None:
        """The first claim of the rule's patterns that `claims` does not match, or None."""
        for name, pattern in self.claims.items():
            value = claims.get(name)
            if not isinstance(value, str) or not fnmatch.fnmatchcase(value, pattern):
                return name
        return None


@dataclass(frozen=True)
class Exchanged:
    """A token family a token exchange issued."""

    session_id: str
    scopes: tuple[str, ...]
    issuer: str | None  # CI sign-in: the external issuer and subject
    subject: str | None
    parent_session_id: str | None  # delegation: the family it was derived from, and the actor
    actor: str | None

    @property
    def federated(self) -> bool:
        return self.subject is not None


class RuleError(ValueError):
    """A trust rule that cannot be added as given."""


def parse_claim_patterns(pairs: tuple[str, ...]) -> dict[str, str]:
    """`NAME=PATTERN` pairs (`repository=acme/app`) as a mapping; at least one is required, so
    that no rule trusts every token of an issuer."""
    patterns: dict[str, str] = {}
    for pair in pairs:
        name, sep, pattern = pair.partition("=")
        if not sep or not name.strip() or not pattern:
            raise RuleError(f"a claim pattern is NAME=PATTERN, e.g. repository=acme/app: {pair!r}")
        patterns[name.strip()] = pattern
    if not patterns:
        raise RuleError("a trust rule needs at least one claim pattern, e.g. repository=acme/app")
    return patterns


class Exchanges:
    """The three tables on the database's one connection."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: sqlite3.Connection = db.connection

    # --- trust rules ---------------------------------------------------------------------------

    def add_rule(
        self,
        *,
        name: str,
        org_id: str,
        issuer: str,
        audience: str,
        claims: Mapping[str, str],
        rule_scopes: tuple[str, ...],
        lifetime: int,
        now: float,
    ) -> TrustRule:
        beyond = sorted(set(rule_scopes) - set(GRANTABLE_SCOPES))
        if beyond:
            raise RuleError(
                f"a trust rule cannot grant {', '.join(beyond)}; it may grant "
                + ", ".join(GRANTABLE_SCOPES)
            )
        if not rule_scopes:
            raise RuleError("a trust rule needs at least one scope")
        if not 1 <= lifetime <= MAX_RULE_LIFETIME:
            raise RuleError(f"the lifetime is 1 to {MAX_RULE_LIFETIME} seconds")
        if self.rule(name) is not None:
            raise RuleError(f"there is a trust rule named {name!r} already")
        email = f"{name}@{WORKLOAD_EMAIL_DOMAIN}"
        user = self._db.find_user_by_email(email)  # a removed rule's, added again
        if user is None:
            user = self._db.create_user(
                org_id=org_id,
                email=email,
                name=f"CI workload {name}",
                role=WORKLOAD_ROLE,
                password_hash=WORKLOAD_PASSWORD_HASH,
                totp_secret=None,
            )
        elif user.role != WORKLOAD_ROLE or user.org_id != org_id:
            raise RuleError(f"the name {name!r} is taken by another account")
        rule = TrustRule(
            id=new_id("trr_"),
            org_id=org_id,
            name=name,
            issuer=issuer,
            audience=audience,
            claims=dict(claims),
            scopes=tuple(scopes.ordered(rule_scopes)),
            lifetime=lifetime,
            user_id=user.id,
            created_at=now,
        )
        with self._conn:
            self._conn.execute(
                "INSERT INTO trust_rules (id, org_id, name, issuer, audience, claims, scopes,"
                " lifetime, user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rule.id,
                    org_id,
                    name,
                    issuer,
                    audience,
                    json.dumps(rule.claims, sort_keys=True),
                    " ".join(rule.scopes),
                    lifetime,
                    user.id,
                    now,
                ),
            )
        return rule

    def rule(self, name: str) -> TrustRule | None:
        row = self._conn.execute("SELECT * FROM trust_rules WHERE name = ?", (name,)).fetchone()
        return None if row is None else _rule(row)

    def rules(self, *, issuer: str | None = None) -> list[TrustRule]:
        if issuer is None:
            rows = self._conn.execute("SELECT * FROM trust_rules ORDER BY created_at, name")
        else:
            rows = self._conn.execute(
                "SELECT * FROM trust_rules WHERE issuer = ? ORDER BY created_at, name", (issuer,)
            )
        return [_rule(row) for row in rows.fetchall()]

    def rule_of_user(self, user_id: str) -> TrustRule | None:
        row = self._conn.execute(
            "SELECT * FROM trust_rules WHERE user_id = ?", (user_id,)
        ).fetchone()
        return None if row is None else _rule(row)

    def remove_rule(self, name: str, *, now: float) -> bool:
        """Delete the rule and revoke every token issued under it."""
        rule = self.rule(name)
        if rule is None:
            return False
        with self._conn:
            self._conn.execute(
                "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                (now, rule.user_id),
            )
            self._conn.execute("DELETE FROM trust_rules WHERE id = ?", (rule.id,))
        return True

    # --- subject tokens seen -------------------------------------------------------------------

    def spend_jti(self, issuer: str, jti: str, *, expires_at: float, now: float) -> bool:
        """Record a subject token's jti; False when it was seen before (a replay). Entries of
        tokens that have expired are dropped: such a token is refused for its `exp` anyway."""
        with self._conn:
            self._conn.execute("DELETE FROM subject_token_jtis WHERE expires_at < ?", (now,))
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO subject_token_jtis (issuer, jti, expires_at)"
                " VALUES (?, ?, ?)",
                (issuer, jti, expires_at),
            )
        return cursor.rowcount == 1

    # --- exchanged families --------------------------------------------------------------------

    def record(self, exchanged: Exchanged) -> None:
        """Describe a family just issued (in the caller's transaction)."""
        self._conn.execute(
            "INSERT INTO exchanged_sessions (session_id, scopes, issuer, subject,"
            " parent_session_id, actor) VALUES (?, ?, ?, ?, ?, ?)",
            (
                exchanged.session_id,
                " ".join(exchanged.scopes),
                exchanged.issuer,
                exchanged.subject,
                exchanged.parent_session_id,
                exchanged.actor,
            ),
        )

    def find(self, session_id: str) -> Exchanged | None:
        row = self._conn.execute(
            "SELECT * FROM exchanged_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        if row is None:
            return None
        return Exchanged(
            session_id=row["session_id"],
            scopes=tuple(row["scopes"].split()),
            issuer=row["issuer"],
            subject=row["subject"],
            parent_session_id=row["parent_session_id"],
            actor=row["actor"],
        )


def _rule(row: sqlite3.Row) -> TrustRule:
    claims = json.loads(row["claims"])
    return TrustRule(
        id=row["id"],
        org_id=row["org_id"],
        name=row["name"],
        issuer=row["issuer"],
        audience=row["audience"],
        claims={str(k): str(v) for k, v in claims.items()},
        scopes=tuple(row["scopes"].split()),
        lifetime=int(row["lifetime"]),
        user_id=row["user_id"],
        created_at=float(row["created_at"]),
    )
