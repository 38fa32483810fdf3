"""`kt auth status`: what credential kt would use, from where, until when. No network, no secret."""

from __future__ import annotations

from typing import Any

import click

from ..errors import NotLoggedIn
from ..identity import session_name
from ..text import clean
from .app import Invocation, common_options
from .views import session_document, timestamp


@click.command()
@common_options
def status(inv: Invocation) -> None:
    """Show the active profile, API URL, account, expiry and credential source.

    Exits 3 when there is no credential. Never prints a token.
    """
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
    doc.update(logged_in=True, **session_document(session, profile=inv.profile, storage=store.kind))
    doc["credential_source"] = store.kind
    doc["expired"] = session.expires_at is not None and session.expires_at <= inv.now()
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
        f"Access token expires: {timestamp(session.expires_at) or 'unknown'}"
        + (" (will be refreshed on next use)" if doc["expired"] else ""),
        f"Session expires: {timestamp(session.refresh_expires_at) or 'unknown'}",
        f"Stored in: {store.kind}",
    ]
    if session.issuer:
        lines[3:3] = [
            f"Identity: {clean(session.subject or '?')} at {clean(session.issuer)} "
            f"(client {clean(session.client_id or '?')})"
        ]
    if effective.value != session.api_url:
        lines.append(
            f"Warning: the configured API URL is {effective.value}; this session is not used"
        )
    inv.console.result(doc, lines)
