"""kt's side of pushed authorization requests (RFC 9126, issue 14 item 4), as the flow
`flows.authcode.authorize` run by `drive` over httpx2.MockTransport: what is pushed, the short
URL opened, `require_pushed_authorization_requests`, and the PAR endpoint's hostile or failed
replies, each a one-line error with its exit code."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx2
import pytest

from kt_login.errors import (
    EXIT_NOT_LOGGED_IN,
    EXIT_SERVER,
    KtError,
    OAuthError,
    ServerError,
    ValidationFailed,
)
from kt_login.flows import drive
from kt_login.flows.authcode import authorize, begin, needs_renewal
from kt_login.flows.discovery import parse_metadata
from kt_login.flows.pkce import s256

ISSUER = "https://as.example"
PAR = ISSUER + "/par"
REDIRECT = "http://127.0.0.1:5000/callback"
REQUEST_URI = "urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c"


def meta(**overrides: Any):
    doc = {
        "issuer": ISSUER,
        "authorization_endpoint": ISSUER + "/authorize?tenant=a",
        "token_endpoint": ISSUER + "/token",
        "code_challenge_methods_supported": ["S256"],
        "pushed_authorization_request_endpoint": PAR,
        **overrides,
    }
    return parse_metadata(
        json.dumps({k: v for k, v in doc.items() if v is not None}).encode(), ISSUER
    )


class Endpoint:
    """The PAR endpoint: `reply` to every push, the pushes recorded."""

    def __init__(self, status: int = 201, body: Any = None, raw: bytes | None = None) -> None:
        self.status = status
        self.body = {"request_uri": REQUEST_URI, "expires_in": 60} if body is None else body
        self.raw = raw
        self.pushed: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.pushed.append(request)
        if self.raw is not None:
            return httpx2.Response(self.status, content=self.raw)
        return httpx2.Response(self.status, json=self.body)

    def form(self) -> dict[str, str]:
        (request,) = self.pushed
        return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


def run(endpoint: Endpoint, metadata=None, **kwargs: Any):
    with httpx2.Client(transport=httpx2.MockTransport(endpoint)) as http:
        return drive(
            authorize(metadata or meta(), client_id="kt-cli", redirect_uri=REDIRECT, **kwargs),
            http,
        )


def test_the_whole_request_is_pushed_and_a_short_url_opened():
    endpoint = Endpoint()
    req = run(endpoint, max_age=0, acr_values="urn:keeptrusts:acr:mfa", login_hint="a@b.example")
    (pushed,) = endpoint.pushed
    assert pushed.method == "POST" and str(pushed.url) == PAR
    assert pushed.headers["content-type"] == "application/x-www-form-urlencoded"
    assert endpoint.form() == {
        "response_type": "code",
        "client_id": "kt-cli",
        "redirect_uri": REDIRECT,
        "scope": "openid profile email offline_access",
        "state": req.state,
        "nonce": req.nonce,
        "code_challenge": s256(req.verifier),
        "code_challenge_method": "S256",
        "prompt": "consent",
        "max_age": "0",
        "acr_values": "urn:keeptrusts:acr:mfa",
        "login_hint": "a@b.example",
    }
    # RFC 9126 §4: the URL names only client_id and request_uri (after the endpoint's own query)
    parts = urlsplit(req.url)
    assert parts.netloc == "as.example" and parts.path == "/authorize"
    assert parse_qsl(parts.query) == [
        ("tenant", "a"),
        ("client_id", "kt-cli"),
        ("request_uri", REQUEST_URI),
    ]
    assert REQUEST_URI in req.url  # its colons kept: readable, and short enough to type
    full = begin(meta(), client_id="kt-cli", redirect_uri=REDIRECT, max_age=0).url
    assert len(req.url) <= 130 < 2 * 130 < len(full)
    assert req.pushed and req.pushed_for == 60.0
    assert (req.redirect_uri, req.scope, req.max_age) == (
        REDIRECT,
        "openid profile email offline_access",
        0,
    )


def test_without_a_par_endpoint_nothing_is_sent():
    endpoint = Endpoint()
    req = run(endpoint, meta(pushed_authorization_request_endpoint=None))
    assert endpoint.pushed == []
    query = parse_qs(urlsplit(req.url).query)
    assert query["state"] == [req.state] and "request_uri" not in query
    assert not req.pushed


def test_required_pushed_requests_without_an_endpoint_are_refused_before_anything_opens():
    endpoint = Endpoint()
    doc = meta(
        pushed_authorization_request_endpoint=None, require_pushed_authorization_requests=True
    )
    with pytest.raises(ValidationFailed) as caught:
        run(endpoint, doc)
    assert endpoint.pushed == []
    assert "accepts only pushed authorization requests" in caught.value.message
    assert "pushed_authorization_request_endpoint" in caught.value.message
    required = meta(require_pushed_authorization_requests=True)
    assert run(Endpoint(), required).pushed  # with an endpoint, it is simply used


@pytest.mark.parametrize(
    "url",
    ["http://as.example/par", "file:///etc/passwd", "https://as.example/par#frag", "javascript:x"],
)
def test_an_unsafe_par_endpoint_in_the_metadata_is_refused(url):
    with pytest.raises(ValidationFailed):
        meta(pushed_authorization_request_endpoint=url)


@pytest.mark.parametrize(
    ("status", "body", "code", "exit_code"),
    [
        (
            400,
            {"error": "invalid_request", "error_description": "bad redirect_uri"},
            "oauth.invalid_request",
            EXIT_NOT_LOGGED_IN,
        ),
        (401, {"error": "invalid_client"}, "oauth.invalid_client", EXIT_NOT_LOGGED_IN),
        (400, {"error": "invalid_scope"}, "oauth.invalid_scope", EXIT_NOT_LOGGED_IN),
        (503, {"error": "temporarily_unavailable"}, "oauth.temporarily_unavailable", EXIT_SERVER),
    ],
)
def test_endpoint_errors_are_oauth_errors_in_one_line(status, body, code, exit_code):
    with pytest.raises(OAuthError) as caught:
        run(Endpoint(status, body))
    error = caught.value
    assert (error.code, error.exit_code) == (code, exit_code)
    assert "refused the sign-in request" in error.message and "\n" not in error.message
    assert error.hint == "run: kt auth login --browser"


def test_an_error_description_is_made_inert():
    body = {"error": "invalid_request", "error_description": "\x1b[31mred\u202e <b>x</b>\n"}
    with pytest.raises(OAuthError) as caught:
        run(Endpoint(400, body))
    assert "\x1b" not in caught.value.message and "\u202e" not in caught.value.message
    assert "<b>" not in caught.value.message


@pytest.mark.parametrize(
    ("endpoint", "said"),
    [
        (Endpoint(500, raw=b"<html>oops</html>"), "failed (HTTP 500)"),
        (Endpoint(200), "failed (HTTP 200)"),  # RFC 9126 §2.2 answers 201 Created
        (Endpoint(201, raw=b"not json"), "not a JSON object"),
        (Endpoint(201, body=[REQUEST_URI]), "not a JSON object"),
        (Endpoint(201, body={"expires_in": 60}), "no valid request_uri"),
        (Endpoint(201, body={"request_uri": "", "expires_in": 60}), "no valid request_uri"),
        (Endpoint(201, body={"request_uri": 7}), "no valid request_uri"),
        (Endpoint(201, body={"request_uri": "urn:x\x1b[2J"}), "no valid request_uri"),
        (Endpoint(201, body={"request_uri": "urn:" + "x" * 600}), "no valid request_uri"),
        (Endpoint(201, body={"request_uri": REQUEST_URI, "expires_in": 1e12}), "out of range"),
        (Endpoint(201, raw=b"{" * 100_000), "not a JSON object"),
        (Endpoint(201, raw=b" " * (2 * 1024 * 1024)), "too large"),
    ],
)
def test_malformed_replies_are_server_errors(endpoint, said):
    with pytest.raises(ServerError) as caught:
        run(endpoint)
    assert said in caught.value.message and caught.value.exit_code == EXIT_SERVER


def test_an_unstated_lifetime_is_unknown_not_an_error():
    req = run(Endpoint(201, {"request_uri": REQUEST_URI}))
    assert req.pushed and req.pushed_for is None


def test_no_answer_is_a_network_error_naming_the_provider():
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("Connection refused", request=request)

    with httpx2.Client(transport=httpx2.MockTransport(refuse)) as http:
        with pytest.raises(KtError) as caught:
            drive(authorize(meta(), client_id="kt-cli", redirect_uri=REDIRECT), http)
    assert (
        caught.value.message
        == "cannot reach the identity provider at https://as.example (connection refused)"
    )


@pytest.mark.parametrize(
    ("pushed_for", "age", "renew"),
    [
        (60.0, 0.0, False),
        (60.0, 49.9, False),
        (60.0, 50.0, True),  # within ten seconds of expiring: pushed again before it is opened
        (60.0, 3600.0, True),
        (2.0, 1.4, False),
        (2.0, 1.5, True),  # a short lifetime keeps three quarters of it
        (None, 3600.0, False),  # no lifetime said: kept as it is
    ],
)
def test_a_pushed_request_is_renewed_before_it_expires(pushed_for, age, renew):
    body = {"request_uri": REQUEST_URI} | ({} if pushed_for is None else {"expires_in": pushed_for})
    req = run(Endpoint(201, body))
    assert needs_renewal(req, age) is renew
    plain = run(Endpoint(), meta(pushed_authorization_request_endpoint=None))
    assert needs_renewal(plain, 1e9) is False
