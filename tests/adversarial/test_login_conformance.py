"""The real `kt auth login --browser` against a hostile provider, one case per parameter.

Case ids name the SECURITY.md requirement they prove and, where there is one, the OpenID
conformance-suite test of SECURITY.md §2 they re-implement. Every refused case checks: the exit
code, a clear one-line message (no traceback), whether the token endpoint was called (never when
the response must be refused before it, never twice), whether the browser opener was called at
all, and that the config dir — seeded with an earlier good session for the same profile — is
byte-for-byte (and mode-for-mode) what it was before (EH-04).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .conftest import Box
from .hostile_as import (
    CLIENT_ID,
    DELETE,
    EC_E1,
    RSA_K1,
    RSA_K2,
    Behaviour,
    HostileAS,
    public,
)

Setup = Callable[[Behaviour, HostileAS], None]


@dataclass(frozen=True)
class Case:
    id: str
    setup: Setup
    exit_code: int
    message: str  # a fragment of the one-line error message
    token_calls: int  # authorization_code POSTs the provider must have seen
    opener_called: bool = True


def meta(**overrides: object) -> Setup:
    def setup(b: Behaviour, s: HostileAS) -> None:
        b.metadata.update({k: (v(s) if callable(v) else v) for k, v in overrides.items()})

    return setup


def claims(**overrides: object) -> Setup:
    def setup(b: Behaviour, s: HostileAS) -> None:
        b.id_claims.update({k: (v(s) if callable(v) else v) for k, v in overrides.items()})

    return setup


def compose(*steps: Setup) -> Setup:
    def setup(b: Behaviour, s: HostileAS) -> None:
        for step in steps:
            step(b, s)

    return setup


def attr(**values: object) -> Setup:
    def setup(b: Behaviour, s: HostileAS) -> None:
        for name, value in values.items():
            setattr(b, name, value(s) if callable(value) else value)

    return setup


def now_plus(seconds: int) -> Callable[[HostileAS], int]:
    return lambda s: int(time.time()) + seconds


ID_TOKEN_BAD = "the ID token is not valid"
ENDPOINT_BAD = "must be an https URL"
UNSAFE_URL = "refusing to open"

REFUSED = [
    # --- discovery (ID-01, ID-02, AZ-01, NT-05): stop before any authorization request
    Case(
        "ID-01-oidcc-client-test-discovery-issuer-mismatch-trailing-slash",
        meta(issuer=lambda s: s.issuer + "/"),
        7,
        "different issuer",
        0,
        opener_called=False,
    ),
    Case(
        "ID-01-fapi2-discovery-issuer-mismatch-other-issuer",
        meta(issuer="https://evil.example"),
        7,
        "different issuer",
        0,
        opener_called=False,
    ),
    Case(
        "ID-01-NT-05-issuer-wrong-type",
        meta(issuer=123),
        7,
        "different issuer",
        0,
        opener_called=False,
    ),
    Case(
        "ID-02-token-endpoint-http-foreign-host",
        meta(token_endpoint="http://as.example/token"),
        7,
        ENDPOINT_BAD,
        0,
        opener_called=False,
    ),
    Case(
        "ID-02-jwks-uri-http-foreign-host",
        meta(jwks_uri="http://as.example/jwks"),
        7,
        ENDPOINT_BAD,
        0,
        opener_called=False,
    ),
    Case(
        "ID-02-userinfo-endpoint-http-foreign-host",
        meta(userinfo_endpoint="http://10.0.0.5/userinfo"),
        7,
        ENDPOINT_BAD,
        0,
        opener_called=False,
    ),
    Case(
        "ID-02-revocation-endpoint-http-foreign-host",
        meta(revocation_endpoint="http://as.example/revoke"),
        7,
        ENDPOINT_BAD,
        0,
        opener_called=False,
    ),
    Case(
        "ID-02-token-endpoint-with-userinfo",
        meta(token_endpoint=lambda s: s.issuer.replace("//", "//user:pw@") + "/token"),
        7,
        ENDPOINT_BAD,
        0,
        opener_called=False,
    ),
    Case(
        "ID-02-token-endpoint-wrong-type",
        meta(token_endpoint=["https://as.example/token"]),
        7,
        "no valid token_endpoint",
        0,
        opener_called=False,
    ),
    Case(
        "ID-02-token-endpoint-missing",
        meta(token_endpoint=DELETE),
        7,
        "no valid token_endpoint",
        0,
        opener_called=False,
    ),
    Case(
        "AZ-01-pkce-plain-only",
        meta(code_challenge_methods_supported=["plain"]),
        7,
        "S256",
        0,
        opener_called=False,
    ),
    Case(
        "NT-05-metadata-50MB",
        attr(metadata_huge=50 * 1024 * 1024),
        6,
        "too large",
        0,
        opener_called=False,
    ),
    Case(
        "NT-05-metadata-not-json",
        attr(metadata_body=b"<html>not json</html>", metadata_content_type="text/html"),
        6,
        "not JSON",
        0,
        opener_called=False,
    ),
    Case(
        "NT-05-metadata-json-array",
        attr(metadata_body=b'["issuer"]'),
        6,
        "not a JSON object",
        0,
        opener_called=False,
    ),
    Case(
        "NT-05-metadata-nan",  # NaN is not JSON (NU-01): refused as such, before any issuer check
        attr(metadata_body=b'{"issuer": NaN}'),
        6,
        "metadata is not JSON",
        0,
        opener_called=False,
    ),
    Case(
        "NT-05-metadata-alg-list-wrong-type",
        meta(id_token_signing_alg_values_supported="RS256"),
        7,
        "not a list of strings",
        0,
        opener_called=False,
    ),
    # --- AZ-08: the opener is never called for an unsafe authorization_endpoint
    Case(
        "AZ-08-authorization-endpoint-file",
        meta(authorization_endpoint="file:///etc/passwd"),
        7,
        "authorization_endpoint",
        0,
        opener_called=False,
    ),
    Case(
        "AZ-08-authorization-endpoint-javascript",
        meta(authorization_endpoint="javascript:alert(1)"),
        7,
        "authorization_endpoint",
        0,
        opener_called=False,
    ),
    Case(
        "AZ-08-authorization-endpoint-leading-dash",
        meta(authorization_endpoint="--renderer-cmd-prefix=/tmp/x"),
        7,
        "authorization_endpoint",
        0,
        opener_called=False,
    ),
    Case(
        "AZ-08-authorization-endpoint-userinfo-at",
        meta(authorization_endpoint=lambda s: s.issuer + "@evil.example/authorize"),
        7,
        "authorization_endpoint",
        0,
        opener_called=False,
    ),
    Case(
        "AZ-08-authorization-endpoint-other-host",
        meta(authorization_endpoint="https://evil.example/authorize"),
        7,
        UNSAFE_URL,
        0,
        opener_called=False,
    ),
    Case(
        "AZ-08-authorization-endpoint-other-loopback-host",
        meta(authorization_endpoint=lambda s: f"http://localhost:{s.port}/authorize"),
        7,
        UNSAFE_URL,
        0,
        opener_called=False,
    ),
    Case(
        "AZ-08-authorization-endpoint-other-port",
        meta(authorization_endpoint=lambda s: f"http://127.0.0.1:{s.port + 1}/authorize"),
        7,
        UNSAFE_URL,
        0,
        opener_called=False,
    ),
    # --- AZ-04: the authorization response's iss (RFC 9207); no token request
    Case(
        "AZ-04-fapi2-invalid-authorization-response-iss",
        attr(callback={"iss": "https://evil.example"}),
        7,
        "mix-up",
        0,
    ),
    Case(
        "AZ-04-authorization-response-iss-trailing-slash",
        lambda b, s: b.callback.update(iss=s.issuer + "/"),
        7,
        "mix-up",
        0,
    ),
    Case(
        "AZ-04-fapi2-remove-authorization-response-iss",
        attr(callback={"iss": DELETE}),
        7,
        "iss",
        0,
    ),
    Case(
        "EH-02-authorization-error-access-denied",
        attr(callback={"code": DELETE, "error": "access_denied"}),
        3,
        "denied",
        0,
    ),
    # --- AZ-03: nonce
    Case("AZ-03-oidcc-client-nonce-invalid", claims(nonce="not-this-login"), 7, "nonce", 1),
    Case("AZ-03-fapi2-invalid-missing-nonce", claims(nonce=DELETE), 7, "nonce", 1),
    # --- ID-03: signatures and algorithms
    Case(
        "ID-03-oidcc-client-test-invalid-sig-rs256",
        attr(id_sign="rsa-evil"),
        7,
        "signature does not verify",
        1,
    ),
    Case(
        "ID-03-oidcc-client-test-invalid-sig-es256",
        attr(id_sign="ec-evil"),
        7,
        "signature does not verify",
        1,
    ),
    Case("ID-03-fapi2-invalid-null-alg", attr(id_sign="none"), 7, "'none' is not allowed", 1),
    Case(
        "ID-03-oidcc-client-test-invalid-sig-hs256-public-key-as-secret",
        attr(id_sign="hs256-public-key"),
        7,
        "'HS256' is not allowed",
        1,
    ),
    Case(
        "ID-03-hs256-even-when-advertised",
        compose(
            attr(id_sign="hs256-public-key"),
            meta(id_token_signing_alg_values_supported=["HS256", "RS256"]),
        ),
        7,
        "'HS256' is not allowed",
        1,
    ),
    Case(
        "ID-03-fapi2-invalid-alternate-alg-outside-allow-list",
        compose(attr(id_sign="ec-e1"), meta(id_token_signing_alg_values_supported=["RS256"])),
        7,
        "'ES256' is not allowed",
        1,
    ),
    Case(
        "ID-03-jku-header-ignored",
        lambda b, s: (
            (
                setattr(b, "id_sign", "rsa-attacker"),
                b.id_header.update(jku=s.issuer + "/attacker-jwks"),
            )
            and None
        ),
        7,
        "no key of the provider matches",
        1,
    ),
    Case(
        "ID-03-jwk-header-ignored",
        attr(id_sign="rsa-evil", id_header={"jwk": public(RSA_K1)}),
        7,
        "signature does not verify",
        1,
    ),
    Case(
        "ID-03-jwe-five-parts",
        attr(token_reply={"id_token": "a.b.c.d.e"}),
        7,
        "not a signed JWT",
        1,
    ),
    # --- ID-04: claims
    Case(
        "ID-04-oidcc-client-invalid-iss", claims(iss="https://evil.example"), 7, "another issuer", 1
    ),
    Case("ID-04-fapi2-invalid-missing-iss", claims(iss=DELETE), 7, "another issuer", 1),
    Case("ID-04-oidcc-client-invalid-aud", claims(aud="someone-else"), 7, "another client", 1),
    Case("ID-04-oidcc-client-missing-aud", claims(aud=DELETE), 7, "aud is missing", 1),
    Case(
        "ID-04-fapi2-invalid-secondary-aud-without-azp",
        claims(aud=[CLIENT_ID, "untrusted"]),
        7,
        "other audiences",
        1,
    ),
    Case("ID-04-azp-other-client", claims(azp="someone-else"), 7, "azp", 1),
    Case("ID-04-oidcc-client-missing-sub", claims(sub=DELETE), 7, "sub is missing", 1),
    Case("ID-04-oidcc-client-missing-iat", claims(iat=DELETE), 7, "iat", 1),
    Case("ID-04-fapi2-invalid-missing-exp", claims(exp=DELETE), 7, "exp", 1),
    Case("ID-04-fapi2-invalid-expired-exp", claims(exp=now_plus(-400)), 7, "expired", 1),
    Case(
        "ID-04-fapi1-iat-is-week-in-past",
        claims(iat=now_plus(-7 * 86400), exp=now_plus(300)),
        7,
        "too long ago",
        1,
    ),
    Case("ID-04-iat-an-hour-ahead", claims(iat=now_plus(3600), exp=now_plus(4000)), 7, "future", 1),
    Case("ID-04-exp-wrong-type", claims(exp="tomorrow"), 7, "exp", 1),
    # --- ID-05 malformed key sets
    Case(
        "ID-05-jwks-only-unparseable-keys",
        attr(jwks=[{"kty": "RSA", "kid": "k1", "n": "!!!", "e": "AQAB"}, {"kty": "XYZ"}]),
        7,
        "no key of the provider matches",
        1,
    ),
    Case(
        "ID-05-jwks-private-key-skipped",
        attr(jwks=[dict(RSA_K1.as_dict(private=True))]),
        7,
        "no key of the provider matches",
        1,
    ),
    # --- ID-07 userinfo
    Case(
        "ID-07-oidcc-client-test-userinfo-invalid-sub",
        attr(userinfo_sub="user-2"),
        7,
        "another user",
        1,
    ),
    # --- ID-08 / EH-03 / NT-03 token endpoint
    Case(
        "ID-08-token-type-mac",
        attr(token_reply={"token_type": "mac"}),
        6,
        "unsupported token_type",
        1,
    ),
    Case(
        "ID-08-token-type-missing",
        attr(token_reply={"token_type": DELETE}),
        6,
        "unsupported token_type",
        1,
    ),
    Case(
        "ID-08-access-token-wrong-type",
        attr(token_reply={"access_token": 42}),
        6,
        "no access_token",
        1,
    ),
    Case(
        "NT-03-token-endpoint-redirect-not-followed",
        lambda b, s: setattr(b, "token_redirect", s.issuer + "/evil-token"),
        6,
        "HTTP 307",
        1,
    ),
    Case(
        "EH-03-token-endpoint-502-not-json",
        attr(token_status=502, token_reply={"access_token": DELETE, "debug": "BODY-CANARY"}),
        6,
        "HTTP 502",
        1,
    ),
    Case(
        "EH-03-token-endpoint-invalid-grant",
        attr(token_status=400, token_reply={"error": "invalid_grant"}),
        3,
        "refused the grant",
        1,
    ),
]

ACCEPTED = [
    Case("ID-03-oidcc-client-test-idtoken-sig-rs256", attr(), 0, "", 1),
    Case("ID-03-es256", attr(id_sign="ec-e1"), 0, "", 1),
    Case("ID-04-fapi2-valid-aud-as-array", claims(aud=[CLIENT_ID]), 0, "", 1),
    Case("ID-04-azp-equal-client", claims(azp=CLIENT_ID), 0, "", 1),
    Case(
        "ID-05-oidcc-client-kid-absent-single-jwks",
        attr(id_header={"kid": DELETE}, jwks=[public(RSA_K1)]),
        0,
        "",
        1,
    ),
    Case(
        "ID-05-oidcc-client-test-kid-absent-multiple-jwks",
        attr(id_header={"kid": DELETE}, jwks=[public(RSA_K2), public(RSA_K1), public(EC_E1)]),
        0,
        "",
        1,
    ),
    Case(
        "ID-05-oidcc-client-test-ignores-unparseable-key-in-jwks",
        attr(
            jwks=[
                {"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"},
                {"kty": "XYZ", "kid": "odd"},
                {"kid": "no-kty"},
                "not-a-key",
                public(RSA_K1),
            ]
        ),
        0,
        "",
        1,
    ),
    Case(
        "ID-08-fapi2-token-type-case-insensitivity",
        attr(token_reply={"token_type": "bEARER"}),
        0,
        "",
        1,
    ),
    Case(
        "ID-08-fapi2-token-endpoint-response-without-expires_in",
        attr(token_reply={"expires_in": DELETE}),
        0,
        "",
        1,
    ),
]


def _check_common(box: Box, case: Case, result) -> None:  # type: ignore[no-untyped-def]
    server = box.server
    assert "Traceback" not in result.stderr, result.stderr
    codes = server.token_calls("authorization_code")
    assert len(codes) == case.token_calls, [r.form.get("grant_type") for r in codes]
    assert not server.token_calls("refresh_token")
    assert bool(box.opener_calls) is case.opener_called, box.opener_calls
    assert len(box.opener_calls) <= 1
    if not case.opener_called:
        assert not server.calls("GET", "/authorize")
    assert not server.calls("GET", "/attacker-jwks")
    assert not server.calls("POST", "/evil-token")
    assert "CANARY" not in result.stdout + result.stderr


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_login_refused(box: Box, case: Case) -> None:
    case.setup(box.server.behaviour, box.server)
    before = box.snapshot()
    result = box.login()
    assert result.code == case.exit_code, result.stderr
    error = result.error()
    assert case.message in error["message"], error
    assert "\n" not in error["message"] and len(error["message"]) < 200
    assert error["exit_code"] == case.exit_code
    _check_common(box, case, result)
    assert box.snapshot() == before  # EH-04: the earlier session is intact, nothing added


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_login_accepted(box: Box, case: Case) -> None:
    case.setup(box.server.behaviour, box.server)
    before = json.loads(box.credentials.read_bytes())
    result = box.login()
    assert result.code == 0, result.stderr
    _check_common(box, case, result)
    after = json.loads(box.credentials.read_bytes())
    assert after["access_token"] != before["access_token"]
    assert result.json()["identity"]["subject"] == "user-1"


def test_ID_05_oidcc_client_test_signing_key_rotation_just_before_signing(box: Box) -> None:
    """An unknown kid makes kt refetch the JWKS once, then the sign-in succeeds."""
    b = box.server.behaviour
    b.id_sign = "rsa-k2"
    b.jwks_sequence = [[public(RSA_K1)], [public(RSA_K1), public(RSA_K2)]]
    result = box.login()
    assert result.code == 0, result.stderr
    assert len(box.server.calls("GET", "/jwks")) == 2


def test_ID_05_unknown_kid_after_refetch_is_refused_with_one_refetch(box: Box) -> None:
    b = box.server.behaviour
    b.id_sign = "rsa-k2"
    b.jwks = [public(RSA_K1)]
    before = box.snapshot()
    result = box.login()
    assert result.code == 7, result.stderr
    assert len(box.server.calls("GET", "/jwks")) == 2  # the first fetch and one refetch
    assert box.snapshot() == before


def test_AZ_05_redirect_uri_and_pkce_sent_back(box: Box) -> None:
    """The token POST repeats redirect_uri byte for byte and proves the S256 challenge."""
    import base64
    import hashlib
    from urllib.parse import urlsplit

    result = box.login()
    assert result.code == 0, result.stderr
    (authorize,) = box.server.calls("GET", "/authorize")
    (token,) = box.server.token_calls("authorization_code")
    assert token.form["redirect_uri"] == authorize.query["redirect_uri"]
    assert urlsplit(authorize.query["redirect_uri"]).hostname == "127.0.0.1"
    assert authorize.query["code_challenge_method"] == "S256"
    digest = hashlib.sha256(token.form["code_verifier"].encode()).digest()
    assert (
        base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == authorize.query["code_challenge"]
    )
    assert authorize.query["response_type"] == "code"
    assert "grant_type=password" not in json.dumps([r.form for r in box.server.requests])
    # The browser was opened at the listener's one-time link, which carries no query (LU-01).
    (opened,) = box.opener_calls
    link, redirect = urlsplit(opened), urlsplit(authorize.query["redirect_uri"])
    assert (link.scheme, link.netloc, link.query) == ("http", redirect.netloc, "")
    assert authorize.query["state"] not in opened


def test_NT_05_huge_metadata_is_abandoned_not_read_whole(box: Box) -> None:
    """kt stops reading a provider reply past its size cap (1 MiB) instead of holding 50 MB."""
    box.server.behaviour.metadata_huge = 50 * 1024 * 1024
    result = box.login()
    assert result.code == 6, result.stderr
    assert "too large" in result.error()["message"]
    assert box.server.metadata_sent < 20 * 1024 * 1024, box.server.metadata_sent
