"""Federated sign-in ("Sign in with SSO") to a company's OpenID Connect provider.

Started with `--sso-issuer URL --sso-client-id ID [--sso-domain D ...]` (secret from env
`KT_DEVSERVER_SSO_CLIENT_SECRET` or `--sso-client-secret`), the sign-in page shows a link
`a#sso`. It leads to

    GET /oauth/sso/start?txn=…&csrf_token=…[&domain=…]   (asks for the domain or email first
                                                          when several --sso-domain are set)
    → the upstream authorization endpoint (code flow, PKCE S256, state, nonce)
    → GET /oauth/sso/callback?code=…&state=…[&iss=…]

The callback checks `state` (single use, bound to this browser's sign-in cookie) and `iss` (RFC
9207, required when the provider advertises it), exchanges the code (HTTP Basic with the client
secret, or as a public client), validates the ID token with kt_login's one ID-token validation
(`kt_login.idtoken.validate_id_token`: signature with the provider's JWKS, fetched with
`kt_login.flows.adrive`; algorithm allow-list; iss byte for byte as discovery pinned it; aud, azp,
exp, iat, nonce) and maps the upstream (iss, sub) to a local user in `sso_identities` (never by
email). The first sign-in creates the user (role member, organization Acme) when the email's
domain is one of --sso-domain; otherwise a page refuses
(`p.error[data-error=sso_domain_not_allowed]`). Then the pending authorization continues exactly
as after a password (consent page; device consent for the device flow). Upstream `amr`
containing mfa/otp/hwk counts as local MFA (acr mfa).

Every failure shows `as_sso_error.html` (`h1`, `p.error[data-error=CODE]`) and ends the pending
authorization: the application gets `error=access_denied` (refused user, bad ID token, upstream
denial) or `error=temporarily_unavailable` (provider unreachable), through the link
`a#return` (and an automatic refresh after a few seconds); a device flow's code is denied.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import httpx2
from aiohttp import web
from authlib.common.urls import add_params_to_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

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
from kt_devserver.oauth.storage import SsoAttempt, Transaction
from kt_devserver.state import SsoConfig
from kt_login.errors import KtError, NetworkError, ValidationFailed
from kt_login.flows import adrive
from kt_login.idtoken import IdClaims, fetch_jwks, validate_id_token

logger = logging.getLogger("kt_devserver")

START_PATH = "/oauth/sso/start"
CALLBACK_PATH = "/oauth/sso/callback"
ATTEMPT_TTL = 600
HTTP_TIMEOUT = 10.0
MFA_AMR = frozenset({"mfa", "otp", "hwk"})
SSO_PASSWORD_HASH = "!sso"  # noqa: S105 - not a hash: password sign-in can never match it
RETURN_DELAY = 8

UNAVAILABLE = "temporarily_unavailable"
DENIED = "access_denied"


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


async def _get_json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> Any:
    try:
        async with http.get(url, **kwargs) as response:
            if response.status >= 500:
                raise _unavailable(f"GET {url} answered {response.status}")
            if response.status != 200:
                raise SsoError("sso_failed", "The sign-in service gave an unexpected answer.")
            return await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
        raise _unavailable(f"GET {url}: {type(exc).__name__}") from exc


async def discover(http: aiohttp.ClientSession, issuer: str) -> dict[str, Any]:
    doc = await _get_json(http, issuer.rstrip("/") + "/.well-known/openid-configuration")
    if not isinstance(doc, dict) or doc.get("issuer") != issuer:
        raise _unavailable("discovery document missing or for another issuer")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(name), str):
            raise _unavailable(f"discovery document without {name}")
    return doc


def _client(timeout: float = HTTP_TIMEOUT) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))


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
        async with _client() as http:
            doc = await discover(http, cfg.issuer)
    except SsoError as exc:
        return _end(ctx, txn, issuer, exc)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(48)
    ctx.store.save_sso_attempt(
        state, txn.id, browser.session.id, nonce, verifier, ctx.state.clock() + ATTEMPT_TTL
    )
    query = [
        ("response_type", "code"),
        ("client_id", cfg.client_id),
        ("redirect_uri", issuer + CALLBACK_PATH),
        ("scope", "openid email profile"),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", create_s256_code_challenge(verifier)),
        ("code_challenge_method", "S256"),
    ]
    if login_hint:
        query.append(("login_hint", login_hint))
    location = add_params_to_uri(doc["authorization_endpoint"], query)
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


# --- the callback ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    sub: str
    email: str | None
    email_verified: bool | None
    name: str | None
    mfa: bool


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1 client_secret_basic: each part form-urlencoded, then base64."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


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


async def upstream_keys(jwks_uri: str) -> list[Any]:
    """The provider's signing keys, fetched with kt_login's flow over `adrive`."""
    try:
        async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            return await adrive(fetch_jwks(jwks_uri), http)
    except NetworkError as exc:
        raise _unavailable(f"jwks: {exc.message}") from exc
    except KtError as exc:
        raise SsoError("sso_failed", "The sign-in service's keys are unusable.") from exc


async def _identity(
    http: aiohttp.ClientSession,
    cfg: SsoConfig,
    doc: dict[str, Any],
    attempt: SsoAttempt,
    code: str,
    redirect_uri: str,
    now: float,
) -> Identity:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": attempt.code_verifier,
    }
    headers = {"Accept": "application/json"}
    if cfg.client_secret:
        headers["Authorization"] = basic_auth(cfg.client_id, cfg.client_secret)
    else:
        form["client_id"] = cfg.client_id
    try:
        async with http.post(doc["token_endpoint"], data=form, headers=headers) as response:
            status = response.status
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
        raise _unavailable(f"token endpoint: {type(exc).__name__}") from exc
    if status >= 500:
        raise _unavailable(f"token endpoint answered {status}")
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
        logger.warning("SSO code exchange refused: %s", status)
        raise SsoError("sso_failed", "The sign-in service refused to complete the sign-in.")
    claims = upstream_claims(
        body["id_token"],
        await upstream_keys(doc["jwks_uri"]),
        issuer=cfg.issuer,
        client_id=cfg.client_id,
        nonce=attempt.nonce,
        now=now,
    )
    email, verified, name = claims.email, claims.email_verified, claims.name
    access_token = body.get("access_token")
    userinfo_url = doc.get("userinfo_endpoint")
    if email is None and isinstance(access_token, str) and isinstance(userinfo_url, str):
        info = await _get_json(
            http, userinfo_url, headers={"Authorization": f"Bearer {access_token}"}
        )
        if isinstance(info, dict) and info.get("sub") == claims.sub:
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


async def callback(request: web.Request) -> web.Response:
    cfg = config_of(request)
    if cfg is None:
        return error_page(404, "not_found", "Single sign-on is not configured on this server.")
    ctx = oauth_of(request)
    issuer = issuer_of(request)
    query = request.query
    now = ctx.state.clock()
    attempt = ctx.store.take_sso_attempt(query.get("state", "")[:200], now=now)
    browser = browser_of(ctx, request, create=False)
    if attempt is None or browser is None or browser.session.id != attempt.browser_session_id:
        return error_page(400, "expired", _EXPIRED)
    txn = _pending(ctx, browser, attempt.txn_id)
    if txn is None:
        return error_page(400, "expired", _EXPIRED)
    try:
        async with _client() as http:
            doc = await discover(http, cfg.issuer)
            iss = query.get("iss")
            if (iss is not None or doc.get("authorization_response_iss_parameter_supported")) and (
                iss != cfg.issuer
            ):
                raise SsoError("sso_invalid_response", "The answer came from another issuer.")
            if "error" in query:
                upstream_error = query.get("error", "")[:100]
                raise SsoError(
                    "sso_" + ("denied" if upstream_error == "access_denied" else "failed"),
                    "Your company's sign-in service did not sign you in.",
                )
            code = query.get("code")
            if not code:
                raise SsoError("sso_invalid_response", "The sign-in service sent no code.")
            identity = await _identity(
                http, cfg, doc, attempt, code, issuer + CALLBACK_PATH, now=now
            )
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
