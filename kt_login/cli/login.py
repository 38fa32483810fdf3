"""`kt auth login`: email and password against the first-party API, with the MFA challenge."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..errors import MfaRequired, UsageError
from .app import Invocation, common_options, read_secret_line
from .views import logged_in_line, session_document

if TYPE_CHECKING:
    from ..session import Session


@click.command()
@click.option("--email", metavar="EMAIL", help="Your account's email (prompted for on a terminal).")
@click.option(
    "--password",
    metavar="PASSWORD",
    help="Password on the command line: visible to other users and in shell history. "
    "Prefer --password-stdin or the prompt.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option(
    "--insecure-storage",
    is_flag=True,
    help="Keep the session in a plaintext file (0600) instead of the OS keyring.",
)
@click.option(
    "--browser",
    is_flag=True,
    help="Sign in in your web browser (OAuth 2.0 Authorization Code + PKCE).",
)
@click.option(
    "--no-browser",
    is_flag=True,
    help="With --browser: print the sign-in URL instead of opening a browser.",
)
@click.option(
    "--issuer",
    metavar="URL",
    help="OpenID Connect issuer for --browser/--device (default: the profile's, else the API URL).",
)
@click.option("--client-id", metavar="ID", help="OAuth client id at the issuer (default: kt-cli).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Fixed loopback port for the browser's redirect (default: any free port).",
)
@click.option(
    "--timeout",
    type=click.IntRange(10, 3600),
    default=300,
    show_default=True,
    help="Seconds to wait for the browser sign-in.",
)
@click.option("--scope", metavar="SCOPES", help="Scopes to ask for (space-separated).")
@click.option(
    "--device",
    is_flag=True,
    help="Sign in from another device (phone, laptop) with a short code: for SSH sessions, "
    "containers and machines without a browser.",
)
@click.option("--no-qr", is_flag=True, help="With --device: do not draw the QR code.")
@common_options
def login(
    inv: Invocation,
    email: str | None,
    password: str | None,
    password_stdin: bool,
    insecure_storage: bool,
    browser: bool,
    no_browser: bool,
    issuer: str | None,
    client_id: str | None,
    port: int,
    timeout: int,
    scope: str | None,
    device: bool,
    no_qr: bool,
) -> None:
    """Sign in; the session is kept for later commands.

    With --email, email and password: on a terminal you are prompted for what
    is missing, including an MFA code if your account has MFA; elsewhere pass --password-stdin,
    and an MFA account exits 4 with the `kt auth mfa challenge` command to run.

    With --browser, your browser opens the sign-in page (password, MFA or your company's
    single sign-on) and sends the result back to kt on 127.0.0.1. With --device, kt shows a
    short code and a QR code to approve on another device.

    Without a method: password when --email is given, the browser when one can be opened, the
    device flow when none can (SSH without a display, no DISPLAY/WAYLAND_DISPLAY, a container).
    """
    method = _choose_method(
        inv,
        email=email,
        password_given=password is not None or password_stdin,
        browser=browser or no_browser,
        device=device,
        oauth_flags=bool(issuer or client_id),
    )
    if method == "device":
        from .login_oauth import device_login

        device_login(
            inv,
            insecure_storage=insecure_storage,
            issuer=issuer,
            client_id=client_id,
            scope=scope,
            show_qr=not no_qr,
        )
        return
    if method == "browser":
        from .login_oauth import browser_login

        browser_login(
            inv,
            insecure_storage=insecure_storage,
            open_browser=not no_browser,
            issuer=issuer,
            client_id=client_id,
            port=port,
            timeout=timeout,
            scope=scope,
        )
        return
    if password is not None and password_stdin:
        raise UsageError("use either --password or --password-stdin, not both")
    if password is not None:
        inv.console.warn(
            "using --password on the command line is insecure (it shows in process lists and "
            "shell history); use --password-stdin or the prompt"
        )
    if inv.env_token:
        inv.console.warn(
            "KEEPTRUSTS_API_TOKEN is set: other commands will keep using it instead of this session"
        )
    api_url = inv.base_settings.api_url.value
    store = inv.store_for_login(insecure_storage=insecure_storage)

    if not email:
        if not inv.interactive:
            raise UsageError("--email is required when not running on a terminal")
        email = str(click.prompt("Email", err=True)).strip()
    if password_stdin:
        password = read_secret_line(sys.stdin, "password")
    elif password is None:
        if not inv.interactive:
            raise UsageError("no password: use --password-stdin when not running on a terminal")
        password = str(click.prompt("Password", hide_input=True, err=True))

    api = inv.api(api_url)
    try:
        session = api.login(email, password)
    except MfaRequired as exc:
        if not (inv.interactive and exc.mfa_token):
            exc.message = f"{email} uses multi-factor authentication: a one-time code is needed"
            exc.hint = inv.mfa_hint(exc.mfa_token, insecure_storage=insecure_storage)
            raise
        from .mfa import complete_challenge

        del password
        session = complete_challenge(inv, exc.mfa_token, store=store)
        _announce(inv, session, store.kind)
        return
    del password
    inv.replace_session(store, session)
    _announce(inv, session, store.kind)


def _announce(inv: Invocation, session: Session, storage: str) -> None:
    inv.console.result(
        {"logged_in": True, **session_document(session, profile=inv.profile, storage=storage)},
        [logged_in_line(session, storage)],
    )


def _choose_method(
    inv: Invocation,
    *,
    email: str | None,
    password_given: bool,
    browser: bool,
    device: bool,
    oauth_flags: bool,
) -> str:
    """password with --email; else the browser when one can be opened; else the device flow.
    Without a terminal and nothing to go on, stop with guidance instead of waiting (EH-06)."""
    from ..browser import no_browser_reason

    if browser and device:
        raise UsageError("use either --browser or --device")
    if (browser or device) and (email or password_given):
        raise UsageError("--browser and --device sign in on a web page: drop --email/--password")
    if browser:
        return "browser"
    if device:
        inv.console.info("Using device sign-in (--device).")
        return "device"
    if email or password_given:
        return "password"
    if not inv.interactive and not oauth_flags:
        raise UsageError(
            "nothing to sign in with: pass --email with --password-stdin, or --browser, "
            "or --device (or set KEEPTRUSTS_API_TOKEN)"
        )
    why_not = None if inv.app.opener is not None else no_browser_reason(inv.app.env)
    if why_not is None:
        inv.console.info(
            "Signing in with your browser (use --device to sign in from another device)."
        )
        return "browser"
    inv.console.info(f"Using device sign-in: {why_not}.")
    return "device"
