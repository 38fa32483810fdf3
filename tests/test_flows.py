"""The OAuth flows stepped by hand (no I/O): discovery, PKCE, the authorization request and
response checks, token responses. Case names follow SECURITY.md's requirement IDs."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from kt_login.errors import OAuthError, ServerError, UsageError, ValidationFailed
from kt_login.flows.authcode import begin, check_response, safe_browser_url
from kt_login.flows.discovery import discover, parse_metadata
from kt_login.flows.pkce import b64url, new_state, new_verifier, s256
from kt_login.flows.tokens import exchange_code, parse_token_response, refresh

ISSUER = "https://as.example"


def metadata(**overrides):
    doc = {
        "issuer": ISSUER,
        "authorization_endpoint": ISSUER + "/authorize",
        "token_endpoint": ISSUER + "/token",
        "jwks_uri": ISSUER + "/jwks",
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
    }
    doc.update(overrides)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def test_rfc7636_appendix_b_vector():
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    assert b64url(bytes([3, 236, 255, 224, 193])) == "A-z_4ME"


def test_az01_verifiers_and_az02_states():
    verifiers = {new_verifier() for _ in range(1000)}
    assert len(verifiers) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", v) for v in verifiers)
    states = {new_state() for _ in range(1000)}
    assert len(states) == 1000 and all(len(s) >= 22 for s in states)


@pytest.mark.parametrize(
    ("case", "doc", "error"),
    [
        ("id01-issuer-mismatch-trailing-slash", metadata(issuer=ISSUER + "/"), ValidationFailed),
        (
            "oidcc-discovery-issuer-mismatch",
            metadata(issuer="https://evil.example"),
            ValidationFailed,
        ),
        (
            "id02-http-token-endpoint",
            metadata(token_endpoint="http://as.example/token"),
            ValidationFailed,
        ),
        ("az01-plain-only", metadata(code_challenge_methods_supported=["plain"]), ValidationFailed),
        ("missing-authorization-endpoint", metadata(authorization_endpoint=None), ValidationFailed),
        ("not-json", b"<html>", ServerError),
        ("not-an-object", b"[]", ServerError),
    ],
)
def test_metadata_refused(case, doc, error):
    with pytest.raises(error):
        parse_metadata(doc, ISSUER)


def test_discovery_falls_back_to_rfc8414_location():
    flow = discover("https://as.example/tenant")
    first = next(flow)
    assert str(first.url) == "https://as.example/tenant/.well-known/openid-configuration"
    second = flow.send(httpx2.Response(404))
    assert str(second.url) == "https://as.example/.well-known/oauth-authorization-server/tenant"
    doc = json.loads(metadata())
    doc.update(issuer="https://as.example/tenant")
    with pytest.raises(StopIteration) as done:
        flow.send(httpx2.Response(200, json=doc))
    assert done.value.value.issuer == "https://as.example/tenant"


@pytest.mark.parametrize(
    "issuer",
    ["http://as.example", "https://user@as.example", "ftp://as.example", "https://as.example/?x=1"],
)
def test_unacceptable_issuers(issuer):
    with pytest.raises(UsageError):
        next(discover(issuer))


def meta(**overrides):
    return parse_metadata(metadata(**overrides), ISSUER)


def test_authorization_request_parameters():
    req = begin(meta(), client_id="kt-cli", redirect_uri="http://127.0.0.1:5000/callback")
    q = {k: v[0] for k, v in parse_qs(urlsplit(req.url).query).items()}
    assert q["response_type"] == "code"  # AZ-06
    assert q["code_challenge_method"] == "S256" and q["code_challenge"] == s256(req.verifier)
    assert q["state"] == req.state and q["nonce"] == req.nonce
    assert q["redirect_uri"] == "http://127.0.0.1:5000/callback"
    assert q["scope"] == "openid profile email offline_access"  # AZ-07: the documented set
    assert q["prompt"] == "consent"  # OIDC Core §11: offline_access needs consent


@pytest.mark.parametrize(
    "endpoint",
    [
        "--renderer-cmd-prefix=/tmp/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://as.example@evil.example/authorize",
        "https://evil.example/authorize",
        "http://as.example/authorize",
        "https://as.example.evil.net/authorize",
        "https://as.example/a b",
    ],
)
def test_az08_unsafe_authorization_urls_refused(endpoint):
    with pytest.raises(ValidationFailed):
        safe_browser_url(endpoint, ISSUER)


def test_az08_metadata_with_foreign_authorization_endpoint_never_builds_a_url():
    bad = parse_metadata(metadata(authorization_endpoint="https://evil.example/a"), ISSUER)
    with pytest.raises(ValidationFailed):
        begin(bad, client_id="kt-cli", redirect_uri="http://127.0.0.1:1/callback")


@dataclass(frozen=True)
class Result:  # the shape of callback_server.CallbackResult
    code: str | None
    state: str
    iss: str | None
    error: str | None = None
    error_description: str | None = None


@pytest.fixture
def request_():
    return begin(meta(), client_id="kt-cli", redirect_uri="http://127.0.0.1:5000/callback")


def test_good_response(request_):
    assert check_response(request_, Result("c1", request_.state, ISSUER), meta()) == "c1"


@pytest.mark.parametrize(
    ("case", "result"),
    [
        ("az02-wrong-state", lambda r: Result("c", "other", ISSUER)),
        ("az04-invalid-iss", lambda r: Result("c", r.state, "https://evil.example")),
        ("az04-iss-not-normalised", lambda r: Result("c", r.state, ISSUER + "/")),
        ("az04-remove-iss", lambda r: Result("c", r.state, None)),
        ("no-code", lambda r: Result(None, r.state, ISSUER)),
    ],
)
def test_bad_responses(request_, case, result):
    with pytest.raises(ValidationFailed):
        check_response(request_, result(request_), meta())


def test_missing_iss_accepted_when_not_promised(request_):
    no_flag = meta(authorization_response_iss_parameter_supported=None)
    assert check_response(request_, Result("c", request_.state, None), no_flag) == "c"


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        ("access_denied", 3),
        ("invalid_scope", 3),
        ("login_required", 3),
        ("consent_required", 3),
        ("temporarily_unavailable", 6),
        ("server_error", 6),
        ("\x1b[2Jweird<script>", 3),
    ],
)
def test_eh02_error_responses(request_, error, exit_code):
    with pytest.raises(OAuthError) as info:
        check_response(request_, Result(None, request_.state, ISSUER, error=error), meta())
    assert info.value.exit_code == exit_code
    assert "\x1b" not in info.value.message and "<" not in info.value.message


def test_error_with_wrong_state_is_not_trusted(request_):
    with pytest.raises(ValidationFailed):
        check_response(request_, Result(None, "x", ISSUER, error="access_denied"), meta())


def test_az05_token_request_repeats_redirect_uri_and_sends_verifier():
    flow = exchange_code(
        ISSUER + "/token",
        client_id="kt-cli",
        code="c1",
        redirect_uri="http://127.0.0.1:5000/callback",
        verifier="v" * 43,
    )
    sent = next(flow)
    form = parse_qs(sent.content.decode())
    assert form["redirect_uri"] == ["http://127.0.0.1:5000/callback"]
    assert form["code_verifier"] == ["v" * 43] and form["grant_type"] == ["authorization_code"]
    assert "grant_type=password" not in sent.content.decode()  # AZ-06


def test_a_confidential_client_authenticates_with_client_secret_basic():
    flow = exchange_code(
        ISSUER + "/token",
        client_id="dev server",
        code="c1",
        redirect_uri="http://127.0.0.1:5000/callback",
        verifier="v" * 43,
        client_secret="s3cr:t",
    )
    sent = next(flow)
    assert "client_id" not in parse_qs(sent.content.decode())
    # RFC 6749 §2.3.1: each part form-urlencoded before base64
    assert (
        sent.headers["Authorization"]
        == "Basic " + base64.b64encode(b"dev%20server:s3cr%3At").decode()
    )
    assert sent.headers["Accept"] == "application/json"


def test_begin_passes_a_login_hint():
    req = begin(
        meta(),
        client_id="kt-cli",
        redirect_uri="http://127.0.0.1:5000/callback",
        login_hint="a@b.c",
    )
    assert parse_qs(urlsplit(req.url).query)["login_hint"] == ["a@b.c"]


def test_id08_token_type_case_insensitivity_and_missing_expires_in():
    tokens = parse_token_response(
        httpx2.Response(200, json={"access_token": "a", "token_type": "bEARER"})
    )
    assert tokens.access_token == "a" and tokens.expires_in is None


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx2.Response(400, json={"error": "invalid_grant"}), OAuthError),
        (httpx2.Response(502, content=b"<h1>secret-body</h1>"), ServerError),
        (httpx2.Response(200, json={"access_token": "a", "token_type": "DPoP"}), ServerError),
        (httpx2.Response(200, json={"token_type": "Bearer"}), ServerError),
        (httpx2.Response(200, content=b"{"), ServerError),
    ],
)
def test_eh03_token_errors(response, error):
    with pytest.raises(error) as info:
        parse_token_response(response)
    assert "secret-body" not in str(info.value)


def test_refresh_request():
    sent = next(refresh(ISSUER + "/token", client_id="kt-cli", refresh_token="r1"))
    assert parse_qs(sent.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["r1"],
        "client_id": ["kt-cli"],
    }


def run_userinfo(response: httpx2.Response):
    from kt_login.flows.userinfo import get_userinfo

    flow = get_userinfo("https://as.example/userinfo", access_token="at-1", subject="usr_1")
    request = next(flow)
    assert request.method == "GET" and request.headers["Authorization"] == "Bearer at-1"
    with pytest.raises(StopIteration) as done:
        flow.send(response)
    return done.value.value


def test_userinfo_flow_returns_the_claims_of_the_same_subject():
    info = run_userinfo(httpx2.Response(200, json={"sub": "usr_1", "email": "a@example.com"}))
    assert info == {"sub": "usr_1", "email": "a@example.com"}


def test_id07_userinfo_for_another_subject_is_refused():
    with pytest.raises(ValidationFailed, match="another user"):
        run_userinfo(httpx2.Response(200, json={"sub": "usr_2"}))


@pytest.mark.parametrize("status", [401, 404, 500])
def test_userinfo_is_optional_when_not_200(status):
    assert run_userinfo(httpx2.Response(status, json={"sub": "usr_2"})) is None


@pytest.mark.parametrize("body", [b"<html>", b"eyJhbGciOi.x.y", b"[1]", b"x" * (2 << 20)])
def test_userinfo_that_is_not_a_json_object_is_a_server_error(body):
    with pytest.raises(ServerError):
        run_userinfo(httpx2.Response(200, content=body))
