"""`kt auth whoami`: ask the server who the current credential belongs to."""

from __future__ import annotations

import click

from ..api import Account
from ..authenticate import ENVIRONMENT
from ..identity import display_name, session_name
from ..text import clean
from .app import Invocation, common_options
from .step_up import with_step_up


@click.command()
@common_options
def whoami(inv: Invocation) -> None:
    """Show the current user, organization, role and scopes, as the server sees them."""
    run_whoami(inv)


def run_whoami(inv: Invocation) -> None:
    def run() -> tuple[Account, str, str]:
        who = inv.authenticated()
        return who.call(lambda api, auth: api.whoami(auth)), who.source, who.api.api_url

    account, source, api_url = with_step_up(inv, run)
    who = display_name(
        {"email": account.email, "name": account.name, "sub": account.user_id},
        *_stored_identity(inv, source),
    )
    name = f" ({clean(account.name)})" if account.name and clean(account.name) != who else ""
    lines = [
        f"Logged in to {api_url} as {who}{name}",
        f"Organization: {clean(_known(account.organization))}",
        f"Role: {clean(_known(account.role))}",
        f"Scopes: {clean(', '.join(account.scopes)) or '(none)'}",
        f"MFA: {'yes' if account.mfa_authenticated else 'no'}",
        f"Credential: {clean(_known(account.auth_method))} from {source}",
    ]
    inv.console.result(
        {**account.reply, "profile": inv.profile, "api_url": api_url, "credential_source": source},
        lines,
    )


def _stored_identity(inv: Invocation, source: str) -> list[dict[str, object]]:
    """The stored session's identity, which names the person when the server's reply does not
    (a foreign issuer's API may not know the email); none for the environment's token."""
    if source == ENVIRONMENT:
        return []
    session = inv.find_session()[0]
    return [] if session is None else [{"name": session_name(session)}]


def _known(value: str | None) -> str:
    return "?" if value is None else value
