"""Browser sign-in (OAuth 2.0 Authorization Code + PKCE, RFC 8252): discovery → the request →
the loopback callback → one code exchange → the ID token checks."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import httpx2

from callback_server import CallbackError, CallbackTimeout, LinkReused, receive

from ..errors import KtError, NetworkError, OAuthError, SignInLinkReused
from ..flows import drive
from ..flows.authcode import AuthorizationRequest, begin, check_response
from ..flows.discovery import ProviderMetadata, discover
from ..flows.pkce import new_state
from ..flows.tokens import TokenResponse, exchange_code
from .oidc import SignedIn, SignInRequest, checked_sign_in, scope_explained, scope_to_ask

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
) -> SignedIn:
    """`show_url` gets the sign-in link and the redirect_uri once the listener is up: to open a
    browser on the link, or to print it for the person to open. The link is the listener's
    one-time link, never the authorization request itself: state, nonce and PKCE challenge stay
    off every command line (issue 11 case 1, docs/security.md LU-01)."""
    meta = drive(discover(login.issuer), http)
    scope = scope_to_ask(login, meta)
    state = new_state()
    pending: list[AuthorizationRequest] = []

    def authorization_url(redirect_uri: str) -> str:
        request = begin(
            meta,
            client_id=login.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            prompt=login.prompt,
            max_age=login.max_age,
            acr_values=login.acr_values,
        )
        pending.append(request)
        return request.url

    try:
        result = receive(
            state,
            authorization_url=authorization_url,
            on_ready=lambda link: show_url(link, pending[0].redirect_uri),
            port=login.port,
            timeout=login.timeout,
        )
    except LinkReused:
        raise SignInLinkReused(
            "the sign-in link was opened twice, so someone else on this computer may have opened"
            " it: kt stopped this sign-in and stored nothing",
            hint="run kt auth login --browser again, and open its link only once",
        ) from None
    except CallbackTimeout:
        raise KtError(
            f"no sign-in arrived within {int(login.timeout)} s (was the browser tab closed?)",
            hint="run kt auth login --browser again (or --device where no browser can be used)",
        ) from None
    except CallbackError as exc:
        raise KtError(f"could not receive the sign-in: {exc}") from None
    (request,) = pending
    with scope_explained(login, scope, meta, method="browser"):
        code = check_response(request, result, meta)
        tokens = _exchange(meta, request, code, http)
    return checked_sign_in(
        tokens,
        meta,
        scope=request.scope,
        client_id=request.client_id,
        http=http,
        now=clock(),
        nonce=request.nonce,
        max_age=request.max_age,
        acr_values=request.acr_values,
    )


def _exchange(
    meta: ProviderMetadata, request: AuthorizationRequest, code: str, http: httpx2.Client
) -> TokenResponse:
    """The one code exchange; what its refusals mean at this endpoint."""
    try:
        return drive(
            exchange_code(
                meta.token_endpoint,
                client_id=request.client_id,
                code=code,
                redirect_uri=request.redirect_uri,
                verifier=request.verifier,
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
            hint="run kt auth login again",
        ) from None
    except NetworkError as exc:
        # The code may have been spent: retrying could only fail or, worse, trip replay detection.
        raise NetworkError(
            exc.message, hint="the sign-in was not completed; run kt auth login again"
        ) from None


def step_up(login: SignInRequest, *, acr_values: str) -> SignInRequest:
    """The same sign-in asked for again at a higher level (RFC 9470 style): a fresh login
    (prompt=login, max_age=0) at `acr_values`, which the ID token's acr and auth_time must
    show (LC-07)."""
    return dataclasses.replace(login, prompt="login", max_age=0, acr_values=acr_values)
