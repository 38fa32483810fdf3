"""`kt auth status`: what credential kt would use, from where, until when. No network, no secret."""

from __future__ import annotations

from typing import Any

import click

from ..errors import NotLoggedIn
from ..identity import session_name
from ..refresh import can_refresh
from ..session import Session
from ..text import clean
from .app import Invocation, common_options
from .examples import examples
from .status_all import run_status_all
from .views import dpop_thumbprint, session_document, timestamp


@examples(
    "kt auth status",
    "kt auth status --json",
    "kt --profile work auth status",
)
@click.command()
@click.option(
    "--all",
    "all_profiles",
    is_flag=True,
    help="Every profile: account, store, expiry, and which is active and why.",
)
@common_options
def status(inv: Invocation, all_profiles: bool) -> None:
    """Show the active profile, API URL, account, expiry and credential source.

    Exits 3 when there is no credential, or when the session has expired (its access token and
    its refresh token, or it has none); with --all, when the active profile's has. No network;
    never prints a token.
    """
    if all_profiles:
        run_status_all(inv)
    else:
        run_status(inv)


def run_status(inv: Invocation) -> None:
    settings = inv.base_settings
    doc: dict[str, Any] = {"profile": inv.profile, "logged_in": False}
    if inv.env_token:
        doc.update(logged_in=True, api_url=settings.api_url.value, credential_source="environment")
        inv.console.result(
            doc,
            [
                f"Profile: {inv.profile}",
                f"API URL: {settings.api_url.value} ({settings.api_url.source})",
                "Credential: API token from KEEPTRUSTS_API_TOKEN (environment); it takes "
                "precedence over any stored session",
            ],
        )
        return
    session, store = inv.find_session()
    if session is None or store is None:
        doc["api_url"] = settings.api_url.value
        inv.console.result(doc, [f"Profile {inv.profile!r}: not logged in."])
        raise NotLoggedIn(f"not logged in (profile {inv.profile!r})", hint=inv.login_hint())
    effective = inv.settings_for(session).api_url
    now = inv.now()
    access_expired = session.expires_at is not None and session.expires_at <= now
    refreshable = can_refresh(session, now)
    # Expired: nothing left to use or to refresh it with; it takes a new sign-in.
    expired = access_expired and not refreshable
    doc.update(
        logged_in=not expired, **session_document(session, profile=inv.profile, storage=store.kind)
    )
    doc["credential_source"] = store.kind
    doc.update(expired=expired, access_token_expired=access_expired, refreshable=refreshable)
    lines = [
        f"Profile: {inv.profile}",
        f"API URL: {session.api_url}",
        f"Account: {session_name(session)}"
        + (
            f" ({clean(session.organization)}, {clean(session.role)})"
            if session.organization
            else ""
        ),
        f"Signed in with: {session.method}; MFA: {'yes' if session.mfa_authenticated else 'no'}",
        _access_line(session, expired=access_expired, refreshable=refreshable),
        f"Session {'expired' if expired else 'expires'}: "
        + (timestamp(_session_end(session)) or "unknown"),
        f"Stored in: {store.kind}",
    ]
    if session.issuer:
        lines[3:3] = [
            f"Identity: {clean(session.subject or '?')} at {clean(session.issuer)} "
            f"(client {clean(session.client_id or '?')}"
            + (
                f"; issuer from the {clean(session.issuer_source)})"
                if session.issuer_source
                else ")"
            )
        ]
    jkt = dpop_thumbprint(session)
    if jkt is not None:
        lines.append(f"Bound to DPoP key: {jkt} (SHA-256 thumbprint; the key stays in the store)")
    if effective.value != session.api_url:
        lines.append(
            f"Warning: the configured API URL is {effective.value}; this session is not used"
        )
    if expired:
        lines[0:0] = [f"Profile {inv.profile!r}: the session has expired; sign in again."]
    inv.console.result(doc, lines)
    if expired:
        raise NotLoggedIn(
            f"the session of profile {inv.profile!r} has expired", hint=inv.login_hint()
        )


def _session_end(session: Session) -> float | None:
    """When the session can no longer be used: its refresh token's expiry, or with none, the
    access token's."""
    return session.refresh_expires_at if session.refresh_token else session.expires_at


def _access_line(session: Session, *, expired: bool, refreshable: bool) -> str:
    when = timestamp(session.expires_at) or "unknown"
    if not expired:
        note = "" if refreshable or session.expires_at is None else " (cannot be refreshed)"
        return f"Access token expires: {when}{note}"
    if refreshable:
        return f"Access token expired: {when} (will be refreshed on next use)"
    why = "the refresh token has expired" if session.refresh_token else "no refresh token"
    return f"Access token expired: {when} ({why})"
