"""`kt auth login`: email and password against the first-party API (with the MFA challenge), or
a browser or device sign-in (login_oauth)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal

import click

from ..browser import no_browser_reason
from ..config import DEFAULT, ENV_LOGIN_METHOD, ENVIRONMENT, REDIRECT_HOSTS, Setting
from ..errors import MfaRequired, UsageError
from ..session import Session
from ..signin.api_token import api_token_sign_in
from ..signin.password import password_sign_in
from ..store.pending import check_handle
from ..text import run_hint
from .app import Invocation, common_options, read_secret_line
from .examples import examples
from .login_federated import FederatedOptions, run_federated_login
from .login_oauth import run_browser_login, run_device_login, run_remote_login
from .login_steps import run_browser_start, run_cancel, run_complete, run_device_start
from .step_up import code_rejected, continue_hints, prompt_code
from .views import logged_in_line, replaced, replaced_line, session_document

Method = Literal["password", "browser", "device", "paste"]


@dataclass(frozen=True)
class LoginOptions:
    email: str | None = None
    password: str | None = None
    password_stdin: bool = False
    insecure_storage: bool = False
    browser: bool = False
    no_browser: bool = False
    yes: bool = False
    remote: bool = False
    issuer: str | None = None
    client_id: str | None = None
    port: int | None = None
    redirect_host: str | None = None
    timeout: int = 300
    scope: str | None = None
    device: bool = False
    no_qr: bool = False
    clipboard: bool = False
    with_token: bool = False
    start: bool = False
    complete: str | None = None
    wait: int = 300
    cancel: str | None = None
    federated: bool = False
    subject_token_file: str | None = None
    subject_token_env: str | None = None
    audience: str | None = None
    no_store: bool = False
    dpop: bool = False


@examples(
    "kt auth login",
    "kt auth login --device",
    "kt auth login --device --clipboard",
    "kt auth login --browser --no-browser",
    "kt auth login --browser --yes",
    'echo "$PASSWORD" | kt auth login --email you@example.com --password-stdin',
    "kt auth login --with-token < token.txt",
    'export KEEPTRUSTS_API_TOKEN="$(kt auth login --federated --no-store)"',
    "kt --profile staging auth login --api-url https://api.staging.example.com",
)
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
    help="With --browser: print the sign-in link instead of opening a browser (a one-time "
    "link on kt's 127.0.0.1 listener: it works once, and a second use stops the sign-in).",
)
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="With --browser: open the browser at once. On a terminal kt otherwise shows the link "
    "and asks you to press Enter first.",
)
@click.option(
    "--remote",
    is_flag=True,
    help="Sign in with a browser on another machine (over SSH, in a container): kt shows the "
    "device code (where the provider allows it), a sign-in link whose provider page shows a "
    "line to paste back at kt's prompt, and its listener's one-time link, at once; the first "
    "to finish wins (a terminal is needed). For providers with such a page (kt-devserver); "
    "others: --browser --no-browser, pasting the address the browser ends on.",
)
@click.option(
    "--issuer",
    metavar="URL",
    help="OpenID Connect issuer for --browser/--device (default: the profile's, else the one the"
    " API's resource metadata names, else the API URL).",
)
@click.option("--client-id", metavar="ID", help="OAuth client id at the issuer (default: kt-cli).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Loopback port for the browser's redirect (http://127.0.0.1:PORT/callback), for a "
    "provider that accepts only the exact redirect URIs registered with it (default: the "
    "profile's `port` in config.toml, else any free port; 0: any free port). A taken port is an "
    "error: kt never moves to another one.",
)
@click.option(
    "--redirect-host",
    type=click.Choice(REDIRECT_HOSTS),
    default=None,
    help="Host of the browser's redirect: 127.0.0.1 (the default), [::1], or localhost for a "
    "provider that refuses IP literals (kt then listens on the same port on both 127.0.0.1 and "
    "::1, never on another interface). Default: the profile's `redirect_host`, else 127.0.0.1.",
)
@click.option(
    "--timeout",
    type=click.IntRange(10, 3600),
    default=300,
    show_default=True,
    help="Seconds to wait for the browser sign-in.",
)
@click.option(
    "--scope",
    metavar="SCOPES",
    help="With --browser or --device: scopes to ask for (space-separated).",
)
@click.option(
    "--device",
    is_flag=True,
    help="Sign in from another device (phone, laptop) with a short code: for SSH sessions, "
    "containers and machines without a browser. Where the provider turned it off, kt says why "
    "and, on a terminal, falls back to --remote's paste-back.",
)
@click.option("--no-qr", is_flag=True, help="With --device or --remote: do not draw the QR code.")
@click.option(
    "--clipboard",
    is_flag=True,
    help="With --device or --remote: copy the device code's user code to the clipboard, with "
    "OSC 52 on a terminal (which "
    "also works over SSH) and with pbcopy, wl-copy, xclip or clip.exe where present; kt says "
    "how, or why it could not. The profile's `clipboard` setting does the same.",
)
@click.option(
    "--with-token",
    is_flag=True,
    help="Keep an existing API token for the profile, read from stdin (never an argument); "
    "checked with whoami first.",
)
@click.option(
    "--start",
    is_flag=True,
    help="With --browser or --device: print the link (or code and URL) and a handle, and exit "
    "at once; finish with --complete HANDLE.",
)
@click.option(
    "--complete",
    metavar="HANDLE",
    help="Finish the sign-in --start began: wait for the approval and keep the session.",
)
@click.option(
    "--wait",
    type=click.IntRange(0, 86400),
    default=300,
    show_default=True,
    metavar="SECONDS",
    help="With --complete: how long to wait for the approval (exit 3, auth.sign_in_pending, "
    "when it has not come; run --complete again).",
)
@click.option("--cancel", metavar="HANDLE", help="Forget the sign-in --start began.")
@click.option(
    "--federated",
    is_flag=True,
    help="CI sign-in with the job's own identity token, exchanged for a short-lived session "
    "(RFC 8693) as the server's trust rules allow: from --subject-token-file, "
    "--subject-token-env, or GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL and "
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN.",
)
@click.option(
    "--subject-token-file",
    metavar="PATH",
    help="With --federated: a file holding the identity token (a JWT).",
)
@click.option(
    "--subject-token-env",
    metavar="NAME",
    help="With --federated: the environment variable holding the identity token.",
)
@click.option(
    "--audience",
    metavar="AUD",
    help="With --federated in GitHub Actions: the audience of the token to ask for "
    "(default: the API URL).",
)
@click.option(
    "--no-store",
    is_flag=True,
    help="With --federated: keep nothing; print the access token alone on stdout, to use as "
    "KEEPTRUSTS_API_TOKEN in the commands that follow.",
)
@click.option(
    "--dpop",
    is_flag=True,
    help="With --browser, --device or --remote: bind the session's tokens to a new key kept "
    "with it (DPoP, RFC 9449), so a copied access or refresh token is useless without the "
    "key. Default: the profile's `dpop`.",
)
@common_options
def login(inv: Invocation, **flags: Any) -> None:
    """Sign in; the session is kept for later commands.

    With --email, email and password: on a terminal you are prompted for what
    is missing, including an MFA code if your account has MFA; elsewhere pass --password-stdin,
    and an MFA account exits 4 with the `kt auth mfa challenge` command to run.

    With --browser, your browser opens the sign-in page (password, MFA or your company's
    single sign-on) and sends the result back to kt on 127.0.0.1. On a terminal kt shows the
    link first and opens the browser when you press Enter (--yes: at once); it also takes
    the answer pasted from a browser on another machine (the whole address it ended on, or
    CODE#STATE from the provider's page), checked like the callback: first one wins. With
    --device, kt shows a short code and a QR code to approve on another device. With --json,
    both print one JSON
    line on stderr before they wait: the sign-in URL and the listener's port, or the device
    code and where to enter it.

    When the browser is elsewhere: in WSL kt opens the Windows browser (wslview, cmd.exe or
    powershell.exe). Over SSH with a fixed --port (or the profile's port), kt first prints the
    `ssh -L PORT:127.0.0.1:PORT user@host` command to run on your own computer so that its
    browser reaches kt; without one it offers --device. --redirect-host localhost is for
    providers that refuse IP literals.

    For agents and scripts: --browser --start or --device --start prints the sign-in link (or
    the code and URL) and a handle and exits at once; --complete HANDLE [--wait SECONDS]
    finishes it; --with-token < FILE keeps an existing API token.

    For CI: --federated exchanges the job's identity token (GitHub Actions' own, or
    --subject-token-file/--subject-token-env) for a session of the scopes and lifetime the
    server's trust rule grants, without any stored secret; --no-store prints its access token
    instead of keeping it.

    Without a method flag: password when --email is given; else the method
    KEEPTRUSTS_LOGIN_METHOD or the profile's `login_method` names (device, browser, or paste as
    --remote; `kt config set login_method device`); else the browser when one can be opened,
    the device flow when none can (SSH without a display, no DISPLAY/WAYLAND_DISPLAY, a
    container), on a terminal racing paste-back and the loopback listener as --remote does.
    """
    run_login(inv, LoginOptions(**flags))


def run_login(inv: Invocation, opts: LoginOptions) -> None:
    if opts.clipboard and (
        opts.browser or opts.no_browser or opts.email or opts.with_token or opts.federated
        or opts.start or opts.complete or opts.cancel
    ):  # fmt: skip
        raise UsageError(
            "--clipboard copies the code of a device sign-in on this terminal: use it with"
            " --device or --remote (or with no method flag), not with a browser, password,"
            " token, federated or two-step sign-in"
        )
    if opts.dpop and (opts.start or opts.complete or opts.cancel):
        raise UsageError(
            "--dpop is for a sign-in kt finishes itself: drop --start/--complete/--cancel",
            hint=run_hint("kt", "auth", "login", "--device", "--dpop"),
        )
    if opts.dpop and (opts.with_token or opts.email or opts.federated):
        raise UsageError(
            "--dpop binds the tokens of a browser or device sign-in: drop"
            " --email/--with-token/--federated",
            hint=run_hint("kt", "auth", "login", "--browser", "--dpop"),
        )
    if opts.federated or _federated_flags(opts):
        run_federated(inv, opts)
        return
    if opts.start and inv.base_settings.dpop.value == "true":
        # The key would have to wait on disk with the pending sign-in: not done (yet); a bearer
        # session in its place would quietly drop what the profile asks for.
        raise UsageError(
            "the profile asks for DPoP-bound sessions (dpop = true), which a sign-in in two "
            "steps does not make: sign in at once instead",
            hint=inv.login_hint(method="device"),
        )
    if opts.start or opts.complete or opts.cancel:
        run_two_step(inv, opts)
        return
    if opts.with_token:
        run_token_login(inv, opts)
        return
    if opts.remote:
        if opts.browser or opts.no_browser or opts.device or opts.email or opts.port is not None:
            raise UsageError(
                "--remote is a sign-in of its own: drop --browser/--no-browser/--device/"
                "--email/--port"
            )
        _remote_login(inv, opts)
        return
    choice = choose_method(
        email=opts.email,
        password_given=opts.password is not None or opts.password_stdin,
        browser=opts.browser or opts.no_browser,
        device=opts.device,
        oauth_flags=bool(opts.issuer or opts.client_id),
        interactive=inv.interactive,
        why_no_browser=None if inv.app.opener is not None else no_browser_reason(inv.app.env),
        preferred=inv.base_settings.login_method,
    )
    if choice.note:
        inv.console.info(choice.note)
    if choice.method == "device":
        run_device_login(
            inv,
            insecure_storage=opts.insecure_storage,
            issuer=opts.issuer,
            client_id=opts.client_id,
            scope=opts.scope,
            show_qr=not opts.no_qr,
            timeout=opts.timeout,
            race=choice.race,
            clipboard=_clipboard(inv, opts),
            dpop=opts.dpop,
        )
    elif choice.method == "paste":
        _remote_login(inv, opts)
    elif choice.method == "browser":
        if opts.clipboard:  # kt chose the browser: said, not silently ignored
            inv.console.info("(--clipboard: a browser sign-in has no code to copy.)")
        run_browser_login(
            inv,
            insecure_storage=opts.insecure_storage,
            open_browser=not opts.no_browser,
            issuer=opts.issuer,
            client_id=opts.client_id,
            port=opts.port,
            redirect_host=opts.redirect_host,
            timeout=opts.timeout,
            scope=opts.scope,
            ask_first=not opts.yes,
            dpop=opts.dpop,
        )
    else:
        run_password_login(inv, opts)


def _remote_login(inv: Invocation, opts: LoginOptions) -> None:
    """--remote, or the paste method kt or the profile chose: the race of the ways in."""
    run_remote_login(
        inv,
        insecure_storage=opts.insecure_storage,
        issuer=opts.issuer,
        client_id=opts.client_id,
        timeout=opts.timeout,
        scope=opts.scope,
        show_qr=not opts.no_qr,
        clipboard=_clipboard(inv, opts),
        dpop=opts.dpop,
    )


def _clipboard(inv: Invocation, opts: LoginOptions) -> bool:
    """Copy a device code: --clipboard, else the profile's `clipboard` setting."""
    return opts.clipboard or inv.base_settings.clipboard.value == "true"


@dataclass(frozen=True)
class MethodChoice:
    method: Method
    note: str | None = None  # what to tell the person about the choice, if anything
    # No browser here and none asked for: on a terminal the device code races paste-back and
    # the loopback listener, as --remote does (issue 13 item 1).
    race: bool = False


def choose_method(
    *,
    email: str | None,
    password_given: bool,
    browser: bool,
    device: bool,
    oauth_flags: bool,
    interactive: bool,
    why_no_browser: str | None,
    preferred: Setting | None = None,
) -> MethodChoice:
    """password with --email; else the method `preferred` names (KEEPTRUSTS_LOGIN_METHOD, else
    the profile's `login_method`; its DEFAULT, "auto", names none); else the browser when one
    can be opened (`why_no_browser` is None); else the device flow. Flags win over `preferred`.
    Without a terminal and nothing to go on, stop with guidance instead of waiting (EH-06)."""
    if browser and device:
        raise UsageError("use either --browser or --device")
    if (browser or device) and (email or password_given):
        raise UsageError("--browser and --device sign in on a web page: drop --email/--password")
    if browser:
        return MethodChoice("browser")
    if device:
        return MethodChoice("device", "Using device sign-in (--device).")
    if email or password_given:
        return MethodChoice("password")
    if preferred is not None and preferred.source != DEFAULT:
        where = ENV_LOGIN_METHOD if preferred.source == ENVIRONMENT else "login_method in config"
        methods: dict[str, Method] = {"device": "device", "paste": "paste"}
        method = methods.get(preferred.value, "browser")
        label = "paste-back (--remote)" if method == "paste" else method
        return MethodChoice(method, f"Using {label} sign-in ({where}).")
    if not interactive and not oauth_flags:
        raise UsageError(
            "nothing to sign in with: pass --email with --password-stdin, or --browser, "
            "or --device (or set KEEPTRUSTS_API_TOKEN)"
        )
    if why_no_browser is None:
        return MethodChoice(
            "browser",
            "Signing in with your browser (use --device to sign in from another device).",
        )
    return MethodChoice("device", f"Using device sign-in: {why_no_browser}.", race=True)


def run_password_login(inv: Invocation, opts: LoginOptions) -> None:
    password = opts.password
    if password is not None and opts.password_stdin:
        raise UsageError("use either --password or --password-stdin, not both")
    if opts.scope:  # never silently ignored (issue 12)
        raise UsageError(
            "--scope is for --browser and --device sign-ins: an email and password sign-in "
            "gets the account's own scopes (see kt auth whoami); drop --scope, or sign in with "
            "--browser or --device"
        )
    if password is not None:
        inv.console.warn(
            "using --password on the command line is insecure (it shows in process lists and "
            "shell history); use --password-stdin or the prompt"
        )
    if inv.env_token:
        inv.console.warn(
            "KEEPTRUSTS_API_TOKEN is set: other commands will keep using it instead of this session"
        )
    store = inv.store_for_login(insecure_storage=opts.insecure_storage)

    email = opts.email
    if not email:
        if not inv.interactive:
            raise UsageError("--email is required when not running on a terminal")
        email = str(click.prompt("Email", err=True)).strip()
    if opts.password_stdin:
        password = read_secret_line(sys.stdin, "password")
    elif password is None:
        if not inv.interactive:
            raise UsageError("no password: use --password-stdin when not running on a terminal")
        password = str(click.prompt("Password", hide_input=True, err=True))

    try:
        with continue_hints(inv, insecure_storage=opts.insecure_storage):
            session = password_sign_in(
                inv.api(),
                email,
                password,
                ask_code=prompt_code if inv.interactive else None,
                on_rejected=lambda why: code_rejected(inv, why),
            )
    except MfaRequired as exc:
        if not inv.interactive:
            exc.message = f"{email} uses multi-factor authentication: a one-time code is needed"
        raise
    finally:
        del password
    previous = inv.stored_session()
    inv.authenticator.save(store, session)
    _announce(inv, session, store.kind, replaced(previous, session))


def run_two_step(inv: Invocation, opts: LoginOptions) -> None:
    """--device --start, --complete HANDLE, --cancel HANDLE (cli/login_steps.py)."""
    if sum((opts.start, opts.complete is not None, opts.cancel is not None)) > 1:
        raise UsageError("use one of --start, --complete and --cancel")
    if opts.complete is not None or opts.cancel is not None:
        handle = check_handle(opts.complete or opts.cancel or "")
        if opts.cancel is not None:
            run_cancel(inv, handle)
        else:
            run_complete(inv, handle, wait=opts.wait)
        return
    if opts.email or opts.password is not None or opts.password_stdin or opts.with_token:
        raise UsageError("--start begins a browser or device sign-in: drop --email/--password")
    if opts.browser == opts.device:
        raise UsageError("--start needs --browser or --device")
    if opts.browser:
        run_browser_start(
            inv,
            insecure_storage=opts.insecure_storage,
            issuer=opts.issuer,
            client_id=opts.client_id,
            scope=opts.scope,
            port=opts.port,
            redirect_host=opts.redirect_host,
            timeout=opts.timeout,
        )
        return
    run_device_start(
        inv,
        insecure_storage=opts.insecure_storage,
        issuer=opts.issuer,
        client_id=opts.client_id,
        scope=opts.scope,
    )


def _federated_flags(opts: LoginOptions) -> list[str]:
    return [
        flag
        for flag, given in (
            ("--subject-token-file", opts.subject_token_file is not None),
            ("--subject-token-env", opts.subject_token_env is not None),
            ("--audience", opts.audience is not None),
            ("--no-store", opts.no_store),
        )
        if given
    ]


def run_federated(inv: Invocation, opts: LoginOptions) -> None:
    """--federated: the CI's identity token exchanged (cli/login_federated.py)."""
    if not opts.federated:
        raise UsageError(f"{', '.join(_federated_flags(opts))} go with --federated")
    others = [
        flag
        for flag, given in (
            ("--email", opts.email),
            ("--password/--password-stdin", opts.password is not None or opts.password_stdin),
            ("--browser/--no-browser/--remote", opts.browser or opts.no_browser or opts.remote),
            ("--device", opts.device),
            ("--with-token", opts.with_token),
            ("--start/--complete/--cancel", opts.start or opts.complete or opts.cancel),
            ("--port/--redirect-host", opts.port is not None or opts.redirect_host),
        )
        if given
    ]
    if others:
        raise UsageError(
            f"--federated signs in with the CI's identity token: drop {', '.join(others)}"
        )
    run_federated_login(
        inv,
        FederatedOptions(
            subject_token_file=opts.subject_token_file,
            subject_token_env=opts.subject_token_env,
            audience=opts.audience,
            scope=opts.scope,
            issuer=opts.issuer,
            client_id=opts.client_id,
            insecure_storage=opts.insecure_storage,
            no_store=opts.no_store,
        ),
    )


def run_token_login(inv: Invocation, opts: LoginOptions) -> None:
    """--with-token: an API token from stdin, checked with whoami, kept as the profile's
    credential (signin/api_token.py)."""
    others = [
        flag
        for flag, given in (
            ("--email", opts.email),
            ("--password/--password-stdin", opts.password is not None or opts.password_stdin),
            ("--browser/--no-browser", opts.browser or opts.no_browser),
            ("--device", opts.device),
            ("--issuer/--client-id", opts.issuer or opts.client_id),
            ("--scope", opts.scope),
        )
        if given
    ]
    if others:
        raise UsageError(f"--with-token signs in with the token alone: drop {', '.join(others)}")
    if _is_tty(sys.stdin):
        raise UsageError(
            "--with-token reads the API token from standard input, e.g. "
            "kt auth login --with-token < token.txt"
        )
    token = read_secret_line(sys.stdin, "API token").strip()
    if inv.env_token:
        inv.console.warn(
            "KEEPTRUSTS_API_TOKEN is set: other commands will keep using it instead of this token"
        )
    store = inv.store_for_login(insecure_storage=opts.insecure_storage)
    session = api_token_sign_in(inv.api(), token, now=inv.now())
    del token
    previous = inv.stored_session()
    inv.authenticator.save(store, session)
    _announce(inv, session, store.kind, replaced(previous, session))


def _is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _announce(inv: Invocation, session: Session, storage: str, gone: dict[str, Any] | None) -> None:
    lines = [logged_in_line(session, storage)]
    if gone is not None:
        lines.append(replaced_line(gone, inv.profile))
    inv.console.result(
        {
            "logged_in": True,
            **session_document(session, profile=inv.profile, storage=storage),
            "replaced": gone,
        },
        lines,
    )
