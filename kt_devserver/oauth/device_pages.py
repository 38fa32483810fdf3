"""The device flow's verification pages (RFC 8628 §3.3): enter or confirm the user code, sign in,
approve or deny. The token side (device authorization endpoint, polling) is in server.py.

    GET  /device[?user_code=…]          verification_uri(_complete): 302 to /oauth/device[?…]
    GET  /oauth/device                  code entry page
    GET  /oauth/device?user_code=…      confirm page for that code (or the entry page + error)
    POST /oauth/device                  the entry form (user_code, csrf_token)
    POST /oauth/device/confirm          the confirm form (decision=continue|deny, csrf_token, txn)
    POST /oauth/device/consent          the consent form (decision=approve|deny, csrf_token, txn)

The pages live under `/oauth` because the sign-in cookie is scoped to `Path=/oauth`; `/device` is
the short address people type. After Continue, the sign-in and MFA pages are the authorization
endpoint's own (`/oauth/authorize/login`, `/oauth/authorize/mfa`, same cookie, same CSRF token),
skipped when the browser is already signed in; then the device consent page, then a final page.

Stable selectors for browser tests (keep them):

- code entry (`as_device_code.html`, form `#device-code-form`): `input[name=user_code]`,
  `button[type=submit]`; a wrong, expired or used code shows `.error` ("not valid or expired").
- confirm (`as_device_confirm.html`, form `#device-confirm-form`): the warning
  `#phishing-warning` ("Only continue if you started this sign-in yourself"), `#client-name`,
  `#user-code`, scopes as `li[data-scope=NAME]`; `button[name=decision][value=continue]` and
  `button[name=decision][value=deny]`.
- sign-in and MFA: the authorization endpoint's pages (`input[name=email]`,
  `input[name=password]`, `button[type=submit]`; `input[name=code]`).
- consent (`as_device_consent.html`, form `#device-consent-form`):
  `button[name=decision][value=approve]`, `button[name=decision][value=deny]`, `#client-name`,
  `li[data-scope=NAME]`.
- final page (`as_device_done.html`): `#device-result[data-result=approved]` with the text
  "You can return to your device", or `#device-result[data-result=denied]` with "Sign-in denied",
  or (403) `#device-result[data-result=refused]` with "does not allow device sign-in" when the
  user's organization turned device sign-in off (`kt-devserver org NAME --no-device-flow`): the
  device's poll then answers `unauthorized_client` with the same reason.

Wrong codes are rate-limited (RFC 8628 §5.1): 5 per browser session and 100 for the whole server
in any 10 minutes; past that, entry answers 429 (with Retry-After) without looking the code up.
The answer to a wrong code never says whether it exists: "not valid or expired".
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from kt_devserver.oauth import clients
from kt_devserver.oauth.authorize import (
    CONSENT,
    DEVICE_PARAM,
    LOGIN,
    TRANSACTION_TTL,
    Browser,
    Posted,
    browser_of,
    consent_form,
    device_outcome,
    page,
    posted_form,
    show,
    sso_enabled,
    user_of,
)
from kt_devserver.oauth.device_codes import (
    MAX_USER_CODE_INPUT,
    VERIFICATION_PATH,
    display_user_code,
    normalise_user_code,
    user_code_hash,
)
from kt_devserver.oauth.http import OAuthContext, form_pairs, oauth_of
from kt_devserver.oauth.pages import csrf_ok, csrf_token, error_page, render, set_cookie
from kt_devserver.oauth.scopes import DESCRIPTIONS
from kt_devserver.oauth.storage import DEVICE_PENDING, DeviceCode

ENTRY_PATH = "/oauth/device"
CONFIRM_PATH = ENTRY_PATH + "/confirm"
CONSENT_PATH = ENTRY_PATH + "/consent"

CONFIRM = "device_confirm"

MAX_WRONG_CODES_PER_SESSION = 5
MAX_WRONG_CODES_OVERALL = 100
WRONG_CODE_WINDOW = 600

NOT_VALID = "That code is not valid or expired. Check the code shown on your device."
TOO_MANY = "Too many wrong codes. Wait a few minutes before trying again."


@dataclass
class EntryLimiter:
    """Wrong user codes in the last `window` seconds, per browser session and overall."""

    per_session: int = MAX_WRONG_CODES_PER_SESSION
    overall: int = MAX_WRONG_CODES_OVERALL
    window: float = WRONG_CODE_WINDOW
    _by_session: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        for session_id in list(self._by_session):
            times = self._by_session[session_id]
            while times and times[0] <= horizon:
                times.popleft()
            if not times:
                del self._by_session[session_id]

    def retry_after(self, session_id: str, now: float) -> int | None:
        """Seconds until this session may try a code again, or None if it may now."""
        self._prune(now)
        waits = []
        times = self._by_session.get(session_id)
        if times is not None and len(times) >= self.per_session:
            waits.append(times[-self.per_session] + self.window - now)
        if len(self._all) >= self.overall:
            waits.append(self._all[-self.overall] + self.window - now)
        return max(1, math.ceil(max(waits))) if waits else None

    def record_wrong_code(self, session_id: str, now: float) -> None:
        self._by_session.setdefault(session_id, deque()).append(now)
        self._all.append(now)


DEVICE_ENTRY_LIMITER = web.AppKey("kt_devserver.device_entry_limiter", EntryLimiter)


async def verification_uri(request: web.Request) -> web.Response:
    """`GET /device`: the short address, forwarded to the pages under the cookie's path."""
    location = ENTRY_PATH
    user_code = request.query.get("user_code")
    if user_code:
        location += "?" + urlencode({"user_code": user_code[:MAX_USER_CODE_INPUT]})
    return web.Response(
        status=302, headers={"Location": location, "Referrer-Policy": "no-referrer"}
    )


def _entry_page(
    browser: Browser, *, status: int = 200, error: str | None = None, retry_after: int | None = None
) -> web.Response:
    response = render(
        "as_device_code.html", status=status, csrf_token=csrf_token(browser.secret), error=error
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if browser.set_cookie:
        set_cookie(response, browser.secret)
    return response


def _confirm_page(
    ctx: OAuthContext, browser: Browser, device: DeviceCode, normalised: str
) -> web.Response:
    now = ctx.state.clock()
    params = [(DEVICE_PARAM, device.id), ("client_id", device.client_id), ("scope", device.scope)]
    txn = ctx.store.create_transaction(
        browser_session_id=browser.session.id,
        params=params,
        step=CONFIRM,
        user_id=None,
        expires_at=min(now + TRANSACTION_TTL, device.expires_at),
    )
    client = clients.find(device.client_id)
    return page(
        "as_device_confirm.html",
        browser,
        txn,
        None,
        client_name=client.client_name if client else device.client_id,
        scopes=[(name, DESCRIPTIONS.get(name, name)) for name in device.scope.split()],
        user_code=display_user_code(normalised),
        started=_started(device.created_at, now),
    )


def _started(created_at: float, now: float) -> str:
    """When the device asked, so that a person can tell an old or foreign code (issue 13 item 4)."""
    at = datetime.fromtimestamp(created_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    minutes = max(0, int(now - created_at) // 60)
    ago = "less than a minute ago" if minutes == 0 else f"{minutes} minute(s) ago"
    return f"{at}, {ago}"


def _look_up(request: web.Request, browser: Browser, raw: str | None) -> web.Response:
    ctx = oauth_of(request)
    limiter = request.app[DEVICE_ENTRY_LIMITER]
    now = ctx.state.clock()
    wait = limiter.retry_after(browser.session.id, now)
    if wait is not None:
        return _entry_page(browser, status=429, error=TOO_MANY, retry_after=wait)
    normalised = normalise_user_code(raw)
    device = (
        None
        if normalised is None
        else ctx.store.pending_device_code(user_code_hash(normalised), now=now)
    )
    if normalised is None or device is None:
        limiter.record_wrong_code(browser.session.id, now)
        return _entry_page(browser, status=400, error=NOT_VALID)
    return _confirm_page(ctx, browser, device, normalised)


async def entry(request: web.Request) -> web.Response:
    """`GET /oauth/device`: the code entry page, or with `user_code` its confirm page."""
    browser = browser_of(oauth_of(request), request, create=True)
    assert browser is not None
    if "user_code" not in request.query:
        return _entry_page(browser)
    return _look_up(request, browser, request.query.get("user_code"))


_BAD_CSRF = "The form's security token is missing or does not match this browser's session."


async def entry_form(request: web.Request) -> web.Response:
    """`POST /oauth/device`: a typed user code."""
    pairs = await form_pairs(request)
    if pairs is None:
        return error_page(400, "invalid_request", "Expected a form submission.")
    form = dict(pairs)
    browser = browser_of(oauth_of(request), request, create=False)
    if browser is None or not csrf_ok(browser.secret, form.get("csrf_token")):
        return error_page(400, "invalid_csrf_token", _BAD_CSRF)
    return _look_up(request, browser, form.get("user_code"))


def _pending_device(posted: Posted) -> DeviceCode | None:
    device_id = dict(posted.txn.params).get(DEVICE_PARAM)
    device = None if device_id is None else posted.ctx.store.device_code(device_id)
    if device is None or device.status != DEVICE_PENDING:
        return None
    return device if posted.ctx.state.clock() < device.expires_at else None


_GONE = "This code is not valid or expired. Start the sign-in again on your device."


async def confirm(request: web.Request) -> web.Response:
    """`POST /oauth/device/confirm`: Continue (to sign-in or consent) or Deny."""
    posted = await posted_form(request, CONFIRM)
    if isinstance(posted, web.Response):
        return posted
    ctx = posted.ctx
    decision = posted.form.get("decision")
    if decision not in ("continue", "deny"):
        return error_page(400, "invalid_request", "Choose Continue or Deny.")
    device = _pending_device(posted)
    if device is None:
        ctx.store.finish_transaction(posted.txn.id, now=ctx.state.clock())
        return error_page(400, "expired", _GONE)
    if decision == "deny":
        now = ctx.state.clock()
        ctx.store.finish_transaction(posted.txn.id, now=now)
        ctx.store.decide_device_code(device.id, approved=False, now=now)
        return device_outcome(approved=False)
    user = user_of(ctx, posted.browser.session.user_id)
    step = LOGIN if user is None else CONSENT
    user_id = None if user is None else user.id
    ctx.store.advance_transaction(posted.txn.id, step=step, user_id=user_id)
    return show(
        step, posted.browser, posted.txn.id, dict(posted.txn.params), user, sso=sso_enabled(ctx)
    )


async def consent(request: web.Request) -> web.Response:
    """`POST /oauth/device/consent`: Approve or Deny; the device's next poll sees the answer."""
    answer = await consent_form(request, device=True)
    if isinstance(answer, web.Response):
        return answer
    posted, approved, auth = answer.posted, answer.approved, answer.auth
    ctx = posted.ctx
    now = ctx.state.clock()
    device = _pending_device(posted)
    if not ctx.store.finish_transaction(posted.txn.id, now=now):
        return error_page(400, "expired", "This sign-in attempt is already finished.")
    org = ctx.state.db.get_organization(auth.user.org_id)
    refused = approved and not org.device_flow
    decided = device is not None and ctx.store.decide_device_code(
        device.id,
        approved=approved and not refused,
        now=now,
        user_id=auth.user.id if approved else None,
        auth_time=auth.auth_time if approved and not refused else None,
        mfa=auth.mfa if approved and not refused else False,
        refused=refused,
    )
    if not decided:
        return error_page(400, "expired", _GONE)
    if refused:
        # The organization turned device sign-in off (issue 13 item 4): the device's next poll
        # answers unauthorized_client saying so, and kt then offers paste-back.
        return render("as_device_done.html", status=403, approved=False, refused_by=org.name)
    return device_outcome(approved=approved)


def register(app: web.Application) -> None:
    app[DEVICE_ENTRY_LIMITER] = EntryLimiter()
    app.router.add_get(VERIFICATION_PATH, verification_uri)
    app.router.add_get(ENTRY_PATH, entry)
    app.router.add_post(ENTRY_PATH, entry_form)
    app.router.add_post(CONFIRM_PATH, confirm)
    app.router.add_post(CONSENT_PATH, consent)
