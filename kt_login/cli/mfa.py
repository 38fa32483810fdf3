"""`kt auth mfa challenge`: trade a short-lived mfa_token and a one-time code for a session."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..errors import ApiError, UsageError
from .app import Invocation, common_options, read_secret_line
from .views import logged_in_line, session_document

if TYPE_CHECKING:
    from ..session import Session
    from ..store import CredentialStore

MAX_PROMPTS = 3
MFA_ACR = "urn:keeptrusts:acr:mfa"


@click.group()
def mfa() -> None:
    """Multi-factor authentication."""


@mfa.command("challenge")
@click.option(
    "--token",
    "mfa_token",
    metavar="MFA_TOKEN",
    help="The mfa_token an auth.mfa_required answer gave you ('-' reads it from stdin).",
)
@click.option(
    "--browser",
    is_flag=True,
    help="Step up in the browser instead: sign in again with MFA (acr_values, prompt=login).",
)
@click.option(
    "--acr-values",
    metavar="ACR",
    default=MFA_ACR,
    show_default=True,
    help="With --browser: the authentication level to ask the issuer for.",
)
@click.option(
    "--insecure-storage",
    is_flag=True,
    help="Keep the session in a plaintext file (0600) instead of the OS keyring.",
)
@common_options
def challenge(
    inv: Invocation,
    mfa_token: str | None,
    browser: bool,
    acr_values: str,
    insecure_storage: bool,
) -> None:
    """Complete an MFA challenge; the new session has mfa_authenticated: true.

    The one-time code is prompted for on a terminal, or read from stdin otherwise:

        echo 123456 | kt auth mfa challenge --token mfa_...

    With --browser, the issuer is asked for a fresh sign-in at the MFA level, and the returned
    ID token must show it (acr and auth_time are checked).
    """
    if browser:
        if mfa_token:
            raise UsageError("use either --token or --browser")
        from .login_oauth import browser_step_up

        browser_step_up(inv, acr_values=acr_values, insecure_storage=insecure_storage)
        return
    if not mfa_token:
        raise UsageError("--token MFA_TOKEN is required (or use --browser)")
    if mfa_token == "-":  # noqa: S105 - the stdin marker, not a secret
        if sys.stdin.isatty():
            raise UsageError("--token - reads the token from stdin, but stdin is a terminal")
        mfa_token = read_secret_line(sys.stdin, "mfa token")
        code = None
    else:
        code = None if inv.interactive else read_secret_line(sys.stdin, "MFA code")
    store = inv.store_for_new_session(insecure_storage=insecure_storage)
    complete_challenge(inv, mfa_token, code=code, store=store, announce=True)


def complete_challenge(
    inv: Invocation,
    mfa_token: str,
    *,
    code: str | None = None,
    store: CredentialStore | None = None,
    announce: bool = False,
) -> Session:
    """Ask for the code (or use `code`), exchange it, and store the session in place of the old."""
    api = inv.api(inv.base_settings.api_url.value)
    if store is None:
        store = inv.store_for_new_session(insecure_storage=False)
    attempts = 1 if code is not None else MAX_PROMPTS
    for attempt in range(attempts):
        if code is None and not inv.interactive:
            raise UsageError("no MFA code: pipe it on stdin or run on a terminal")
        this_code = code if code is not None else _prompt_code()
        try:
            session = api.mfa_challenge(mfa_token, this_code)
            break
        except ApiError as exc:
            if exc.code != "auth.invalid_mfa_code" or attempt == attempts - 1:
                raise
            inv.console.warn("that code was not accepted; try again")
    inv.replace_session(store, session)
    if announce:
        inv.console.result(
            {
                "logged_in": True,
                **session_document(session, profile=inv.profile, storage=store.kind),
            },
            [logged_in_line(session, store.kind), "MFA: verified for this session."],
        )
    return session


def _prompt_code() -> str:
    value = click.prompt("Authentication code", hide_input=True, err=True)
    return str(value).strip().replace(" ", "")
