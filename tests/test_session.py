"""The stored session: its JSON (ST-06 allow-list), its kind, corrupt data, the masked repr."""

from __future__ import annotations

import json

import pytest

from kt_login.errors import StoreError
from kt_login.session import Session
from tests.sample_sessions import make_session

ALLOWED_KEYS = {
    "api_url",
    "access_token",
    "refresh_token",
    "expires_at",
    "method",
    "kind",  # who refreshes and revokes it
    "user_email",
    "user_id",
    "organization",
    "role",
    "scopes",
    "mfa_authenticated",
    "session_id",
    "refresh_expires_at",
    "obtained_at",
    # OAuth sign-ins: where to refresh/revoke and which sign-in the ID token named
    "issuer",
    "client_id",
    "token_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "subject",
    "auth_time",
    "acr",
    "display_name",
    "granted_scope",  # the OAuth scope granted, for a new consent that drops none of it
    # RFC 8707 / RFC 9728: the resource asked for, and where kt found the issuer
    "resource",
    "issuer_source",
    # a DPoP session's private key (RFC 9449), which its tokens are useless without
    "dpop_key",
}


def test_session_round_trip_with_and_without_optional_fields() -> None:
    full = make_session()
    assert Session.from_json(full.to_json()) == full
    bare = make_session(
        refresh_token=None,
        expires_at=None,
        session_id=None,
        refresh_expires_at=None,
        obtained_at=None,
        scopes=(),
    )
    assert Session.from_json(bare.to_json()) == bare


def test_session_json_is_compact_stable_and_allow_listed() -> None:
    text = make_session().to_json()
    assert " " not in text.replace("ada@example.com", "")
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert set(data) <= ALLOWED_KEYS  # ST-06
    assert make_session().to_json() == text


def test_session_non_finite_time_is_stored_as_unknown() -> None:
    session = make_session(expires_at=float("nan"), refresh_expires_at=float("inf"))
    back = Session.from_json(session.to_json())
    assert back.expires_at is None and back.refresh_expires_at is None


def test_session_ignores_unknown_keys() -> None:
    data = json.loads(make_session().to_json())
    data["from_a_newer_kt"] = 1
    assert Session.from_json(json.dumps(data)) == make_session()


def _corrupt(**changes: object) -> str:
    data = json.loads(make_session().to_json())
    for key, value in changes.items():
        if value is KeyError:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "not json",
        "[]",
        "null",
        '"a string"',
        b"\xff\xfe",
        _corrupt(access_token=KeyError),
        _corrupt(access_token=""),
        _corrupt(access_token=7),
        _corrupt(api_url=None),
        _corrupt(refresh_token=["x"]),
        _corrupt(expires_at="tomorrow"),
        _corrupt(expires_at=True),
        _corrupt(expires_at=10**400),
        _corrupt(scopes="tokens:read"),
        _corrupt(scopes=[1, 2]),
        _corrupt(mfa_authenticated="yes"),
        _corrupt(method=KeyError),
        _corrupt(session_id=5),
        _corrupt(kind="password"),
        _corrupt(kind=None),
        _corrupt(kind="oauth"),  # an OAuth session must name its token endpoint
        '{"expires_at": NaN}',
        _corrupt().replace("1900000000.5", "1e400"),
        _corrupt().replace("1900000000.5", "Infinity"),
        "[" * 100_000,
    ],
)
def test_session_from_corrupt_data_raises_store_error(text: str | bytes) -> None:
    with pytest.raises(StoreError) as info:
        Session.from_json(text)
    assert "corrupt" in info.value.message
    assert "CANARY" not in info.value.message


TOKEN_ENDPOINT = "https://as.example/token"


def test_session_kind_is_stored_and_read_back() -> None:
    first_party = make_session()
    assert json.loads(first_party.to_json())["kind"] == "keeptrusts"
    oauth = make_session(kind="oauth", method="browser", token_endpoint=TOKEN_ENDPOINT)
    assert json.loads(oauth.to_json())["kind"] == "oauth"
    assert Session.from_json(oauth.to_json()) == oauth


@pytest.mark.parametrize(
    ("token_endpoint", "kind"), [(None, "keeptrusts"), (TOKEN_ENDPOINT, "oauth")]
)
def test_session_stored_before_kinds_existed_still_loads(
    token_endpoint: str | None, kind: str
) -> None:
    data = json.loads(make_session(token_endpoint=token_endpoint).to_json())
    del data["kind"]
    loaded = Session.from_json(json.dumps(data))
    assert loaded.kind == kind
    assert loaded == make_session(kind=kind, token_endpoint=token_endpoint)


def test_an_oauth_session_needs_its_token_endpoint() -> None:
    with pytest.raises(ValueError, match="token_endpoint"):
        make_session(kind="oauth")
    with pytest.raises(StoreError, match="corrupt") as info:
        Session.from_json(_corrupt(kind="oauth"))
    assert "token_endpoint" in info.value.message


def test_session_repr_masks_tokens() -> None:
    session = make_session()
    for text in (repr(session), str(session), f"{session}", repr([session])):
        assert "CANARY" not in text
    assert "kta_…(redacted)" in repr(session)
    assert "ktr_…(redacted)" in repr(session)
    assert "ada@example.com" in repr(session)
    odd = make_session(access_token="no-prefix-secret", refresh_token=None)
    assert "no-prefix-secret" not in repr(odd)
    assert "refresh_token=None" in repr(odd)


@pytest.mark.parametrize(
    ("issuer", "foreign"),
    [
        pytest.param(None, None, id="password-sign-in"),
        pytest.param("https://api.example.com", None, id="the-api-is-the-issuer"),
        pytest.param("https://API.example.com:443", None, id="same-origin"),
        pytest.param("https://id.example.com", "https://id.example.com", id="another-provider"),
        pytest.param("https://api.example.com:8443", "https://api.example.com:8443", id="port"),
    ],
)
def test_a_foreign_issuer_is_one_that_is_not_the_api(
    issuer: str | None, foreign: str | None
) -> None:
    """Issue 10 case 8: the API URL and the issuer are kept apart; the issuer is foreign when it
    is another origin than the API (its tokens are that provider's, not API sessions)."""
    extra = {"kind": "oauth", "token_endpoint": "https://x.example/token"} if issuer else {}
    session = make_session(api_url="https://api.example.com", issuer=issuer, **extra)
    assert session.foreign_issuer == foreign
    assert Session.from_json(session.to_json()).foreign_issuer == foreign
