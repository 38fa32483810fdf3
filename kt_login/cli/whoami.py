"""`kt auth whoami`: ask the server who the current credential belongs to."""

from __future__ import annotations

import click

from ..text import clean
from .app import Invocation, common_options, with_step_up


@click.command()
@common_options
def whoami(inv: Invocation) -> None:
    """Show the current user, organization, role and scopes, as the server sees them."""

    def run() -> tuple[dict[str, object], str, str]:
        who = inv.authenticated()
        return who.call("GET", "/v1/auth/whoami"), who.source, who.api.api_url

    reply, source, api_url = with_step_up(inv, run)
    user = reply.get("user") if isinstance(reply.get("user"), dict) else {}
    org = reply.get("organization") if isinstance(reply.get("organization"), dict) else {}
    scopes = reply.get("scopes") if isinstance(reply.get("scopes"), list) else []
    assert isinstance(user, dict) and isinstance(org, dict) and isinstance(scopes, list)
    name = f" ({clean(user['name'])})" if user.get("name") else ""
    lines = [
        f"Logged in to {api_url} as {clean(user.get('email', '?'))}{name}",
        f"Organization: {clean(org.get('name', '?'))}",
        f"Role: {clean(reply.get('role', '?'))}",
        f"Scopes: {clean(', '.join(str(s) for s in scopes)) or '(none)'}",
        f"MFA: {'yes' if reply.get('mfa_authenticated') is True else 'no'}",
        f"Credential: {clean(reply.get('auth_method', '?'))} from {source}",
    ]
    inv.console.result(
        {**reply, "profile": inv.profile, "api_url": api_url, "credential_source": source}, lines
    )
