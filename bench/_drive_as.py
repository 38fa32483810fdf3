"""Acting as the browser at kt-devserver's authorization endpoint, without a browser.

`authorize(client, url)` follows the HTML pages of one authorization request (sign-in, then
consent) with an httpx2.Client that keeps cookies and does not follow redirects, and returns the
final redirect's `Location` (the client's loopback callback URL). `pkce_request(issuer, ...)`
builds an authorization request with a fresh PKCE verifier, for exchanging a code ourselves.

Pages are read with the stdlib's html.parser, by the stable selectors listed at the top of
kt_devserver/oauth/pages.py (`#login-form`, `#consent-form`, hidden `csrf_token`/`txn`,
`p.error[data-error]`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2

SCOPE = "openid profile email offline_access"  # what `kt auth login --browser` asks for
CLIENT_ID = "kt-cli"
MAX_PAGES = 5


class SignInFailed(RuntimeError):
    pass


@dataclass
class Form:
    id: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden inputs
    buttons: list[tuple[str, str]] = field(default_factory=list)  # named submit buttons


class _Page(HTMLParser):
    """The page's forms, and the error code of an error page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: dict[str, Form] = {}
        self.error: str | None = None
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(id=a.get("id", ""), action=a.get("action", ""))
            self.forms[self._form.id] = self._form
        elif tag == "input" and self._form is not None and a.get("type") == "hidden":
            self._form.fields[a.get("name", "")] = a.get("value", "")
        elif tag == "button" and self._form is not None and "name" in a:
            self._form.buttons.append((a["name"], a.get("value", "")))
        elif tag == "p" and "data-error" in a:
            self.error = a["data-error"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def _page(response: httpx2.Response) -> _Page:
    page = _Page()
    page.feed(response.text)
    page.close()
    return page


def _submit(
    client: httpx2.Client, response: httpx2.Response, form: Form, data: dict[str, str]
) -> httpx2.Response:
    for hidden in ("csrf_token", "txn"):
        if not form.fields.get(hidden):
            raise SignInFailed(f"form #{form.id} has no {hidden}")
    return client.post(response.url.join(form.action), data={**form.fields, **data})


def authorize(client: httpx2.Client, url: str, *, email: str, password: str) -> str:
    """Sign in (if the page asks) and approve; the redirect's Location, checked to carry a code."""
    response = client.get(url)
    for _ in range(MAX_PAGES):
        if response.is_redirect:
            location = response.headers["location"]
            query = parse_qs(urlsplit(location).query)
            if "code" not in query:
                raise SignInFailed(f"redirected without a code: {location}")
            return location
        page = _page(response)
        if response.status_code != 200 or page.error is not None:
            raise SignInFailed(f"HTTP {response.status_code}, error page {page.error!r}")
        if "login-form" in page.forms:
            form = page.forms["login-form"]
            response = _submit(client, response, form, {"email": email, "password": password})
        elif "consent-form" in page.forms:
            form = page.forms["consent-form"]
            if ("decision", "approve") not in form.buttons:
                raise SignInFailed("the consent form has no Approve button")
            response = _submit(client, response, form, {"decision": "approve"})
        else:
            raise SignInFailed(f"unexpected page (forms: {sorted(page.forms)})")
    raise SignInFailed(f"still no redirect after {MAX_PAGES} pages")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PkceRequest:
    url: str
    redirect_uri: str
    state: str
    verifier: str


def pkce_request(issuer: str, redirect_uri: str) -> PkceRequest:
    """An authorization request shaped like kt's (same scope, prompt=consent, nonce, S256)."""
    verifier = _b64url(secrets.token_bytes(32))  # 43 characters, RFC 7636 §4.1
    state = _b64url(secrets.token_bytes(16))
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "state": state,
        "nonce": _b64url(secrets.token_bytes(16)),
        "code_challenge": _b64url(hashlib.sha256(verifier.encode("ascii")).digest()),
        "code_challenge_method": "S256",
        "prompt": "consent",
    }
    url = f"{issuer}/oauth/authorize?{urlencode(params)}"
    return PkceRequest(url=url, redirect_uri=redirect_uri, state=state, verifier=verifier)


def code_from(location: str, request: PkceRequest) -> str:
    query = parse_qs(urlsplit(location).query)
    if query.get("state") != [request.state]:
        raise SignInFailed("the redirect's state does not match the request's")
    return query["code"][0]
