"""The one strict reading of a server's JSON and of the durations in it
(kt_login/flows/transport.py, SECURITY.md NU-01): NaN, Infinity, overlong numbers and nesting
too deep are not JSON, and every reader (token endpoint, device poll, API client) refuses them the
same way (issue 11 case 6)."""

from __future__ import annotations

import json
import time

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from kt_login.api import decode_reply, session_from_reply
from kt_login.errors import ServerError, ValidationFailed
from kt_login.flows.discovery import parse_metadata
from kt_login.flows.tokens import json_reply, parse_token_response
from kt_login.flows.transport import MAX_LIFETIME, json_document, seconds
from kt_login.flows.userinfo import parse_userinfo
from kt_login.idtoken import parse_jwks, validate_id_token

NOT_JSON = [
    '{"n": NaN}',
    '{"n": Infinity}',
    '{"n": -Infinity}',
    '{"n": 1e400}',
    '{"n": -1e400}',
    '{"n": ' + "9" * 5000 + "}",  # past Python's int digit limit
    "[" * 100_000 + "]" * 100_000,
]


@pytest.mark.parametrize("text", NOT_JSON)
def test_json_document_refuses_what_is_not_json(text):
    with pytest.raises(ValueError):
        json_document(text)


def test_json_document_reads_ordinary_numbers():
    assert json_document(b'{"a": 1, "b": 1.5e3, "c": -0.0, "d": 1e308}') == {
        "a": 1,
        "b": 1500.0,
        "c": -0.0,
        "d": 1e308,
    }


@pytest.mark.parametrize("text", NOT_JSON)
def test_every_reader_maps_non_json_to_a_server_error(text):
    response = httpx2.Response(200, content=text.encode())
    for read in (lambda: json_reply(response, "x"), lambda: decode_reply(response, "https://a")):
        with pytest.raises(ServerError) as info:
            read()
        assert info.value.exit_code == 6


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("600", None), (True, None), (0, None), (-5, None), (600, 600.0), (1.5, 1.5)],
)
def test_seconds_tolerates_an_unknown_lifetime(value, expected):
    assert seconds(value, "x", most=MAX_LIFETIME) == expected


@pytest.mark.parametrize("value", [MAX_LIFETIME + 1, 1e300, 10**400])
def test_seconds_refuses_an_absurd_lifetime(value):
    with pytest.raises(ServerError) as info:
        seconds(value, "token's expires_in", most=MAX_LIFETIME)
    assert "token's expires_in is out of range" in info.value.message
    assert len(info.value.message) < 120  # a 400-digit number is not printed whole


@pytest.mark.parametrize("member", ["expires_in", "refresh_expires_in"])
def test_session_lifetimes_beyond_reason_are_refused(member):
    reply = {"access_token": "a", "token_type": "Bearer", member: 10**400}
    with pytest.raises(ServerError):
        session_from_reply(reply, api_url="https://a", method="password", now=1000.0)


def test_token_response_lifetime_beyond_reason_is_refused():
    body = b'{"access_token": "a", "token_type": "Bearer", "expires_in": 1e300}'
    with pytest.raises(ServerError):
        parse_token_response(httpx2.Response(200, content=body))
    overlong = b'{"access_token": "a", "token_type": "Bearer", "expires_in": "%s"}' % (b"9" * 5000)
    assert parse_token_response(httpx2.Response(200, content=overlong)).expires_in is None


@pytest.mark.parametrize(
    "read",
    [
        lambda body: parse_metadata(body, "https://as.example"),
        lambda body: parse_userinfo(body, "usr_1"),
        parse_jwks,
    ],
    ids=["metadata", "userinfo", "jwks"],
)
@pytest.mark.parametrize("text", NOT_JSON)
def test_provider_documents_that_are_not_json_are_server_errors(read, text):
    with pytest.raises(ServerError):
        read(text.encode())


@pytest.mark.parametrize(
    ("claim", "value"),
    [("exp", 10**400), ("exp", 1e300), ("iat", -(10**30)), ("auth_time", 1e300)],
)
def test_id_token_times_beyond_reason_are_refused_not_overflowing(claim, value):
    key = RSAKey.generate_key(2048, parameters={"kid": "k"})
    now = time.time()
    claims = {"iss": "https://as.example", "sub": "s", "aud": "kt", "exp": now + 300}
    claims |= {"iat": now, "nonce": "n", "auth_time": now - 5, claim: value}
    token = jwt.encode({"alg": "RS256", "kid": "k"}, claims, key)
    keys = parse_jwks(json.dumps({"keys": [key.as_dict(private=False)]}).encode())
    with pytest.raises(ValidationFailed) as info:
        validate_id_token(
            token, keys=keys, issuer="https://as.example", client_id="kt", now=now, nonce="n"
        )
    assert "out of range" in info.value.message or "not valid" in info.value.message
