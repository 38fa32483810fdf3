"""`kt auth login --browser` and `--device`, and `kt auth mfa challenge --browser`: the person's
side of the OAuth sign-ins (the URL, the device code, the countdown, the result line); the
sign-ins themselves are `signin.browser` and `signin.device`."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sys
import termios
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO, cast
from urllib.parse import urlsplit

from ..browser import Opener, SshSession, local_opener, no_browser_reason, ssh_session
from ..config import issuer_from_api
from ..dpop import DpopKey, Prover
from ..errors import DeviceFlowUnavailable, KtError, UsageError
from ..flows.device import DeviceAuthorization
from ..signin.browser import browser_sign_in, step_up
from ..signin.device import device_sign_in
from ..signin.finish import finish_oauth_sign_in, sign_in_notices
from ..signin.oidc import SignedIn, SignInRequest
from ..signin.race import Doors, race_sign_in
from ..store import CredentialStore
from ..text import clean, run_hint, shell_words
from .app import Invocation
from .copy_code import copy_user_code
from .open_prompt import EnterToOpen, can_ask, provider_host
from .views import logged_in_line, replaced, replaced_line, session_document


def run_browser_login(
    inv: Invocation,
    *,
    insecure_storage: bool,
    open_browser: bool,
    issuer: str | None,
    client_id: str | None,
    port: int | None,
    timeout: int,
    scope: str | None,
    redirect_host: str | None = None,
    ask_first: bool = False,
    dpop: bool = False,
) -> None:
    store, login = _prepare(
        inv,
        insecure_storage=insecure_storage,
        issuer=issuer,
        client_id=client_id,
        scope=scope,
        port=port,
        redirect_host=redirect_host,
        dpop=dpop,
        timeout=float(timeout),
    )
    flags = ["--insecure-storage"] if insecure_storage else []
    flags += ["--dpop"] if dpop else []
    for flag, value in (
        ("--issuer", issuer),
        ("--client-id", client_id),
        ("--scope", scope),
        ("--redirect-host", redirect_host),
    ):
        flags += [flag, value] if value else []
    if not open_browser:
        flags.append("--no-browser")

    def rerun(port: int) -> str:
        return inv.login_hint(None, method="browser", more=["--port", str(port), *flags])

    _browser_sign_in(inv, store, login, open_browser=open_browser, rerun=rerun, ask_first=ask_first)


def run_browser_step_up(inv: Invocation, *, acr_values: str, insecure_storage: bool) -> None:
    """A fresh browser sign-in at a higher level, with the same issuer and client as the
    current session."""
    try:
        current = inv.find_session()[0]
    except KtError:
        current = None
    store, login = _prepare(
        inv,
        insecure_storage=insecure_storage,
        issuer=current.issuer if current is not None and current.issuer else None,
        client_id=current.client_id if current is not None and current.client_id else None,
        scope=None,
        dpop=current is not None and current.dpop_key is not None,  # stays DPoP-bound
    )

    def rerun(port: int) -> str:  # mfa challenge has no --port: the profile's setting is the way
        where = ["--profile", inv.profile] if inv.profile_flag else []
        return run_hint("kt", "config", "set", "port", str(port), *where)

    _browser_sign_in(
        inv, store, step_up(login, acr_values=acr_values), open_browser=True, rerun=rerun
    )


def _browser_sign_in(
    inv: Invocation,
    store: CredentialStore,
    login: SignInRequest,
    *,
    open_browser: bool,
    rerun: Callable[[int], str],
    ask_first: bool = False,
) -> None:
    """`ask_first`: on a terminal, 'Press Enter to open HOST in your browser' (open_prompt)."""
    signed = browser_signed_in(
        inv, login, open_browser=open_browser, rerun=rerun, ask_first=ask_first
    )
    _finish(inv, signed, login, store, method="browser")


def browser_signed_in(
    inv: Invocation,
    login: SignInRequest,
    *,
    open_browser: bool,
    rerun: Callable[[int], str],
    ask_first: bool = False,
) -> SignedIn:
    """The browser sign-in as the person sees it (the browser opened or the link shown, the
    paste-back prompt beside it), up to the checked tokens; the caller keeps the session."""
    found, via = (inv.app.opener, None) if inv.app.opener else local_opener(inv.app.env)
    opener = found if open_browser else None
    why_no_browser = (
        no_browser_reason(inv.app.env) if open_browser and inv.app.opener is None else None
    )
    remote = Remote(ssh_session(inv.app.env), login.port != 0, login.redirect_host)
    ask = (
        EnterToOpen(
            inv, sys.stdin.fileno(), host=provider_host(login.issuer), timeout=login.timeout
        )
        if ask_first and opener is not None and can_ask(inv)
        else None
    )
    signed = browser_sign_in(
        login,
        http=inv.http(),
        show_url=lambda url, redirect_uri: show_sign_in_url(
            inv, url, redirect_uri, opener, why_no_browser, via=via, remote=remote, ask=ask
        ),
        clock=inv.app.clock,
        rerun=rerun,
        accept_pasted=PastePrompt(inv, sys.stdin.fileno()) if _can_prompt(inv) else None,
    )
    return signed


def run_remote_login(
    inv: Invocation,
    *,
    insecure_storage: bool,
    issuer: str | None,
    client_id: str | None,
    timeout: int,
    scope: str | None,
    show_qr: bool = True,
    clipboard: bool = False,
    dpop: bool = False,
) -> None:
    """`kt auth login --remote`: the sign-in link to open in a browser anywhere and the prompt
    for the answer the provider's page shows, racing the device code (where the provider
    offers and allows it) and the loopback listener (issue 13 item 1)."""
    if not _can_prompt(inv):
        raise UsageError(
            "--remote needs a terminal to paste the sign-in's answer into; without one, sign"
            " in with --device, or --browser --start and --complete",
            hint=run_hint("kt", "auth", "login", "--device"),
        )
    store, login = _prepare(
        inv,
        insecure_storage=insecure_storage,
        issuer=issuer,
        client_id=client_id,
        scope=scope,
        dpop=dpop,
        timeout=float(timeout),
    )
    _remote_sign_in(inv, store, login, show_qr=show_qr, clipboard=clipboard)


def _remote_sign_in(
    inv: Invocation,
    store: CredentialStore,
    login: SignInRequest,
    *,
    with_device: bool = True,
    needs_remote_page: bool = True,
    show_qr: bool = True,
    again: str | None = None,
    clipboard: bool = False,
) -> None:
    """The race (signin/race.py): the device code (`with_device`, where the provider offers and
    allows it), the link whose provider page shows an answer to paste back, and the loopback
    listener's one-time link, all at once; the first to finish wins."""
    prompt = PastePrompt(inv, sys.stdin.fileno(), intro=())
    ssh = ssh_session(inv.app.env)

    def tunnel(doors: Doors) -> list[str] | None:
        # Over SSH with a fixed port (the profile's), the listener's link works from the
        # person's own computer through `ssh -L` (issue 13 item 3).
        if ssh is None or login.port == 0:
            return None
        return ssh.tunnel(urlsplit(doors.redirect_uri).port or 0, login.redirect_host)

    signed = race_sign_in(
        login,
        http=inv.http(),
        show=lambda doors: show_doors(
            inv, doors, show_qr=show_qr, tunnel=tunnel(doors), clipboard=clipboard
        ),
        paste=prompt,
        on_device_stopped=lambda why: prompt.interject(
            f"the device code can no longer be used: {why}; sign in with a link above instead"
        ),
        with_device=with_device,
        needs_remote_page=needs_remote_page,
        clock=inv.app.clock,
        again=again,
    )
    _finish(inv, signed, login, store, method="browser")


def show_doors(
    inv: Invocation,
    doors: Doors,
    *,
    show_qr: bool,
    tunnel: list[str] | None = None,
    clipboard: bool = False,
) -> None:
    """Every way in that is open, the first to finish wins: the device code, the link to open
    anywhere (its page shows what to paste back), the loopback listener's one-time link (and
    `tunnel`, the `ssh -L` command that lets the person's own browser reach it)."""
    say = inv.console.info
    port = urlsplit(doors.redirect_uri).port or 0
    say("Sign in whichever way is at hand; the first to finish wins, the others are cancelled.")
    if doors.device is not None:
        show_device_code(inv, doors.device, show_qr=show_qr, clipboard=clipboard)
    elif doors.no_device_reason is not None:
        say(f"Device sign-in cannot be used: {doors.no_device_reason}.")
    more = "Or open" if doors.device is not None else "Open"
    if doors.remote_url is not None:
        say(f"{more} this link in a browser on any machine and sign in; the provider's page then")
        say("shows a line to copy: paste it here.")
        say(f"  {doors.remote_url}")
        say(f"Or, in a browser on this machine (or one reaching port {port} here through a port")
        say("forward), open this link; it works once:")
    else:
        say(f"{more} this link in a browser on this machine (or one reaching port {port} here")
        say("through a port forward); it works once. If the browser is elsewhere and its")
        say("redirect never arrives, paste the address it ended on here:")
    say(f"  {doors.link}")
    if tunnel is not None:
        say("This is an SSH session: on your own computer, this forwards that port to kt here:")
        say(f"  {run_hint(*tunnel)}")


def _can_prompt(inv: Invocation) -> bool:
    """A person at a terminal whose input kt can watch while the listener waits (POSIX)."""
    if not inv.interactive or sys.platform == "win32":
        return False
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):  # a test's stdin without a descriptor
        return False


_BROWSER_INTRO = (
    "If your browser is on another machine, it cannot reach 127.0.0.1 here: paste the",
    "address it ended on (or CODE#STATE from the provider's page) instead.",
)


class PastePrompt:
    """The paste-back prompt beside the loopback listener (issue 13 item 1): where the browser
    runs on another machine, its redirect to 127.0.0.1 never reaches kt, and the person pastes
    the address it ended on (or CODE#STATE from a provider's page) instead. Each line goes to
    the listener's `offer`, which judges it exactly like a callback; a refused one is said and
    the wait goes on. Whichever answer comes first wins: when the callback does (or, in the
    race of `--remote`, the device code), the prompt ends and what was typed but not entered is
    discarded, so nothing reaches the shell afterwards. The terminal stays in its normal line
    mode throughout: there is nothing to restore."""

    def __init__(
        self, inv: Invocation, fd: int, *, intro: tuple[str, ...] = _BROWSER_INTRO
    ) -> None:
        self._console, self._fd, self._intro = inv.console, fd, intro
        self._waiting = False  # the prompt is shown, waiting for a line

    def interject(self, line: str) -> None:
        """A warning said while the prompt waits, on a line of its own; the prompt is asked
        again after it."""
        err = self._console.err
        if self._waiting:
            err.write("\n")
        self._console.warn(line)
        if self._waiting:
            self._ask()

    def _ask(self) -> None:
        self._console.err.write("Paste here and press Enter: ")
        self._console.err.flush()

    def _discard_typed_ahead(self) -> None:
        try:  # typed but not entered: it must not run as a shell command once kt exits
            termios.tcflush(self._fd, termios.TCIFLUSH)
        except termios.error:
            pass

    def __call__(self, offer: Callable[[str], str | None]) -> Callable[[], None]:
        """Take lines on the running loop while it waits: each goes to `offer` (None: taken;
        else why not, said, and the prompt asked again). Returns what stops the prompt."""
        loop = asyncio.get_running_loop()
        err = self._console.err
        pending = bytearray()
        state = {"reading": True, "answered": False}
        ask = self._ask

        def stop_reading() -> None:
            if state["reading"]:
                state["reading"] = False
                self._waiting = False
                loop.remove_reader(self._fd)

        def readable() -> None:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:  # end of input (Ctrl-D): the browser may still answer
                stop_reading()
                err.write("\n")
                err.flush()
                return
            pending.extend(chunk)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                text = line.decode(errors="replace")
                if not text.strip():
                    ask()
                    continue
                why = offer(text)
                if why is None:
                    state["answered"] = True
                    stop_reading()
                    return
                self._console.warn(why)
                ask()

        def stop() -> None:
            was_reading = state["reading"]
            stop_reading()
            if was_reading and not state["answered"]:
                self._discard_typed_ahead()
                err.write("\n")
                err.flush()

        for line in self._intro:
            self._console.info(line)
        ask()
        self._waiting = True
        loop.add_reader(self._fd, readable)
        return stop


@dataclass(frozen=True)
class Remote:
    """Where the person's browser may be: over SSH on their own computer (issue 13 item 3)."""

    ssh: SshSession | None
    fixed_port: bool  # --port or the profile's port: a tunnel to it can be set up beforehand
    redirect_host: str


def show_sign_in_url(
    inv: Invocation,
    url: str,
    redirect_uri: str,
    opener: Opener | None,
    why_no_browser: str | None,
    *,
    via: str | None = None,
    remote: Remote | None = None,
    ask: Callable[[str, Opener, str | None], None] | None = None,
) -> None:
    """Open the browser on `url` when one can be used; say where to go either way. With `ask`
    (a person at the terminal), it shows the link and opens the browser once they press Enter.
    `via` names the launcher used when it is not the system's default (WSL: wslview, cmd.exe,
    powershell.exe).
    Over SSH, when no browser was opened here, the `ssh -L` command that lets the person's own
    browser reach the listener (a fixed port), or that it cannot (any free port).

    `url` is the listener's one-time link (http://127.0.0.1:PORT/<random>), not the authorization
    request, so printing it gives nothing away: it works once, and a second use stops the sign-in
    (docs/security.md LU-01)."""
    if ask is not None and opener is not None and why_no_browser is None and not inv.json_mode:
        ask(url, opener, via)
        return
    opened = opener is not None and why_no_browser is None and opener(url)
    port = urlsplit(redirect_uri).port or 0
    ssh = remote.ssh if remote is not None and not opened else None
    tunnel = (
        ssh.tunnel(port, remote.redirect_host) if ssh and remote and remote.fixed_port else None
    )
    if inv.json_mode:
        # Like --device --json: enough to finish the sign-in if no browser shows up.
        inv.console.progress(
            {
                "sign_in_url": url,
                "redirect_uri": redirect_uri,
                "port": port,
                "browser_opened": bool(opened),
                **({"opened_with": via} if opened and via else {}),
                **({"ssh_tunnel": shell_words(*tunnel)} if tunnel else {}),
            }
        )
        return
    say = inv.console.info
    if opened:
        how = f"Opened the Windows browser with {via}" if via else "Opened your browser"
        say(f"{how} to sign in. If it did not open, visit this link (it works once):")
        say(f"  {url}")
        return
    if ssh is not None:
        _say_over_ssh(inv, url, tunnel)
        return
    if opener is not None and why_no_browser is not None:
        say(f"Cannot open a browser here: {why_no_browser}.")
        say("Open this link in a browser on this machine to sign in; it works once")
        say("(or run kt auth login --device to sign in from another device):")
    else:
        say("Open this link in a browser on this machine to sign in; it works once:")
    say(f"  {url}")


def _say_over_ssh(inv: Invocation, url: str, tunnel: list[str] | None) -> None:
    """This is an SSH session: the person's browser is on their own computer, whose 127.0.0.1
    is not this machine's."""
    say = inv.console.info
    if tunnel is not None:
        say("This is an SSH session: a browser on your own computer reaches kt here only through")
        say("an SSH tunnel to this port. On your computer, first")
        say(f"  {run_hint(*tunnel)}")
        say("then open this link in a browser there; it works once:")
    else:
        say("This is an SSH session: kt listens on this machine's loopback, which a browser on")
        say("your own computer cannot reach. Sign in with a code instead")
        say(f"({run_hint('kt', 'auth', 'login', '--device')}), or sign in again with a fixed")
        say("--port and forward it with ssh -L (kt then prints the command). The link, for a")
        say("browser on this machine; it works once:")
    say(f"  {url}")


def run_device_login(
    inv: Invocation,
    *,
    insecure_storage: bool,
    issuer: str | None,
    client_id: str | None,
    scope: str | None,
    show_qr: bool,
    timeout: int = 300,
    race: bool = False,
    clipboard: bool = False,
    dpop: bool = False,
) -> None:
    """`kt auth login --device`; `race` (the automatic choice where no browser can be opened):
    on a terminal, the device code races paste-back and the loopback listener, as --remote."""
    store, login = _prepare(
        inv,
        insecure_storage=insecure_storage,
        issuer=issuer,
        client_id=client_id,
        scope=scope,
        dpop=dpop,
    )
    if race and _can_prompt(inv):
        _remote_sign_in(
            inv,
            store,
            dataclasses.replace(login, timeout=float(timeout)),
            needs_remote_page=False,
            show_qr=show_qr,
            again=run_hint("kt", "auth", "login"),
            clipboard=clipboard,
        )
        return
    countdown = Countdown(inv) if inv.interactive else None
    try:
        signed = device_sign_in(
            login,
            http=inv.http(),
            show_code=lambda auth: show_device_code(
                inv, auth, show_qr=show_qr, clipboard=clipboard
            ),
            on_wait=countdown.update if countdown else None,
            clock=inv.app.clock,
        )
    except DeviceFlowUnavailable as exc:
        if not _can_prompt(inv):
            raise
        # Turned off (against device-code phishing) or not offered: paste-back is the way left
        # that works from another machine (issue 13 item 4).
        inv.console.info(f"Device sign-in cannot be used: {exc.message}.")
        inv.console.info("Signing in with a browser anywhere and pasting its answer back instead.")
        _remote_sign_in(
            inv,
            store,
            dataclasses.replace(login, timeout=float(timeout)),
            with_device=False,
            needs_remote_page=False,
            again=run_hint("kt", "auth", "login", "--device"),
        )
        return
    finally:
        inv.console.clear_status()  # the error (denied, expired) starts on a line of its own
    _finish(inv, signed, login, store, method="device")


def show_device_code(
    inv: Invocation, auth: DeviceAuthorization, *, show_qr: bool, clipboard: bool = False
) -> None:
    """The code, where to enter it, a QR code, and the phishing warning (DV-03, DV-05); with
    `clipboard`, the user code copied too (copy_code)."""
    if auth.interval_capped:
        inv.console.warn(
            f"the server asks kt to wait more than {auth.interval:g} s between polls;"
            f" kt polls every {auth.interval:g} s"
        )
    copied = copy_user_code(inv, auth.user_code) if clipboard else None
    if inv.json_mode:
        inv.console.progress(
            {
                "verification_uri": auth.verification_uri,
                "verification_uri_complete": auth.verification_uri_complete,
                "user_code": auth.user_code,
                "expires_in": int(auth.expires_in),
                **({"clipboard": copied.document()} if copied else {}),
            }
        )
        return
    say = inv.console.info
    say(f"To sign in, open {auth.verification_uri} on your phone or computer")
    say(f"and enter the code:   {clean(auth.user_code)}")
    if copied is not None:
        say(copied.line())
    if show_qr and auth.verification_uri_complete:
        say("or scan this QR code, which opens that page with the code filled in:")
        import segno  # only when a QR code is drawn (issue 16: ~20 ms)

        segno.make(auth.verification_uri_complete, error="m").terminal(
            out=cast("TextIO", inv.console.err), compact=True, border=2
        )
    say(
        f"Only enter this code if you started this sign-in yourself, just now, on "
        f"{clean(socket.gethostname())}. Never enter a code someone sent you."
    )
    inv.console.err.flush()


class Countdown:
    """A one-line 'waiting' status on the terminal, rewritten at every poll and fitted to the
    terminal's width (Console.status); any other output clears it first."""

    def __init__(self, inv: Invocation) -> None:
        self._console = inv.console

    def update(self, remaining: float) -> None:
        minutes, seconds = divmod(int(remaining), 60)
        left = f"{minutes}:{seconds:02d}"
        self._console.status(
            (
                f"Waiting for approval… code expires in {left}",
                f"Waiting for approval… {left} left",
                f"Waiting… {left}",
                left,
            )
        )


def _prepare(
    inv: Invocation,
    *,
    insecure_storage: bool,
    issuer: str | None,
    client_id: str | None,
    scope: str | None,
    port: int | None = None,
    redirect_host: str | None = None,
    dpop: bool = False,
    **options: Any,
) -> tuple[CredentialStore, SignInRequest]:
    """The store (probed, fails closed now) and what to ask which issuer for, on which
    loopback port (--port, else the profile's `port`, else any free one) and redirect host
    (--redirect-host, else the profile's `redirect_host`, else 127.0.0.1), with a new DPoP
    key when --dpop or the profile's `dpop` asks for one."""
    store = inv.store_for_login(insecure_storage=insecure_storage)
    settings = inv.sign_in_settings(
        issuer=issuer, client_id=client_id, port=port, redirect_host=redirect_host, dpop=dpop
    )
    if settings.dpop.value == "true":
        options["dpop"] = Prover(DpopKey.generate(), clock=inv.app.clock)
    return store, SignInRequest(
        issuer=settings.issuer.value,
        client_id=settings.client_id.value,
        api_url=settings.api_url.value,
        scope=scope,
        port=int(settings.port.value),
        redirect_host=settings.redirect_host.value,
        issuer_from_api=issuer_from_api(settings.issuer),
        send_resource=SEND_RESOURCE_CHOICE.get(settings.send_resource.value),
        **options,
    )


# The profile's send_resource as SignInRequest takes it (None: kt decides, "auto").
SEND_RESOURCE_CHOICE = {"true": True, "false": False}


def resource_options(state: Mapping[str, object]) -> dict[str, Any]:
    """A two-step sign-in's RFC 9728/8707 choices, as its start recorded them."""
    send = state.get("send_resource")
    return {
        "issuer_from_api": state.get("issuer_from_api") is True,
        "send_resource": send if isinstance(send, bool) else None,
    }


def _finish(
    inv: Invocation, signed: SignedIn, login: SignInRequest, store: CredentialStore, *, method: str
) -> None:
    previous = inv.stored_session()
    session = finish_oauth_sign_in(inv.authenticator, store, signed, login, method=method)
    gone = replaced(previous, session)
    notices = sign_in_notices(session, signed, now=inv.app.clock())
    for notice in notices:
        inv.console.info(notice)
    lines = [logged_in_line(session, store.kind)]
    if gone is not None:
        lines.append(replaced_line(gone, inv.profile))
    inv.console.result(
        {
            "logged_in": True,
            **session_document(session, profile=inv.profile, storage=store.kind),
            "notices": notices,
            "replaced": gone,
        },
        lines,
    )
