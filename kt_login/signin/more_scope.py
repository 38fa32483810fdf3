"""More scopes for a stored session (`kt auth refresh --scope`): a refresh gives the scopes a
session has, so more need a new consent — the same sign-in the session came from, asking for
what it was granted and what it lacks, never dropping any.

A password session's (and an API token's) scopes are the account's role's on the first-party
API (docs/api-contract.md, Scopes): no consent adds to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx2

from ..errors import UsageError
from ..flows import drive
from ..flows.authcode import DEFAULT_SCOPE
from ..flows.discovery import discover
from ..session import OAUTH, Session

# The sign-ins that can ask the person for a new consent.
RECONSENT_METHODS = ("browser", "device")


@dataclass(frozen=True)
class ScopeRequest:
    """What `--scope` asks of a session: the scopes it lacks, and for an OAuth session the
    scope a new sign-in asks for (`ask`: what it was granted, then what it lacks)."""

    missing: tuple[str, ...]
    ask: str

    @property
    def complete(self) -> bool:
        return not self.missing


def granted_scopes(session: Session) -> tuple[str, ...]:
    """The OAuth scopes `session` was granted. Sessions stored before kt kept them: a foreign
    issuer's tokens carry its own scopes; the API's own issuer was asked for kt's defaults."""
    if session.granted_scope is not None:
        return tuple(session.granted_scope.split())
    if session.foreign_issuer is not None:
        return session.scopes
    return tuple(DEFAULT_SCOPE.split())


def scope_request(session: Session, scope: str) -> ScopeRequest:
    """`scope` (space-separated) measured against what `session` holds: its scopes (the role's,
    for the API's sessions) and, for an OAuth session, the scopes its issuer granted."""
    wanted = tuple(dict.fromkeys(scope.split()))
    if not wanted:
        raise UsageError("--scope is empty")
    granted = granted_scopes(session) if session.kind == OAUTH else ()
    held = set(session.scopes) | set(granted)
    missing = tuple(s for s in wanted if s not in held)
    return ScopeRequest(missing=missing, ask=" ".join(dict.fromkeys((*granted, *missing))))


def not_granted(request: ScopeRequest, session: Session) -> tuple[str, ...]:
    """The scopes a new sign-in for `request` still did not bring (the provider may grant
    fewer than asked for: RFC 6749 §3.3)."""
    return scope_request(session, " ".join(request.missing)).missing if request.missing else ()


def check_consentable(session: Session, request: ScopeRequest, *, http: httpx2.Client) -> None:
    """UsageError when the session's issuer lists the scopes it offers (scopes_supported) and
    some that the session lacks are not among them: no consent there can add those (for the
    API's own issuer: its API scopes follow the account's role)."""
    if session.issuer is None or not request.missing:
        return
    supported = drive(discover(session.issuer), http).scopes_supported
    if supported is None:
        return
    beyond = [s for s in request.missing if s not in supported]
    if not beyond:
        return
    why = (
        "; the API's own scopes follow your role, which an administrator can change"
        if session.foreign_issuer is None
        else ""
    )
    raise UsageError(
        f"{', '.join(beyond)}: not a scope {session.issuer} offers (it lists "
        f"{' '.join(supported) or 'none'}), so no new consent can add it{why}"
    )
