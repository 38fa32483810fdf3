"""Asking for more than a session has (issue 14 item 3): the scopes to ask for when the API
answers insufficient_scope (RFC 6750 §3.1) — every scope the session had and those required,
never fewer — or that no sign-in at this provider can grant them. The MFA step-up's request is
`signin.browser.step_up` (RFC 9470)."""

from __future__ import annotations

import httpx2

from ..flows import drive
from ..flows.discovery import discover
from ..session import Session
from .oidc import SignInRequest, scope_to_ask


def union_of_scopes(*groups: str | tuple[str, ...]) -> str:
    """Every scope of each group, in the order first named, none dropped and none twice."""
    seen: dict[str, None] = {}
    for group in groups:
        for name in group.split() if isinstance(group, str) else group:
            seen.setdefault(name, None)
    return " ".join(seen)


def scopes_to_ask(
    login: SignInRequest, session: Session, required: str, *, http: httpx2.Client
) -> str | None:
    """What a sign-in for `required` asks the provider for: the session's scopes, those a sign-in
    asks by default (openid, offline_access: what keeps it a session), and the required ones.
    None when the provider lists its scopes and a required one is not among them: signing in
    again could not grant it."""
    meta = drive(discover(login.issuer), http)
    listed = meta.scopes_supported
    if listed is not None and not set(required.split()) <= set(listed):
        return None
    return union_of_scopes(session.scopes, scope_to_ask(login, meta), required)
