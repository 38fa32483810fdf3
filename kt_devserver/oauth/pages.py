"""The authorization server's HTML pages, its browser sign-in cookie, and CSRF tokens.

Pages are Jinja2 templates (autoescaped) in `kt_devserver/templates/as_*.html`: plain HTML forms
with no script and no third-party resources. Stable selectors for browser tests (keep them):

- sign-in page (`as_login.html`, form `#login-form`): `input[name=email]`,
  `input[name=password]`, `button[type=submit]`; a wrong password shows `.error`.
- MFA page (`as_mfa.html`, form `#mfa-form`): `input[name=code]`, `button[type=submit]`.
- consent page (`as_consent.html`, form `#consent-form`): `button[name=decision][value=approve]`,
  `button[name=decision][value=deny]`; scopes are listed as `li[data-scope=NAME]`.
- error page (`as_error.html`): `h1`, `p.error[data-error=CODE]`.
- every form carries hidden `input[name=csrf_token]` (bound to the sign-in cookie) and
  `input[name=txn]` (the pending authorization request).
- the device flow's pages (`as_device_*.html`): see device_pages.py.

The sign-in cookie `kt_as_session` holds a random secret (only its hash is stored server-side);
it is HttpOnly, SameSite=Lax and scoped to `Path=/oauth`, so the loopback redirect target (any
port on the same host, path `/callback`) does not receive it. The CSRF token is an HMAC of the
cookie secret, so it changes whenever the session is rotated at sign-in.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from typing import Any

import jinja2
from aiohttp import web

from callback_server import PAGE_STYLE

COOKIE_NAME = "kt_as_session"
COOKIE_PATH = "/oauth"

_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {targets}"
# Chromium follows a form's redirect only to a target form-action allows. CSP host-sources cannot
# name an IPv6 literal (Chromium ignores `http://[::1]:*` as invalid and then blocks the redirect),
# so a request whose redirect URI is on [::1] gets the scheme-source `http:` instead.
IPV4_LOOPBACK_TARGETS = "http://127.0.0.1:*"
IPV6_LOOPBACK_TARGETS = "http:"
LOCALHOST_TARGETS = "http://localhost:*"

PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("kt_devserver", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    # The look kt's loopback pages share (as_base.html): one style sheet for both.
    env.globals["page_style"] = PAGE_STYLE
    return env


def content_security_policy(redirect_uri: str | None) -> str:
    targets = IPV4_LOOPBACK_TARGETS
    if redirect_uri is not None and redirect_uri.startswith("http://[::1]"):
        targets = IPV6_LOOPBACK_TARGETS
    elif redirect_uri is not None and redirect_uri.startswith("http://localhost:"):
        targets = LOCALHOST_TARGETS  # the client that registered localhost (oauth/clients.py)
    return _CSP.format(targets=targets)


def render(
    template: str, *, status: int = 200, redirect_uri: str | None = None, **context: Any
) -> web.Response:
    """A page; `redirect_uri` is where its form may end up redirecting (for the CSP)."""
    body = _environment().get_template(template).render(**context)
    headers = {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(redirect_uri)}
    return web.Response(status=status, body=body.encode("utf-8"), headers=headers)


def error_page(status: int, error: str, message: str) -> web.Response:
    return render("as_error.html", status=status, error=error, message=message)


def new_cookie_secret() -> str:
    return secrets.token_urlsafe(32)


def cookie_secret(request: web.Request) -> str | None:
    value = request.cookies.get(COOKIE_NAME)
    return value if value else None


def set_cookie(response: web.Response, secret: str) -> None:
    response.set_cookie(
        COOKIE_NAME, secret, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=False
    )


def csrf_token(secret: str) -> str:
    return hmac.new(
        secret.encode("utf-8", "replace"), b"kt-devserver csrf v1", hashlib.sha256
    ).hexdigest()


def csrf_ok(secret: str | None, submitted: str | None) -> bool:
    if secret is None or not submitted:
        return False
    return hmac.compare_digest(csrf_token(secret), submitted)
