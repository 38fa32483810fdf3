"""Federated sign-in ("Sign in with SSO") to a company's OpenID Connect provider.

Started with `--sso-issuer URL --sso-client-id ID [--sso-domain D ...]` (secret from env
`KT_DEVSERVER_SSO_CLIENT_SECRET` or `--sso-client-secret`), the sign-in page shows a link
`a#sso`. It leads to

    GET /oauth/sso/start?txn=…&csrf_token=…[&domain=…]   (asks for the domain or email first
                                                          when several --sso-domain are set)
    → the upstream authorization endpoint (code flow, PKCE S256, state, nonce)
    → GET /oauth/sso/callback?code=…&state=…[&iss=…]

kt-devserver is the relying party here, built from kt_login's own OAuth flows run over
`kt_login.flows.adrive` (httpx2.AsyncClient), not a second client: discovery (`flows.discovery`,
issuer pinned byte for byte, endpoints https or loopback), the authorization request
(`flows.authcode.begin`: PKCE S256, state, nonce), the response check (`parse_redirect` of
callback_server, then `flows.authcode.check_response`: `iss` per RFC 9207, required when the
provider advertises it), the code exchange (`flows.tokens.exchange_code`, client_secret_basic with
the client secret, or as a public client), the ID token (`kt_login.idtoken.validate_id_token` over
the JWKS of `idtoken.fetch_jwks`) and userinfo (`flows.userinfo`) when the ID token has no email.
`state` is single use and bound to this browser's sign-in cookie. The upstream (iss, sub) maps to
a local user in `sso_identities` (never by email). The first sign-in creates the user (role
member, organization Acme) when the email's domain is one of --sso-domain; otherwise a page
refuses (`p.error[data-error=sso_domain_not_allowed]`). Then the pending authorization continues
exactly as after a password (consent page; device consent for the device flow). Upstream `amr`
containing mfa/otp/hwk counts as local MFA (acr mfa).

Every failure shows `as_sso_error.html` (`h1`, `p.error[data-error=CODE]`) and ends the pending
authorization: the application gets `error=access_denied` (refused user, bad ID token, upstream
denial) or `error=temporarily_unavailable` (provider unreachable or answering 5xx), through the link
`a#return` (and an automatic refresh after a few seconds); a device flow's code is denied.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
from aiohttp import web
from authlib.common.urls import add_params_to_uri  # type: ignore[import-untyped]

from callback_server import CallbackError, parse_redirect
from kt_devserver import demo
from kt_devserver.db import User
from kt_devserver.oauth.authorize import (
    CONSENT,
    DEVICE_PARAM,
    LOGIN,
    Browser,
    _sign_in,
    browser_of,
    show,
)
from kt_devserver.oauth.http import OAuthContext, issuer_of, oauth_of, with_iss
from kt_devserver.oauth.pages import csrf_ok, csrf_token, error_page, render
from kt_devserver.oauth.storage import Transaction
from kt_devserver.state import SsoConfig
from kt_login.errors import KtError, NetworkError, OAuthError, ValidationFailed
from kt_login.flows import Flow, adrive
from kt_login.flows.authcode import AuthorizationRequest, begin, check_response
from kt_login.flows.discovery import ProviderMetadata, discover
from kt_login.flows.tokens import exchange_code
from kt_login.flows.userinfo import get_userinfo
from kt_login.idtoken import IdClaims, fetch_jwks, validate_id_token

T = TypeVar("T")

logger = logging.getLogger("kt_devserver")

START_PATH = "/oauth/sso/start"
CALLBACK_PATH = "/oauth/sso/callback"
ATTEMPT_TTL = 600
HTTP_TIMEOUT = 10.0
SCOPE = "openid email profile"
MFA_AMR = frozenset({"mfa", "otp", "hwk"})
SSO_PASSWORD_HASH = "!sso"  # noqa: S105 - not a hash: password sign-in can never match it
RETURN_DELAY = 8

UNAVAILABLE = "temporarily_unavailable"
DENIED = "access_denied"
_REFUSED = "The sign-in service refused to complete the sign-in."


class SsoError(Exception):
    """A federated sign-in that cannot continue: a page code, its message, the client's error."""

    def __init__(self, code: str, message: str, client_error: str = DENIED) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_error = client_error


def _unavailable(detail: str) -> SsoError:
    logger.warning("SSO provider unavailable: %s", detail)
    return SsoError(
        UNAVAILABLE,
        "Your company's sign-in service is unavailable right now. Try again later.",
        UNAVAILABLE,
    )


def config_of(request: web.Request) -> SsoConfig | None:
    return oauth_of(request).state.settings.sso


# --- the upstream provider -----------------------------------------------------------------


class Provider:
    """The provider over one httpx2.AsyncClient; its flows run with kt_login's `adrive`."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http
        self._last_status: int | None = None
        http.event_hooks["response"].append(self._note_status)

    async def _note_status(self, response: httpx2.Response) -> None:
        self._last_status = response.status_code

    async def run(self, flow: Flow[T], *, failed: str) -> T:
        """The flow's result. A provider that cannot be reached, or whose last reply was a 5xx,
        is unavailable; any other failure is `sso_failed` with the message `failed`."""
        self._last_status = None
        try:
            return await adrive(flow, self._http)
        except NetworkError as exc:
            raise _unavailable(exc.message) from exc
        except KtError as exc:
            if self._last_status is not None and self._last_status >= 500:
                raise _unavailable(f"answered {self._last_status}") from exc
            logger.warning("SSO provider: %s", exc.message)
            raise SsoError("sso_failed", failed) from exc

    async def metadata(self, issuer: str) -> ProviderMetadata:
        return await self.run(
            discover(issuer), failed="The sign-in service gave an unexpected answer."
        )


def _provider_client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=HTTP_TIMEOUT)


# --- pages -----------------------------------------------------------------------------------


def _return_location(txn: Transaction, error: str, description: str, issuer: str) -> str | None:
    params = dict(txn.params)
    if DEVICE_PARAM in params:
        return None
    query = [("error", error), ("error_description", description)]
    if params.get("state") is not None:
        query.append(("state", params["state"]))
    return with_iss(add_params_to_uri(params["redirect_uri"], query), issuer)


def _end(ctx: OAuthContext, txn: Transaction, issuer: str, error: SsoError) -> web.Response:
    """Finish the pending authorization with the client's error and show the SSO error page."""
    now = ctx.state.clock()
    ctx.store.finish_transaction(txn.id, now=now)
    params = dict(txn.params)
    device_id = params.get(DEVICE_PARAM)
    if device_id is not None:
        ctx.store.decide_device_code(device_id, approved=False, now=now)
    location = _return_location(txn, error.client_error, error.message, issuer)
    status = 503 if error.client_error == UNAVAILABLE else 403
    return render(
        "as_sso_error.html",
        status=status,
        redirect_uri=params.get("redirect_uri"),
        error=error.code,
        message=error.message,
        return_to=location,
        delay=RETURN_DELAY,
        device=device_id is not None,
    )


def _pending(ctx: OAuthContext, browser: Browser | None, txn_id: str) -> Transaction | None:
    txn = ctx.store.transaction(txn_id)
    if (
        browser is None
        or txn is None
        or txn.browser_session_id != browser.session.id
        or txn.finished_at is not None
        or ctx.state.clock() >= txn.expires_at
        or txn.step != LOGIN
    ):
        return None
    return txn


_EXPIRED = "This sign-in attempt is unknown, finished or expired."


def _domain_of(value: str) -> str:
    return value.rsplit("@", 1)[-1].strip().lower()


async def start(request: web.Request) -> web.Response:
    cfg = config_of(request)
    if cfg is None:
        return error_page(404, "not_found", "Single sign-on is not configured on this server.")
    ctx = oauth_of(request)
    issuer = issuer_of(request)
    browser = browser_of(ctx, request, create=False)
    if browser is None or not csrf_ok(browser.secret, request.query.get("csrf_token")):
        return error_page(
            400,
            "invalid_csrf_token",
            "The link's security token is missing or does not match this browser's session.",
        )
    txn = _pending(ctx, browser, request.query.get("txn", ""))
    if txn is None:
        return error_page(400, "expired", _EXPIRED)
    entered = request.query.get("domain", "").strip()[:320]
    login_hint = entered if "@" in entered else None
    if len(cfg.domains) > 1 and (not entered or _domain_of(entered) not in cfg.domains):
        error = None
        if entered:
            error = "That domain does not use single sign-on here."
        response = render(
            "as_sso_domain.html",
            redirect_uri=dict(txn.params).get("redirect_uri"),
            csrf_token=csrf_token(browser.secret),
            txn=txn.id,
            error=error,
            entered=entered,
        )
        # The form's GET redirects on to the provider: form-action must allow its origin.
        upstream = urlsplit(cfg.issuer)
        response.headers["Content-Security-Policy"] += f" {upstream.scheme}://{upstream.netloc}"
        return response
    try:
        async with _provider_client() as http:
            meta = await Provider(http).metadata(cfg.issuer)
        pending = _authorization_request(meta, cfg, issuer, login_hint)
    except SsoError as exc:
        return _end(ctx, txn, issuer, exc)
    ctx.store.save_sso_attempt(
        pending.state,
        txn.id,
        browser.session.id,
        pending.nonce,
        pending.verifier,
        ctx.state.clock() + ATTEMPT_TTL,
    )
    return web.Response(status=302, headers={"Location": pending.url, "Cache-Control": "no-store"})


def _authorization_request(
    meta: ProviderMetadata, cfg: SsoConfig, issuer: str, login_hint: str | None
) -> AuthorizationRequest:
    try:
        return begin(
            meta,
            client_id=cfg.client_id,
            redirect_uri=issuer + CALLBACK_PATH,
            scope=SCOPE,
            login_hint=login_hint,
        )
    except ValidationFailed as exc:  # an authorization endpoint on another host than the issuer
        logger.warning("SSO provider: %s", exc.message)
        raise SsoError("sso_failed", "The sign-in service gave an unexpected answer.") from exc


# --- the callback ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    sub: str
    email: str | None
    email_verified: bool | None
    name: str | None
    mfa: bool


def upstream_claims(
    id_token: str, keys: Sequence[Any], *, issuer: str, client_id: str, nonce: str, now: float
) -> IdClaims:
    """The upstream ID token's claims, checked by kt_login's one ID-token validation."""
    try:
        return validate_id_token(
            id_token, keys=keys, issuer=issuer, client_id=client_id, now=now, nonce=nonce
        )
    except ValidationFailed as exc:
        raise SsoError(
            "sso_invalid_id_token",
            "The sign-in service's answer could not be verified (invalid ID token).",
        ) from exc


async def _identity(
    provider: Provider,
    cfg: SsoConfig,
    meta: ProviderMetadata,
    pending: AuthorizationRequest,
    code: str,
    now: float,
) -> Identity:
    tokens = await provider.run(
        exchange_code(
            meta.token_endpoint,
            client_id=cfg.client_id,
            code=code,
            redirect_uri=pending.redirect_uri,
            verifier=pending.verifier,
            client_secret=cfg.client_secret or None,
        ),
        failed=_REFUSED,
    )
    if tokens.id_token is None or meta.jwks_uri is None:
        raise SsoError("sso_failed", _REFUSED)
    keys = await provider.run(
        fetch_jwks(meta.jwks_uri), failed="The sign-in service's keys are unusable."
    )
    claims = upstream_claims(
        tokens.id_token,
        keys,
        issuer=cfg.issuer,
        client_id=cfg.client_id,
        nonce=pending.nonce,
        now=now,
    )
    email, verified, name = claims.email, claims.email_verified, claims.name
    if email is None and meta.userinfo_endpoint is not None:
        info = await provider.run(
            get_userinfo(
                meta.userinfo_endpoint, access_token=tokens.access_token, subject=claims.sub
            ),
            failed="The sign-in service's user information is unusable.",
        )
        if info is not None:
            email, verified = info.get("email"), info.get("email_verified")
            name = name or info.get("name")
    return Identity(
        sub=claims.sub,
        email=email if isinstance(email, str) else None,
        email_verified=verified if isinstance(verified, bool) else None,
        name=name if isinstance(name, str) else None,
        mfa=not MFA_AMR.isdisjoint(claims.amr),
    )


def map_user(request: web.Request, cfg: SsoConfig, identity: Identity) -> User:
    """The local user for the upstream (iss, sub); created on first sign-in if the domain fits."""
    ctx = oauth_of(request)
    db = ctx.state.db
    user_id = ctx.store.sso_user(cfg.issuer, identity.sub)
    if user_id is not None:
        return db.get_user(user_id)
    email = identity.email
    if not email or "@" not in email or identity.email_verified is False:
        raise SsoError(
            "sso_email_missing",
            "Your company's sign-in service did not share a verified email address.",
        )
    if _domain_of(email) not in cfg.domains:
        raise SsoError(
            "sso_domain_not_allowed",
            f"{email} does not belong to an organization on this server, so it cannot sign in "
            "with single sign-on.",
        )
    if db.find_user_by_email(email) is not None:
        raise SsoError(
            "sso_email_taken",
            f"{email} already has a password account here; single sign-on cannot take it over.",
        )
    org = db.get_or_create_organization(demo.ORGANIZATION_NAME)
    user = db.create_user(
        org_id=org.id,
        email=email,
        name=identity.name or email,
        role="member",
        password_hash=SSO_PASSWORD_HASH,
        totp_secret=None,
    )
    ctx.store.link_sso_identity(cfg.issuer, identity.sub, user.id, now=ctx.state.clock())
    logger.info("SSO: created user %s for a new federated identity", user.id)
    return user


def _authorization_code(url: str, pending: AuthorizationRequest, meta: ProviderMetadata) -> str:
    """The code the provider's redirect to our callback carries, once it checks out."""
    invalid = SsoError("sso_invalid_response", "The sign-in service's answer is not valid.")
    try:
        result = parse_redirect(url, redirect_uri=pending.redirect_uri, state=pending.state)
    except CallbackError as exc:
        raise invalid from exc
    try:
        return check_response(pending, result, meta)
    except ValidationFailed as exc:  # another issuer, or the promised `iss` missing (RFC 9207)
        raise invalid from exc
    except OAuthError as exc:
        denied = result.error == "access_denied"
        raise SsoError(
            "sso_denied" if denied else "sso_failed",
            "Your company's sign-in service did not sign you in.",
        ) from exc


async def callback(request: web.Request) -> web.Response:
    cfg = config_of(request)
    if cfg is None:
        return error_page(404, "not_found", "Single sign-on is not configured on this server.")
    ctx = oauth_of(request)
    issuer = issuer_of(request)
    now = ctx.state.clock()
    state = request.query.get("state", "")[:200]
    attempt = ctx.store.take_sso_attempt(state, now=now)
    browser = browser_of(ctx, request, create=False)
    if attempt is None or browser is None or browser.session.id != attempt.browser_session_id:
        return error_page(400, "expired", _EXPIRED)
    txn = _pending(ctx, browser, attempt.txn_id)
    if txn is None:
        return error_page(400, "expired", _EXPIRED)
    pending = AuthorizationRequest(
        url="",
        redirect_uri=issuer + CALLBACK_PATH,
        client_id=cfg.client_id,
        issuer=cfg.issuer,
        scope=SCOPE,
        state=state,
        nonce=attempt.nonce,
        verifier=attempt.code_verifier,
    )
    try:
        async with _provider_client() as http:
            provider = Provider(http)
            meta = await provider.metadata(cfg.issuer)
            code = _authorization_code(issuer + request.raw_path, pending, meta)
            identity = await _identity(provider, cfg, meta, pending, code, now=now)
        user = map_user(request, cfg, identity)
    except SsoError as exc:
        return _end(ctx, txn, issuer, exc)
    signed_in = _sign_in(ctx, browser, user, mfa=identity.mfa)
    ctx.store.advance_transaction(txn.id, step=CONSENT, user_id=user.id)
    return show(CONSENT, signed_in, txn.id, dict(txn.params), user)


def register(app: web.Application, ctx: OAuthContext) -> None:
    """Add the SSO routes, only when --sso-issuer is set (else they do not exist: 404)."""
    if ctx.state.settings.sso is None:
        return
    app.router.add_get(START_PATH, start)
    app.router.add_get(CALLBACK_PATH, callback)
