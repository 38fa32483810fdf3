"""`kt auth mfa challenge`: trade a short-lived mfa_token and a one-time code for a session."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import click

from ..errors import UsageError
from .app import Invocation, common_options, read_secret_line
from .examples import examples
from .login_oauth import run_browser_step_up
from .step_up import complete_challenge

MFA_ACR = "urn:keeptrusts:acr:mfa"


@dataclass(frozen=True)
class ChallengeOptions:
    mfa_token: str | None = None
    browser: bool = False
    acr_values: str = MFA_ACR
    insecure_storage: bool = False


@examples(
    "kt auth mfa challenge --token mfa_…",
    "echo 123456 | kt auth mfa challenge --token mfa_…",
    "kt auth mfa challenge --browser",
)
@click.command("challenge")
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
def challenge(inv: Invocation, **flags: Any) -> None:
    """Complete an MFA challenge; the new session has mfa_authenticated: true.

    The one-time code is prompted for on a terminal, or read from stdin otherwise:

        echo 123456 | kt auth mfa challenge --token mfa_...

    With --browser, the issuer is asked for a fresh sign-in at the MFA level, and the returned
    ID token must show it (acr and auth_time are checked).
    """
    run_challenge(inv, ChallengeOptions(**flags))


def run_challenge(inv: Invocation, opts: ChallengeOptions) -> None:
    if opts.browser:
        if opts.mfa_token:
            raise UsageError("use either --token or --browser")
        run_browser_step_up(inv, acr_values=opts.acr_values, insecure_storage=opts.insecure_storage)
        return
    mfa_token = opts.mfa_token
    if not mfa_token:
        raise UsageError("--token MFA_TOKEN is required (or use --browser)")
    if mfa_token == "-":  # noqa: S105 - the stdin marker, not a secret
        if sys.stdin.isatty():
            raise UsageError("--token - reads the token from stdin, but stdin is a terminal")
        mfa_token = read_secret_line(sys.stdin, "mfa token")
        code = None
    else:
        code = None if inv.interactive else read_secret_line(sys.stdin, "MFA code")
    store = inv.store_for_new_session(insecure_storage=opts.insecure_storage)
    complete_challenge(
        inv,
        mfa_token,
        code=code,
        store=store,
        announce=True,
        insecure_storage=opts.insecure_storage,
    )
