"""Browser sign-in: discovery → PKCE request → loopback callback → one code exchange → ID token
checks → a Session. Nothing is stored here; the caller stores the Session only after every check
passed (EH-04), with the same code that stores a password login.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import KtError, NetworkError, ValidationFailed
from .flows import drive
from .flows.authcode import DEFAULT_SCOPE, AuthorizationRequest, begin, check_response
from .flows.discovery import ProviderMetadata, discover
from .flows.pkce import new_state
from .flows.tokens import TokenResponse, exchange_code
from .flows.userinfo import get_userinfo
from .idtoken import IdClaims, provider_keys, validate_id_token
from .text import clean

if TYPE_CHECKING:
    import httpx2

    from .browser import Opener
    from .flows.device import DeviceAuthorization
    from .output import Console
    from .session import Session

DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class SignInRequest:
    issuer: str
    client_id: str
    scope: str = DEFAULT_SCOPE
    port: int = 0
    timeout: float = DEFAULT_TIMEOUT
    prompt: str | None = None
    max_age: int | None = None
    acr_values: str | None = None


@dataclass(frozen=True)
class SignedIn:
    tokens: TokenResponse
    claims: IdClaims | None
    meta: ProviderMetadata
    userinfo: dict[str, object] | None


def sign_in(
    login: SignInRequest,
    *,
    http: httpx2.Client,
    console: Console,
    opener: Opener | None,
    why_no_browser: str | None,
    clock: Callable[[], float] = time.time,
) -> SignedIn:
    from callback_server import CallbackError, CallbackTimeout, receive

    meta = drive(discover(login.issuer), http)
    state = new_state()
    pending: list[AuthorizationRequest] = []

    def on_ready(redirect_uri: str) -> None:
        request = begin(
            meta,
            client_id=login.client_id,
            redirect_uri=redirect_uri,
            scope=login.scope,
            state=state,
            prompt=login.prompt,
            max_age=login.max_age,
            acr_values=login.acr_values,
        )
        pending.append(request)
        _show(request.url, console=console, opener=opener, why_no_browser=why_no_browser)

    try:
        result = receive(state, on_ready=on_ready, port=login.port, timeout=login.timeout)
    except CallbackTimeout:
        raise KtError(
            f"no sign-in arrived within {int(login.timeout)} s (was the browser tab closed?)",
            hint="run kt auth login --browser again (or --device where no browser can be used)",
        ) from None
    except CallbackError as exc:
        raise KtError(f"could not receive the sign-in: {exc}") from None
    (request,) = pending
    code = check_response(request, result, meta)
    try:
        tokens = drive(
            exchange_code(
                meta.token_endpoint,
                client_id=login.client_id,
                code=code,
                redirect_uri=request.redirect_uri,
                verifier=request.verifier,
            ),
            http,
        )
    except NetworkError as exc:
        # The code may have been spent: retrying could only fail or, worse, trip replay detection.
        raise NetworkError(
            exc.message, hint="the sign-in was not completed; run kt auth login again"
        ) from None
    claims = id_claims(
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
    userinfo = fetch_userinfo(meta, tokens, claims, http=http)
    return SignedIn(tokens=tokens, claims=claims, meta=meta, userinfo=userinfo)


def _show(url: str, *, console: Console, opener: Opener | None, why_no_browser: str | None) -> None:
    if opener is not None and why_no_browser is None and opener(url):
        console.info("Opened your browser to sign in. If it did not open, visit:")
        console.info(f"  {url}")
        return
    if opener is not None and why_no_browser is not None:
        console.info(f"Cannot open a browser here: {why_no_browser}.")
        console.info("Open this URL in a browser on this machine to sign in")
        console.info("(or run kt auth login --device to sign in from another device):")
    else:
        console.info("Open this URL in a browser on this machine to sign in:")
    console.info(f"  {url}")


def id_claims(
    tokens: TokenResponse,
    meta: ProviderMetadata,
    *,
    scope: str,
    client_id: str,
    http: httpx2.Client,
    now: float,
    nonce: str | None = None,
    max_age: int | None = None,
    acr_values: str | None = None,
) -> IdClaims | None:
    """The ID token's claims, validated, when the sign-in asked for `openid`; None otherwise."""
    if "openid" not in scope.split():
        return None
    if tokens.id_token is None:
        raise ValidationFailed("the provider returned no ID token for an OpenID sign-in")
    if meta.jwks_uri is None:
        raise ValidationFailed("the provider publishes no jwks_uri to verify its ID tokens")
    return validate_id_token(
        tokens.id_token,
        keys=provider_keys(meta.jwks_uri, http),
        issuer=meta.issuer,
        client_id=client_id,
        now=now,
        nonce=nonce,
        max_age=max_age,
        acr_values=tuple(acr_values.split()) if acr_values else (),
        algs=meta.id_token_algs,
    )


def fetch_userinfo(
    meta: ProviderMetadata,
    tokens: TokenResponse,
    claims: IdClaims | None,
    *,
    http: httpx2.Client,
) -> dict[str, object] | None:
    """UserInfo when the provider has it; its `sub` must be the ID token's (ID-07)."""
    if meta.userinfo_endpoint is None or claims is None:
        return None
    return drive(
        get_userinfo(meta.userinfo_endpoint, access_token=tokens.access_token, subject=claims.sub),
        http,
    )


def session_from_sign_in(
    signed: SignedIn, *, login: SignInRequest, api_url: str, now: float, method: str = "browser"
) -> Session:
    from .session import OAUTH, Session

    claims, info = signed.claims, signed.userinfo or {}
    email = (claims.email if claims else None) or info.get("email")
    tokens = signed.tokens
    return Session(
        api_url=api_url,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=now + tokens.expires_in if tokens.expires_in else None,
        method=method,
        kind=OAUTH,
        user_email=clean(email) if isinstance(email, str) else "",
        user_id=claims.sub if claims else "",
        organization="",
        role="",
        scopes=tuple((tokens.scope or login.scope).split()),
        mfa_authenticated=bool(claims and ("otp" in claims.amr or "mfa" in claims.amr)),
        obtained_at=now,
        issuer=signed.meta.issuer,
        client_id=login.client_id,
        token_endpoint=signed.meta.token_endpoint,
        revocation_endpoint=signed.meta.revocation_endpoint,
        jwks_uri=signed.meta.jwks_uri,
        subject=claims.sub if claims else None,
        auth_time=claims.auth_time if claims else None,
        acr=claims.acr if claims else None,
    )


def device_sign_in(
    login: SignInRequest,
    *,
    http: httpx2.Client,
    show: Callable[[DeviceAuthorization], None],
    on_wait: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> SignedIn:
    """RFC 8628 sign-in: show the code, poll, then the same ID-token checks as the browser flow
    (DV-06); with no nonce in this grant, the ID token's iat must be fresh instead."""
    from .flows.device import poll, request_device_code

    meta = drive(discover(login.issuer), http)
    if meta.device_authorization_endpoint is None:
        raise ValidationFailed(
            f"{login.issuer} does not offer device sign-in",
            hint="use kt auth login --browser (with --no-browser over SSH) or --email",
        )
    authorization = drive(
        request_device_code(
            meta.device_authorization_endpoint,
            client_id=login.client_id,
            scope=login.scope,
            issuer=meta.issuer,
        ),
        http,
    )
    show(authorization)
    tokens = drive(
        poll(authorization, token_endpoint=meta.token_endpoint, client_id=login.client_id),
        http,
        sleep=sleep,
        monotonic=monotonic,
        on_wait=(lambda wait: on_wait(wait.remaining or 0.0)) if on_wait is not None else None,
    )
    claims = id_claims(
        tokens, meta, scope=login.scope, client_id=login.client_id, http=http, now=clock()
    )
    userinfo = fetch_userinfo(meta, tokens, claims, http=http)
    return SignedIn(tokens=tokens, claims=claims, meta=meta, userinfo=userinfo)
