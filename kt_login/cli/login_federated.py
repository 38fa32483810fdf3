"""`kt auth login --federated`: a CI job signs in with its own identity token (RFC 8693 token
exchange, signin/federated.py): no KEEPTRUSTS_API_TOKEN secret in the CI system.

The short-lived session is kept like any other (keyring, or --insecure-storage's 0600 file), or
with --no-store not kept at all: its access token is printed alone on stdout, for
`export KEEPTRUSTS_API_TOKEN="$(kt auth login --federated --no-store)"`, so it lives exactly as
long as the job's environment and no file or keyring item is left behind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UsageError
from ..session import Session
from ..signin.federated import federated_sign_in, find_subject_token
from .app import Invocation
from .views import logged_in_line, replaced, replaced_line, session_document, timestamp


@dataclass(frozen=True)
class FederatedOptions:
    subject_token_file: str | None = None
    subject_token_env: str | None = None
    audience: str | None = None
    scope: str | None = None
    issuer: str | None = None
    client_id: str | None = None
    insecure_storage: bool = False
    no_store: bool = False


def run_federated_login(inv: Invocation, opts: FederatedOptions) -> None:
    if opts.no_store and opts.insecure_storage:
        raise UsageError("--no-store keeps nothing: drop --insecure-storage")
    settings = inv.sign_in_settings(issuer=opts.issuer, client_id=opts.client_id)
    api_url = settings.api_url.value
    # The identity token first: a missing one is a usage error whatever the store.
    subject = find_subject_token(
        inv.app.env,
        inv.http(),
        path=opts.subject_token_file,
        variable=opts.subject_token_env,
        audience=opts.audience or api_url,
    )
    store = None if opts.no_store else inv.store_for_login(insecure_storage=opts.insecure_storage)
    session = federated_sign_in(
        inv.authenticator,
        issuer=settings.issuer.value,
        client_id=settings.client_id.value,
        api_url=api_url,
        subject=subject,
        scope=opts.scope,
    )
    if store is None:
        _print_unstored(inv, session)
        return
    previous = inv.stored_session()
    inv.authenticator.save(store, session)
    gone = replaced(previous, session)
    lines = [logged_in_line(session, store.kind), _lifetime_line(inv, session)]
    if gone is not None:
        lines.append(replaced_line(gone, inv.profile))
    inv.console.result(
        {
            "logged_in": True,
            "stored": True,
            **session_document(session, profile=inv.profile, storage=store.kind),
            "replaced": gone,
        },
        lines,
    )


def _lifetime_line(inv: Invocation, session: Session) -> str:
    if session.expires_at is None:
        return "It has no refresh token: sign in again with a new identity token when it ends."
    minutes = max(1, math.ceil((session.expires_at - inv.now()) / 60))
    return (
        f"It expires in {minutes} minute{'s' if minutes != 1 else ''} and has no refresh token: "
        "sign in again with a new identity token then."
    )


def _print_unstored(inv: Invocation, session: Session) -> None:
    """--no-store: the access token alone on stdout (or in the JSON document), nothing kept."""
    if inv.json_mode:
        inv.console.result(
            {
                "logged_in": True,
                "stored": False,
                "access_token": session.access_token,
                "token_type": "Bearer",
                "expires_at": timestamp(session.expires_at),
                **session_document(session, profile=inv.profile, storage="none"),
            }
        )
        return
    who = logged_in_line(session, "nowhere (--no-store)")
    inv.console.info(who)
    inv.console.info(_lifetime_line(inv, session))
    inv.console.info(
        "Its access token is below, alone on stdout: use it as KEEPTRUSTS_API_TOKEN for the "
        "commands that follow."
    )
    inv.console.secret(session.access_token)
