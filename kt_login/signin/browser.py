"""Browser sign-in (OAuth 2.0 Authorization Code + PKCE, RFC 8252): discovery → the request →
the loopback callback → one code exchange → the ID token checks."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx2

from callback_server import (
    CallbackError,
    CallbackResult,
    CallbackTimeout,
    LinkReused,
    PortInUse,
    receive,
)

from ..dpop import Prover
from ..errors import KtError, NetworkError, OAuthError, SignInLinkReused
from ..flows import drive
from ..flows.authcode import AuthorizationRequest, authorize, check_response, needs_renewal
from ..flows.discovery import ProviderMetadata
from ..flows.pkce import new_state
from ..flows.tokens import TokenResponse, exchange_code
from ..text import run_hint
from .oidc import (
    SignedIn,
    SignInRequest,
    checked_sign_in,
    fetch_keys_early,
    scope_explained,
    scope_to_ask,
)
from .provider import provider_for

# Token-endpoint errors that say something other than "this code was refused".
_NOT_ABOUT_THE_CODE = frozenset(
    {
        "invalid_client",
        "unauthorized_client",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    }
)


def browser_sign_in(
    login: SignInRequest,
    *,
    http: httpx2.Client,
    show_url: Callable[[str, str], None],
    clock: Callable[[], float] = time.time,
    rerun: Callable[[int], str] | None = None,
    accept_pasted: Callable[[Callable[[str], str | None]], Callable[[], None]] | None = None,
) -> SignedIn:
    """`show_url` gets the sign-in link and the redirect_uri once the listener is up: to open a
    browser on the link, or to print it for the person to open. The link is the listener's
    one-time link, never the authorization request itself: state, nonce and PKCE challenge stay
    off every command line (issue 11 case 1, docs/security.md LU-01). `rerun(port)` is the hint
    to sign in again on a fixed port (default: `kt auth login --browser --port PORT`).
    `accept_pasted` takes pasted answers while the listener waits (a browser on another machine):
    judged like the callback, first one wins (`callback_server.receive`); what is pasted then
    meets the same checks as a callback (state, iss, one code exchange)."""
    meta = provider_for(login, http=http)
    scope = scope_to_ask(login, meta)
    state = new_state()
    pending: list[AuthorizationRequest] = []
    pushed_at = [0.0]

    def authorization_url(redirect_uri: str) -> str:
        # Pushed first when the provider has a PAR endpoint (RFC 9126): it may refuse the scope.
        with scope_explained(login, scope, meta, method="browser"):
            request = drive(
                authorize(
                    meta,
                    client_id=login.client_id,
                    redirect_uri=redirect_uri,
                    scope=scope,
                    state=state,
                    prompt=login.prompt,
                    max_age=login.max_age,
                    acr_values=login.acr_values,
                ),
                http,
            )
        pending[:] = [request]
        pushed_at[0] = time.monotonic()
        return request.url

    def renewed() -> str:
        # The link followed after the pushed request expired (a printed link, --start): a new
        # push, for the same listener and state (RFC 9126 §4: a request_uri is used once).
        (request,) = pending
        if needs_renewal(request, time.monotonic() - pushed_at[0]):
            return authorization_url(request.redirect_uri)
        return request.url

    def ready(link: str) -> None:
        show_url(link, pending[0].redirect_uri)
        # Once the browser is open (not before: the imports would slow its opening down).
        fetch_keys_early(meta, http)

    try:
        result = receive(
            state,
            authorization_url=authorization_url,
            on_ready=ready,
            port=login.port,
            host=login.redirect_host.strip("[]"),  # the listener's spelling of [::1]
            timeout=login.timeout,
            accept_pasted=accept_pasted,
            renew=renewed,
        )
    except CallbackError as exc:
        raise listener_error(
            exc,
            again=run_hint("kt", "auth", "login", "--browser"),
            on_timeout=lambda: _no_response(login, pending[0].redirect_uri, rerun),
        ) from None
    (request,) = pending
    return signed_in_with(login, meta, request, result, http=http, now=clock())


def listener_error(exc: CallbackError, *, again: str, on_timeout: Callable[[], KtError]) -> KtError:
    """What a failure of the loopback listener (`callback_server`) means to the person: the
    one-time link opened twice, nothing in time (`on_timeout()`), a fixed port taken, or
    another reason it could not listen. `again` is the command that starts a new sign-in."""
    if isinstance(exc, LinkReused):
        return SignInLinkReused(
            "the sign-in link was opened twice, so someone else on this computer may have opened"
            " it: kt stopped this sign-in and stored nothing",
            hint="open its link only once: " + again,
        )
    if isinstance(exc, CallbackTimeout):
        return on_timeout()
    if isinstance(exc, PortInUse):
        error = KtError(
            f"port {exc.port} on {exc.host} is in use by another program, so kt cannot receive"
            " the sign-in there; kt never moves to another port on its own, as a provider that"
            " accepts only registered redirect URIs would refuse it",
            hint="stop the program on that port, or sign in with another --port (and register"
            " its redirect URI with such a provider); --port 0 takes any free port",
        )
        error.code = "kt.port_in_use"
        return error
    return KtError(f"could not receive the sign-in: {exc}")


def signed_in_with(
    login: SignInRequest,
    meta: ProviderMetadata,
    request: AuthorizationRequest,
    result: CallbackResult,
    *,
    http: httpx2.Client,
    now: float,
) -> SignedIn:
    """The authorization response checked (state, iss), the one code exchange, the ID token."""
    with scope_explained(login, request.scope, meta, method="browser"):
        code = check_response(request, result, meta)
        tokens = _exchange(meta, request, code, http, dpop=login.dpop)
    return checked_sign_in(
        tokens,
        meta,
        scope=request.scope,
        client_id=request.client_id,
        http=http,
        now=now,
        nonce=request.nonce,
        max_age=request.max_age,
        acr_values=request.acr_values,
    )


def _no_response(
    login: SignInRequest, redirect_uri: str, rerun: Callable[[int], str] | None
) -> KtError:
    """No callback within the wait: the tab was closed, or the provider refused the redirect
    address on its own page (exact redirect matching, issue 10 case 10)."""
    port = urlsplit(redirect_uri).port or 0
    error = KtError(
        f"no sign-in arrived within {int(login.timeout)} s (was the browser tab"
        " closed?). A provider that accepts only the exact redirect URIs registered with it shows"
        " its own error page about the redirect address instead: register"
        f" {redirect_uri} with it and sign in with --port {port}, or set port = {port} in the"
        " profile's config.toml",
        hint=rerun(port)
        if rerun
        else run_hint("kt", "auth", "login", "--browser", "--port", str(port)),
    )
    error.code = "kt.sign_in_timeout"
    return error


def _exchange(
    meta: ProviderMetadata,
    request: AuthorizationRequest,
    code: str,
    http: httpx2.Client,
    *,
    dpop: Prover | None = None,
) -> TokenResponse:
    """The one code exchange (with `dpop`, its tokens bound to that key); what its refusals
    mean at this endpoint."""
    try:
        return drive(
            exchange_code(
                meta.token_endpoint,
                client_id=request.client_id,
                code=code,
                redirect_uri=request.redirect_uri,
                verifier=request.verifier,
                resource=request.resource,
                dpop=dpop,
            ),
            http,
        )
    except OAuthError as exc:
        if exc.error in _NOT_ABOUT_THE_CODE:
            raise
        # invalid_grant, and what providers answer beside it (invalid_request, a 403
        # invalid_code for a PKCE verifier): at this endpoint all mean the code was refused.
        raise exc.restated(
            "the identity provider refused the grant: it did not accept the sign-in code",
            hint=run_hint("kt", "auth", "login", "--browser"),
        ) from None
    except NetworkError as exc:
        # The code may have been spent: retrying could only fail or, worse, trip replay detection.
        raise NetworkError(
            exc.message,
            hint="the sign-in was not completed; " + run_hint("kt", "auth", "login", "--browser"),
        ) from None


def step_up(
    login: SignInRequest, *, acr_values: str | None, max_age: int | None = 0
) -> SignInRequest:
    """The same sign-in asked for again at a higher level (RFC 9470): exactly the `acr_values`
    and `max_age` the API asked for, and a fresh login (prompt=login) whenever a max_age says
    how recent the sign-in must be; the ID token's acr and auth_time must then show them
    (idtoken.validate_id_token, LC-07). Without a max_age the provider may raise the level of
    the sign-in it has (acr_values alone)."""
    return dataclasses.replace(
        login,
        prompt="login" if max_age is not None else None,
        max_age=max_age,
        acr_values=acr_values or None,
    )
