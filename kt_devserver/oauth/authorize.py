"""The interactive authorization endpoint: sign-in, MFA and consent pages, then the redirect.

`GET /oauth/authorize` takes a pushed request's parameters for its `request_uri` (RFC 9126;
pushed.py), validates the request with authlib, then records it as a transaction bound
to the browser's sign-in session and shows the first page it needs:

- sign-in, unless the browser session already has a user and neither `prompt=login` nor an
  exceeded `max_age` demands a fresh password;
- MFA (TOTP) after the password of a user with MFA enrolled, and also when an existing session
  is reused but `acr_values` asks for `urn:keeptrusts:acr:mfa`;
- consent (client name, scopes, Approve/Deny).

Each page posts back with the CSRF token and the transaction id. Five wrong passwords or codes end
the transaction with `error=access_denied`. Requests whose client or redirect URI cannot be
trusted get an error page, never a redirect; every redirect carries `state` and `iss`.

The device flow's verification pages (device_pages.py) reuse the sign-in and MFA steps: their
transactions carry a `kt_device` parameter (the device authorization's id, never the user code),
for which the consent step is the device consent page and a denial ends on a page, not a redirect.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AccessDeniedError,
    InvalidRequestError,
    OAuth2Error,
    UnsupportedResponseTypeError,
)
from authlib.oidc.core.errors import (  # type: ignore[import-untyped]
    ConsentRequiredError,
    LoginRequiredError,
)

from kt_devserver.credentials import hash_secret
from kt_devserver.db import User
from kt_devserver.oauth import clients, pushed, resources
from kt_devserver.oauth.http import (
    OAuthContext,
    authorization_redirect,
    form_pairs,
    issuer_of,
    oauth_of,
    oauth_request,
)
from kt_devserver.oauth.metadata import REMOTE_CALLBACK_PATH
from kt_devserver.oauth.pages import (
    cookie_secret,
    csrf_ok,
    csrf_token,
    error_page,
    new_cookie_secret,
    render,
    set_cookie,
)
from kt_devserver.oauth.request import AuthContext, KtRequest, Reply
from kt_devserver.oauth.scopes import ACR_MFA, DESCRIPTIONS
from kt_devserver.oauth.storage import BrowserSession, Transaction
from kt_devserver.signin_checks import Code, TooManyAttempts, check_code, check_password
from kt_devserver.state import MAX_MFA_ATTEMPTS

BROWSER_SESSION_TTL = 12 * 3600
TRANSACTION_TTL = 600
MAX_FAILURES = MAX_MFA_ATTEMPTS

LOGIN, MFA, CONSENT = "login", "mfa", "consent"
# The transaction parameter that marks a device-flow transaction (value: the device code's id).
DEVICE_PARAM = "kt_device"


@dataclass(frozen=True)
class Browser:
    secret: str
    session: BrowserSession
    set_cookie: bool


def browser_of(ctx: OAuthContext, request: web.Request, *, create: bool) -> Browser | None:
    now = ctx.state.clock()
    secret = cookie_secret(request)
    if secret is not None:
        found = ctx.store.find_browser_session(hash_secret(secret), now=now)
        if found is not None:
            return Browser(secret, found, set_cookie=False)
    if not create:
        return None
    secret = new_cookie_secret()
    ctx.store.create_browser_session(hash_secret(secret), now=now, ttl=BROWSER_SESSION_TTL)
    found = ctx.store.find_browser_session(hash_secret(secret), now=now)
    assert found is not None
    return Browser(secret, found, set_cookie=True)


def _sign_in(ctx: OAuthContext, browser: Browser, user: User, *, mfa: bool) -> Browser:
    """Record the sign-in on the browser session under a new cookie secret."""
    now = ctx.state.clock()
    secret = new_cookie_secret()
    ctx.store.sign_in(
        browser.session.id,
        new_secret_hash=hash_secret(secret),
        user_id=user.id,
        auth_time=now,
        mfa=mfa,
    )
    session = replace(browser.session, user_id=user.id, auth_time=now, mfa=mfa)
    return Browser(secret, session, set_cookie=True)


def page(
    template: str, browser: Browser, txn_id: str, redirect_uri: str | None, **context: Any
) -> web.Response:
    response = render(
        template,
        redirect_uri=redirect_uri,
        csrf_token=csrf_token(browser.secret),
        txn=txn_id,
        **context,
    )
    if browser.set_cookie:
        set_cookie(response, browser.secret)
    return response


def show(
    step: str,
    browser: Browser,
    txn: str,
    params: dict[str, str],
    user: User | None,
    *,
    sso: bool = False,
) -> web.Response:
    client = clients.find(params.get("client_id"))
    assert client is not None
    redirect_uri = params.get("redirect_uri")
    if step == LOGIN:
        return page(
            "as_login.html",
            browser,
            txn,
            redirect_uri,
            client_name=client.client_name,
            error=None,
            sso=sso,
        )
    assert user is not None
    if step == MFA:
        return page("as_mfa.html", browser, txn, redirect_uri, email=user.email, error=None)
    scope = client.get_allowed_scope(params.get("scope"))
    scopes = [(name, DESCRIPTIONS.get(name, name)) for name in scope.split()]
    return page(
        "as_device_consent.html" if DEVICE_PARAM in params else "as_consent.html",
        browser,
        txn,
        redirect_uri,
        client_name=client.client_name,
        email=user.email,
        scopes=scopes,
    )


def _refusal(error: OAuth2Error, issuer: str) -> web.Response:
    """An error response: to the client if its redirect URI was validated, else a page."""
    if error.redirect_uri:
        return authorization_redirect(Reply(*error()), issuer)
    message = error.get_error_description() or "The authorization request is invalid."
    return error_page(400, error.error or "invalid_request", message)


_MALFORMED = "The authorization request is malformed."


def precheck(request: KtRequest) -> None:
    """Refuse what authlib would describe by quoting the request's own values.

    authlib puts `redirect_uri` or `response_type` into error descriptions and raises ValueError
    when they hold characters RFC 6749 forbids there (`"`, `\\`, non-ASCII).
    """
    data = request.payload.data
    client = clients.find(data.get("client_id"))
    redirect_uri = data.get("redirect_uri")
    if client is None or redirect_uri is None:
        return  # authlib's own refusals (unknown client, missing redirect_uri) quote nothing
    if not client.accepts(redirect_uri, request.issuer):
        raise InvalidRequestError("The redirect_uri is not registered for this client.")
    if data.get("response_type") != "code":
        raise UnsupportedResponseTypeError(
            data.get("response_type"),
            "Only response_type=code is supported.",
            redirect_uri=redirect_uri,
            state=request.payload.state,
        )


def validate_max_age(raw: str | None, redirect_uri: str, state: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise InvalidRequestError(
            "max_age must be a non-negative integer.", redirect_uri=redirect_uri, state=state
        )
    return int(raw)


def _first_step(
    ctx: OAuthContext, request: KtRequest, redirect_uri: str, browser: Browser, user: User | None
) -> str:
    data = request.payload.data
    state = request.payload.state
    prompts = str(data.get("prompt") or "").split()
    if "none" in prompts:
        if len(prompts) > 1:
            raise InvalidRequestError(
                "prompt=none cannot be combined.", redirect_uri=redirect_uri, state=state
            )
        # Consent is always interactive here, so prompt=none can never succeed.
        error = LoginRequiredError if user is None else ConsentRequiredError
        raise error(redirect_uri=redirect_uri, state=state)
    max_age = validate_max_age(data.get("max_age"), redirect_uri, state)
    auth_time = browser.session.auth_time
    too_old = max_age is not None and (auth_time is None or ctx.state.clock() - auth_time > max_age)
    if user is None or "login" in prompts or too_old:
        return LOGIN
    if ACR_MFA in str(data.get("acr_values") or "").split() and user.totp_secret is not None:
        return MFA
    return CONSENT


def user_of(ctx: OAuthContext, user_id: str | None) -> User | None:
    return None if user_id is None else ctx.state.db.get_user(user_id)


async def authorize(request: web.Request) -> web.Response:
    ctx = oauth_of(request)
    issuer = issuer_of(request)
    try:
        # A request_uri's pushed parameters, and nothing beside them (RFC 9126 §4)
        pairs = pushed.resolve(request, ctx, list(request.query.items()))
    except pushed.Refused as refused:
        return refused.page
    try:
        oauth = oauth_request(request, pairs)
    except OAuth2Error as error:
        return _refusal(error, issuer)
    browser = browser_of(ctx, request, create=True)
    assert browser is not None
    user = user_of(ctx, browser.session.user_id)
    try:
        precheck(oauth)
        grant = ctx.server.get_consent_grant(oauth, end_user=user)
        resources.requested(oauth, redirect_uri=grant.redirect_uri, state=oauth.payload.state)
        step = _first_step(ctx, oauth, grant.redirect_uri, browser, user)
    except OAuth2Error as error:
        return _refusal(error, issuer)
    except ValueError:  # authlib refusing to build an error description; see precheck
        return error_page(400, "invalid_request", _MALFORMED)
    txn = ctx.store.create_transaction(
        browser_session_id=browser.session.id,
        params=pairs,
        step=step,
        user_id=None if step == LOGIN or user is None else user.id,
        expires_at=ctx.state.clock() + TRANSACTION_TTL,
    )
    return show(step, browser, txn, dict(pairs), user, sso=sso_enabled(ctx))


def sso_enabled(ctx: OAuthContext) -> bool:
    """Whether the sign-in page offers "Sign in with SSO" (sso.py)."""
    return ctx.state.settings.sso is not None


# --- form posts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    ctx: OAuthContext
    browser: Browser
    txn: Transaction
    form: dict[str, str]


async def posted_form(request: web.Request, step: str) -> Posted | web.Response:
    ctx = oauth_of(request)
    pairs = await form_pairs(request)
    if pairs is None:
        return error_page(400, "invalid_request", "Expected a form submission.")
    form = dict(pairs)
    browser = browser_of(ctx, request, create=False)
    if browser is None or not csrf_ok(browser.secret, form.get("csrf_token")):
        return error_page(
            400,
            "invalid_csrf_token",
            "The form's security token is missing or does not match this browser's session.",
        )
    txn = ctx.store.transaction(form.get("txn", ""))
    if (
        txn is None
        or txn.browser_session_id != browser.session.id
        or txn.finished_at is not None
        or ctx.state.clock() >= txn.expires_at
    ):
        return error_page(400, "expired", "This sign-in attempt is unknown, finished or expired.")
    if txn.step != step:
        return error_page(400, "invalid_request", "This form was already answered.")
    return Posted(ctx, browser, txn, form)


async def remote_callback(request: web.Request) -> web.Response:
    """The page a browser lands on when the CLI's loopback is out of its reach (issue 13 item
    1): the authorization response to paste back into the CLI, the whole address as a callback
    would carry it (code, state and iss), as the redirect's query was. Nothing is kept here:
    the code is checked, once, by the token endpoint, with the client's PKCE verifier."""
    query = request.query
    issuer = issuer_of(request)
    if len(query.getall("code", [])) != 1 or len(query.getall("state", [])) != 1:
        error = query.get("error")
        if error is not None:
            return error_page(400, "remote_" + error[:64], "The sign-in was not completed.")
        return error_page(400, "invalid_request", "This page shows a sign-in's answer to copy.")
    answer = (
        issuer
        + REMOTE_CALLBACK_PATH
        + "?"
        + urlencode({"code": query["code"], "state": query["state"], "iss": issuer})
    )
    return render("as_remote_callback.html", answer=answer)


def device_outcome(approved: bool) -> web.Response:
    """The device flow's last page: signed in, or denied."""
    return render("as_device_done.html", approved=approved)


def _deny(posted: Posted, issuer: str, description: str) -> web.Response:
    params = dict(posted.txn.params)
    now = posted.ctx.state.clock()
    posted.ctx.store.finish_transaction(posted.txn.id, now=now)
    device_id = params.get(DEVICE_PARAM)
    if device_id is not None:
        posted.ctx.store.decide_device_code(device_id, approved=False, now=now)
        return device_outcome(approved=False)
    error = AccessDeniedError(
        description=description, redirect_uri=params["redirect_uri"], state=params.get("state")
    )
    return authorization_redirect(Reply(*error()), issuer)


def _failed(posted: Posted, request: web.Request, template: str, message: str) -> web.Response:
    failures = posted.ctx.store.record_failure(posted.txn.id)
    if failures >= MAX_FAILURES:
        return _deny(posted, issuer_of(request), "Too many failed sign-in attempts.")
    left = MAX_FAILURES - failures
    return _again(posted, template, f"{message} {left} attempt(s) left.")


def _throttled(posted: Posted, template: str, refused: TooManyAttempts) -> web.Response:
    """The same page with the wait (signin_checks); the attempt was not checked or counted."""
    response = _again(posted, template, refused.message)
    response.set_status(429)
    response.headers["Retry-After"] = str(refused.retry_after)
    return response


def _again(posted: Posted, template: str, error: str) -> web.Response:
    user = user_of(posted.ctx, posted.txn.user_id)
    return page(
        template,
        posted.browser,
        posted.txn.id,
        dict(posted.txn.params).get("redirect_uri"),
        client_name=_client_name(posted.txn),
        email=user.email if user else "",
        error=error,
        sso=sso_enabled(posted.ctx),
    )


def _client_name(txn: Transaction) -> str:
    client = clients.find(dict(txn.params).get("client_id"))
    return client.client_name if client else ""


async def login(request: web.Request) -> web.Response:
    posted = await posted_form(request, LOGIN)
    if isinstance(posted, web.Response):
        return posted
    ctx = posted.ctx
    email = posted.form.get("email", "")[:320]
    password = posted.form.get("password", "")[:1024]
    try:
        user = await check_password(
            ctx.state, email=email, password=password, address=request.remote
        )
    except TooManyAttempts as refused:
        return _throttled(posted, "as_login.html", refused)
    if user is None:
        return _failed(posted, request, "as_login.html", "Wrong email or password.")
    params = dict(posted.txn.params)
    if user.totp_secret is not None:
        now = ctx.state.clock()
        ctx.store.advance_transaction(posted.txn.id, step=MFA, user_id=user.id, password_at=now)
        return show(MFA, posted.browser, posted.txn.id, params, user)
    browser = _sign_in(ctx, posted.browser, user, mfa=False)
    ctx.store.advance_transaction(posted.txn.id, step=CONSENT, user_id=user.id)
    return show(CONSENT, browser, posted.txn.id, params, user)


async def mfa(request: web.Request) -> web.Response:
    posted = await posted_form(request, MFA)
    if isinstance(posted, web.Response):
        return posted
    ctx = posted.ctx
    user = user_of(ctx, posted.txn.user_id)
    assert user is not None
    code = posted.form.get("code", "")[:32]
    try:
        checked = check_code(ctx.state, user, code, address=request.remote)
    except TooManyAttempts as refused:
        return _throttled(posted, "as_mfa.html", refused)
    if checked is not Code.ACCEPTED:
        return _failed(posted, request, "as_mfa.html", f"{checked.refusal}.")
    browser = posted.browser
    if posted.txn.password_at is not None:
        browser = _sign_in(ctx, browser, user, mfa=True)
    elif browser.session.user_id != user.id:
        return error_page(400, "invalid_request", "You signed in as someone else meanwhile.")
    ctx.store.advance_transaction(posted.txn.id, step=CONSENT, user_id=user.id)
    return show(CONSENT, browser, posted.txn.id, dict(posted.txn.params), user)


@dataclass(frozen=True)
class Consent:
    """A consent form's answer, and who gave it, signed in how."""

    posted: Posted
    approved: bool
    auth: AuthContext


async def consent_form(request: web.Request, *, device: bool) -> Consent | web.Response:
    """The posted consent form of a browser (`device=False`) or a device sign-in, or a refusal."""
    posted = await posted_form(request, CONSENT)
    if isinstance(posted, web.Response):
        return posted
    if (DEVICE_PARAM in dict(posted.txn.params)) != device:
        other = "another sign-in" if device else "a device sign-in"
        return error_page(400, "invalid_request", f"This form belongs to {other}.")
    decision = posted.form.get("decision")
    if decision not in ("approve", "deny"):
        return error_page(400, "invalid_request", "Choose Approve or Deny.")
    session = posted.browser.session
    user = user_of(posted.ctx, posted.txn.user_id)
    if user is None or session.user_id != user.id or session.auth_time is None:
        return error_page(400, "invalid_request", "You signed in as someone else meanwhile.")
    auth = AuthContext(user=user, auth_time=session.auth_time, mfa=session.mfa)
    return Consent(posted, decision == "approve", auth)


async def consent(request: web.Request) -> web.Response:
    answer = await consent_form(request, device=False)
    if isinstance(answer, web.Response):
        return answer
    ctx, txn, user = answer.posted.ctx, answer.posted.txn, answer.auth.user
    issuer = issuer_of(request)
    if not ctx.store.finish_transaction(txn.id, now=ctx.state.clock()):
        return error_page(400, "expired", "This sign-in attempt is already finished.")
    try:
        oauth = oauth_request(request, txn.params, method="GET")
        grant = ctx.server.get_consent_grant(oauth, end_user=user)
    except OAuth2Error as error:
        return _refusal(error, issuer)
    except ValueError:
        return error_page(400, "invalid_request", _MALFORMED)
    oauth.kt_auth = answer.auth
    reply = ctx.server.create_authorization_response(
        oauth, grant_user=user if answer.approved else None, grant=grant
    )
    if reply.status != 302:
        return error_page(400, "invalid_request", "The authorization request is invalid.")
    return authorization_redirect(reply, issuer)
