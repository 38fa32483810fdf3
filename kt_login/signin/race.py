"""One sign-in, three ways in, the first one wins (issue 13 item 1): for a person whose browser
may be on another machine (`kt auth login --remote`, and the automatic choice over SSH and in
containers), the device code (RFC 8628, where the provider offers and allows it), the answer a
provider's "copy this code" page shows, pasted back, and the loopback listener (a browser on
this machine, or one reaching it through a port forward) all wait at once.

Three pending requests, each its own: the device code; the authorization request whose
redirect is the provider's page (`remote`, its own state, PKCE and nonce); the one whose
redirect is the listener (`loopback`, likewise). The first answer that passes its own checks
decides which one goes on; it is chosen on the event loop, the one place every door reports to,
so there is never a second. Then everything else stops before anything is exchanged: the
prompt ends (typed-ahead input discarded), the listener closes, the device poll's sleep is cut
short and its thread joined, so no poll is sent after the win and nothing is left running. The
device code is never kept anywhere (nothing pending is written): once kt stops polling it, no
approval of it can sign anyone in. Ctrl-C cancels all of it the same way (KeyboardInterrupt),
with nothing stored."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx2

from callback_server import (
    CallbackError,
    CallbackResult,
    CallbackServer,
    NotThisRedirect,
    parse_pasted,
)

from ..errors import DeviceFlowUnavailable, KtError, OAuthError
from ..flows import drive
from ..flows.authcode import AuthorizationRequest, authorize, needs_renewal
from ..flows.device import DeviceAuthorization
from ..flows.discovery import REMOTE_REDIRECT, ProviderMetadata
from ..flows.pkce import new_state
from ..flows.tokens import revoke_grant
from ..text import run_hint
from .browser import listener_error, signed_in_with
from .device import DeviceStarted, start_device_sign_in, wait_for_approval
from .oidc import SignedIn, SignInRequest, fetch_keys_early, scope_explained, scope_to_ask
from .provider import provider_for


@dataclass(frozen=True)
class Doors:
    """What the person is shown: each way in that is open."""

    device: DeviceAuthorization | None  # None: the provider does not offer or allow it
    no_device_reason: str | None  # why not, when it was wanted
    remote_url: str | None  # the request redirecting to the provider's page (printed)
    link: str  # the listener's one-time link (a browser here, or through a port forward)
    redirect_uri: str  # the listener's


Offer = Callable[[str], str | None]
# `paste(offer)` starts taking pasted lines on the running loop (each goes to `offer`: None when
# taken, else why not, to be said) and returns what stops it (cli.login_oauth.PastePrompt).
Paste = Callable[[Offer], Callable[[], None]]


class _Cancelled(Exception):
    """The device poll's sleep, cut short: another way in won, or the sign-in was abandoned."""


Door = Literal["device", "remote", "loopback"]


def race_sign_in(
    login: SignInRequest,
    *,
    http: httpx2.Client,
    show: Callable[[Doors], None],
    paste: Paste,
    on_device_stopped: Callable[[str], None],
    with_device: bool = True,
    needs_remote_page: bool = True,
    clock: Callable[[], float] = time.time,
    again: str | None = None,
) -> SignedIn:
    """The race (module docstring). `show` gets the open doors once the listener is up and the
    device code (when `with_device`) was issued; `on_device_stopped(message)` says that the
    device code stopped working (expired, refused by the server) while the other doors stay
    open. A device code the person denied ends the sign-in. `needs_remote_page`: a provider
    without the "copy this code" page (metadata `keeptrusts_remote_redirect_uri`) is refused
    before anything is asked of it; otherwise the address a browser elsewhere ended on (the
    listener's) is what is pasted. `again` is the command that starts a new sign-in (default:
    `kt auth login --remote`)."""
    again = again or run_hint("kt", "auth", "login", "--remote")
    meta = provider_for(login, http=http)
    fetch_keys_early(meta, http)
    if needs_remote_page and meta.remote_redirect_uri is None:
        raise KtError(
            f"{login.issuer} has no page that shows a sign-in's answer to copy (its metadata"
            f" lists no {REMOTE_REDIRECT}), so --remote cannot be used with it; sign in with"
            " --browser --no-browser instead: on a terminal it takes the address your browser"
            " ends on, pasted back",
            hint=run_hint("kt", "auth", "login", "--browser", "--no-browser"),
        )
    scope = scope_to_ask(login, meta)
    started: DeviceStarted | None = None
    no_device: str | None = None
    if with_device:
        try:
            started = start_device_sign_in(login, http=http, meta=meta)
        except DeviceFlowUnavailable as exc:
            no_device = exc.message
    remote = (
        _request(login, meta, scope, meta.remote_redirect_uri, http)
        if meta.remote_redirect_uri is not None
        else None
    )
    loopback: list[AuthorizationRequest] = []
    cancel = threading.Event()
    decided = threading.Lock()  # taken, never released, by the one outcome that decides

    def claim() -> bool:
        return decided.acquire(blocking=False)

    def sleep(seconds: float) -> None:
        if cancel.wait(seconds):
            raise _Cancelled

    async def race() -> tuple[Door, SignedIn | CallbackResult]:
        loop = asyncio.get_running_loop()
        won: asyncio.Future[tuple[Door, SignedIn | CallbackResult]] = loop.create_future()

        def deliver(door: Door, outcome: SignedIn | CallbackResult | BaseException) -> None:
            # On the loop, for the one outcome that claimed the sign-in.
            if won.done():
                return
            if isinstance(outcome, BaseException):
                won.set_exception(outcome)
            else:
                won.set_result((door, outcome))

        def settle(door: Door, outcome: SignedIn | CallbackResult | BaseException) -> None:
            # On the loop: the first outcome to claim decides, later ones are dropped.
            if claim():
                deliver(door, outcome)

        def device_stopped(message: str) -> None:
            if not won.done():
                on_device_stopped(message)

        def timed_out() -> KtError:
            error = KtError(f"no sign-in arrived within {int(login.timeout)} s", hint=again)
            error.code = "kt.sign_in_timeout"
            return error

        state = new_state()
        server = CallbackServer(
            state=state,
            port=login.port,
            host=login.redirect_host.strip("[]"),
            timeout=login.timeout,
        )
        worker: threading.Thread | None = None
        stop_paste: Callable[[], None] | None = None
        listening: asyncio.Future[CallbackResult] | None = None
        try:
            try:
                await server.start()
            except CallbackError as exc:
                raise listener_error(exc, again=again, on_timeout=timed_out) from None
            request = _request(login, meta, scope, server.redirect_uri, http, state=state)
            loopback.append(request)
            pushed_at = time.monotonic()

            def renewed() -> str:
                # A pushed request expired before its link was followed: push it again for
                # this listener and state (RFC 9126 §4; as signin/browser.py does).
                nonlocal pushed_at
                if not needs_renewal(loopback[0], time.monotonic() - pushed_at):
                    return loopback[0].url
                again_ = _request(login, meta, scope, server.redirect_uri, http, state=state)
                loopback[:], pushed_at = [again_], time.monotonic()
                return again_.url

            link = server.one_time_link(request.url, renew=renewed)
            listening = asyncio.ensure_future(server.wait())

            def heard(task: asyncio.Future[CallbackResult]) -> None:
                if task.cancelled():
                    return
                exc = task.exception()
                if exc is None:
                    settle("loopback", task.result())
                elif isinstance(exc, CallbackError):
                    settle("loopback", listener_error(exc, again=again, on_timeout=timed_out))
                else:
                    settle("loopback", exc)

            listening.add_done_callback(heard)
            show(
                Doors(
                    device=started.authorization if started else None,
                    no_device_reason=no_device,
                    remote_url=remote.url if remote else None,
                    link=link,
                    redirect_uri=server.redirect_uri,
                )
            )

            def offer(text: str) -> str | None:
                refused: CallbackError | None = None
                if remote is not None:
                    try:
                        answer = parse_pasted(
                            text, redirect_uri=remote.redirect_uri, state=remote.state
                        )
                    except NotThisRedirect:
                        pass  # an address, but not the provider page's: the listener's?
                    except CallbackError as exc:
                        refused = exc
                    else:
                        settle("remote", answer)
                        return None
                why = server.offer_pasted(text)  # taken: the listener's wait ends with it
                return why if why is None or refused is None else str(refused)

            stop_paste = paste(offer)
            if started is not None:
                worker = threading.Thread(
                    target=_poll,
                    name="kt-device-poll",
                    args=(login, started, http, sleep, clock, loop, claim, deliver, device_stopped),
                )
                worker.start()
            return await won
        finally:
            if stop_paste is not None:
                stop_paste()
            cancel.set()
            if listening is not None and not listening.done():
                listening.cancel()  # the wait closes the listener as it ends
                await asyncio.wait([listening])
            await server.close()
            if worker is not None:
                worker.join()  # at most the poll in flight: its next sleep raises at once

    door, outcome = asyncio.run(race())
    if isinstance(outcome, SignedIn):
        return outcome
    request = remote if door == "remote" else loopback[0]
    assert request is not None
    return signed_in_with(login, meta, request, outcome, http=http, now=clock())


def _request(
    login: SignInRequest,
    meta: ProviderMetadata,
    scope: str,
    redirect_uri: str,
    http: httpx2.Client,
    *,
    state: str | None = None,
) -> AuthorizationRequest:
    """One authorization request (pushed first where the provider has a PAR endpoint)."""
    with scope_explained(login, scope, meta, method="browser"):
        return drive(
            authorize(
                meta,
                client_id=login.client_id,
                redirect_uri=redirect_uri,
                scope=scope,
                state=state or new_state(),
                prompt=login.prompt,
                max_age=login.max_age,
                acr_values=login.acr_values,
            ),
            http,
        )


def _poll(
    login: SignInRequest,
    started: DeviceStarted,
    http: httpx2.Client,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    loop: asyncio.AbstractEventLoop,
    claim: Callable[[], bool],
    deliver: Callable[[Door, SignedIn | BaseException], None],
    on_device_stopped: Callable[[str], None],
) -> None:
    """The device door, in its own thread: the poll until approval, reported to the loop. The
    outcome is claimed here, under the race's lock, so that a device grant approved in the same
    moment another way in won is known to have lost: its tokens are revoked (RFC 7009, where
    the provider can), never left valid and unused."""
    try:
        signed = wait_for_approval(login, started, http=http, sleep=sleep, clock=clock)
    except _Cancelled:
        return
    except OAuthError as exc:
        if exc.error == "access_denied":  # the person said no: that ends this sign-in
            if claim():
                loop.call_soon_threadsafe(deliver, "device", exc)
        else:
            loop.call_soon_threadsafe(on_device_stopped, exc.message)
        return
    except KtError as exc:  # the server or the network: the other ways in stay open
        loop.call_soon_threadsafe(on_device_stopped, exc.message)
        return
    except BaseException as exc:  # a bug: end the sign-in with it rather than hang
        if claim():
            loop.call_soon_threadsafe(deliver, "device", exc)
        return
    if claim():
        loop.call_soon_threadsafe(deliver, "device", signed)
        return
    _revoke_unused(signed, login, http)


def _revoke_unused(signed: SignedIn, login: SignInRequest, http: httpx2.Client) -> None:
    """Best effort: the grant of a device sign-in that lost the race."""
    endpoint = signed.meta.revocation_endpoint
    if endpoint is None:
        return
    try:
        drive(
            revoke_grant(
                endpoint,
                client_id=login.client_id,
                refresh_token=signed.tokens.refresh_token,
                access_token=signed.tokens.access_token,
            ),
            http,
        )
    except KtError:
        pass  # nothing more kt can do; the tokens were never kept or shown
