"""`kt auth whoami`: ask the server who the current credential belongs to.

A session whose tokens come from an identity provider other than the API (`--issuer`, issue 10
case 8) is not sent to the API for this: the API's whoami describes the API's own sessions, and
kt has no standard sign (such as RFC 9728 metadata naming the provider) that the API accepts
another issuer's tokens. whoami then shows the identity the provider's validated ID token (or
UserInfo) gave at sign-in, refreshed at the provider if the access token is about to expire,
and says that the API was not asked."""

from __future__ import annotations

import click

from ..api import Account
from ..authenticate import ENVIRONMENT
from ..identity import actor_name, display_name, session_name
from ..session import Session
from ..text import clean
from .app import Invocation, common_options
from .examples import examples
from .step_up import with_step_up
from .views import session_document


@examples(
    "kt auth whoami",
    "kt auth whoami --json",
)
@click.command()
@common_options
def whoami(inv: Invocation) -> None:
    """Show the current user, organization, role and scopes, as the server sees them.

    For a session from another identity provider (--issuer), whose tokens are that provider's,
    shows the identity of its sign-in and says the API was not asked.
    """
    run_whoami(inv)


def run_whoami(inv: Invocation) -> None:
    first = inv.authenticated()
    if first.session is not None and first.foreign_issuer is not None:
        show_provider_identity(inv, first.session(), first.source)
        return

    def run() -> tuple[Account, str, str]:
        who = inv.authenticated()
        return who.call(lambda api, auth: api.whoami(auth)), who.source, who.api.api_url

    account, source, api_url = with_step_up(inv, run)
    who = display_name(
        {"email": account.email, "name": account.name, "sub": account.user_id},
        *_stored_identity(inv, source),
    )
    name = f" ({clean(account.name)})" if account.name and clean(account.name) != who else ""
    actor = actor_name(account.reply.get("act"))  # a delegated token (RFC 8693 §4.1)
    acting = {} if actor is None else {"on_behalf_of": who}
    lines = [
        f"Logged in to {api_url} as "
        + (f"{who}{name}" if actor is None else f"{actor} on behalf of {who}{name}"),
        *_federated_lines(account.reply.get("federated")),
        f"Organization: {clean(_known(account.organization))}",
        f"Role: {clean(_known(account.role))}",
        f"Scopes: {clean(', '.join(account.scopes)) or '(none)'}",
        f"MFA: {'yes' if account.mfa_authenticated else 'no'}",
        f"Credential: {clean(_known(account.auth_method))} from {source}",
    ]
    inv.console.result(
        {
            **account.reply,
            "profile": inv.profile,
            "api_url": api_url,
            "api_asked": True,
            "credential_source": source,
            **acting,
        },
        lines,
    )


def _federated_lines(federated: object) -> list[str]:
    """A CI sign-in's token: the external identity the server exchanged for it."""
    if not isinstance(federated, dict):
        return []
    subject, issuer = federated.get("subject"), federated.get("issuer")
    return [f"Federated from: {clean(str(subject))} at {clean(str(issuer))}"]


def show_provider_identity(inv: Invocation, session: Session, source: str) -> None:
    """A foreign issuer's session: who it names, from the sign-in; the API is not asked."""
    issuer = session.foreign_issuer
    assert issuer is not None
    lines = [
        f"Signed in at {clean(issuer)} as {session_name(session)} "
        f"(subject {clean(session.subject or '?')}, client {clean(session.client_id or '?')})",
        f"API: {session.api_url} was not asked: this session's tokens are from the identity "
        "provider above, not from the API",
        f"Scopes: {clean(', '.join(session.scopes)) or '(none)'}",
        f"MFA: {'yes' if session.mfa_authenticated else 'no'}",
        f"Credential: {session.method} sign-in from {source}",
    ]
    doc = session_document(session, profile=inv.profile, storage=source)
    inv.console.result(
        {**doc, "api_asked": False, "credential_source": source, "issuer": issuer}, lines
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
