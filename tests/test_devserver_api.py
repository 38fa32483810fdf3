"""The first-party API of a real `kt-devserver` process (docs/api-contract.md), over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from kt_devserver import demo, totp
from tests.api_replies import error_of, login
from tests.fixtures.devserver import DevServer, start_devserver

ALL_SCOPES = [
    "configurations:read",
    "configurations:write",
    "gateways:read",
    "gateways:write",
    "tokens:read",
    "tokens:write",
]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One server for the tests that do not depend on a pristine database (each signs in anew)."""
    server = start_devserver(tmp_path_factory.mktemp("devserver"))
    yield server
    server.stop()


@pytest.fixture
def http(shared_server: DevServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=shared_server.url, timeout=10) as client:
        yield client


@pytest.fixture
def fresh_http(devserver: DevServer) -> Iterator[httpx2.Client]:
    """A client of a server of its own, for tests that count what is in the database, and for
    those that sign bob in: his TOTP code is good once per server (RFC 6238 §5.2)."""
    with httpx2.Client(base_url=devserver.url, timeout=10) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def alice(http: httpx2.Client) -> dict[str, Any]:
    response = login(http, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
    assert response.status_code == 200, response.text
    return response.json()


def bob(http: httpx2.Client) -> dict[str, Any]:
    error = error_of(login(http, demo.BOB_EMAIL, demo.BOB_PASSWORD), 401)
    response = http.post(
        "/v1/auth/mfa/challenge",
        json={"mfa_token": error["mfa_token"], "code": totp.code(demo.BOB_TOTP_SECRET)},
    )
    assert response.status_code == 200, response.text
    return response.json()


def create_token(http: httpx2.Client, access_token: str, scopes: list[str], name: str = "ci"):
    return http.post(
        "/v1/auth/tokens", json={"name": name, "scopes": scopes}, headers=bearer(access_token)
    )


def test_healthz(http):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_alice_login_then_whoami(http):
    session = alice(http)
    assert session["access_token"].startswith("kta_")
    assert session["refresh_token"].startswith("ktr_")
    assert session["session_id"].startswith("ses_")
    assert session["token_type"] == "Bearer"
    assert session["expires_in"] == 900
    assert session["refresh_expires_in"] == 30 * 24 * 3600
    assert session["mfa_authenticated"] is False
    assert session["user"]["email"] == demo.ALICE_EMAIL
    assert session["user"]["name"] == demo.ALICE_NAME
    assert session["organization"]["name"] == demo.ORGANIZATION_NAME
    assert (session["role"], session["scopes"]) == ("admin", ALL_SCOPES)

    response = http.get("/v1/auth/whoami", headers=bearer(session["access_token"]))
    assert response.status_code == 200
    me = response.json()
    assert me["user"] == session["user"]
    assert me["organization"] == session["organization"]
    assert me["role"] == "admin"
    assert me["scopes"] == ALL_SCOPES
    assert me["auth_method"] == "session"
    assert me["mfa_authenticated"] is False
    assert me["token"] is None
    assert me["expires_at"].endswith("Z")


def test_wrong_password_and_unknown_email_get_the_same_reply(http):
    wrong_password = login(http, demo.ALICE_EMAIL, "not-her-password")
    unknown_email = login(http, "nobody@example.com", "whatever")
    assert error_of(wrong_password, 401)["code"] == "auth.invalid_credentials"
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.status_code == unknown_email.status_code
    # An MFA user's wrong password must not reveal that MFA is on.
    assert login(http, demo.BOB_EMAIL, "nope").json() == wrong_password.json()


def test_bob_needs_mfa_and_the_mfa_token_is_single_use(fresh_http):
    error = error_of(login(fresh_http, demo.BOB_EMAIL, demo.BOB_PASSWORD), 401)
    assert error["code"] == "auth.mfa_required"
    assert error["expires_in"] == 300
    mfa_token = error["mfa_token"]
    assert demo.BOB_PASSWORD not in mfa_token

    right = totp.code(demo.BOB_TOTP_SECRET)
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    response = fresh_http.post(
        "/v1/auth/mfa/challenge", json={"mfa_token": mfa_token, "code": wrong}
    )
    assert error_of(response, 401)["code"] == "auth.invalid_mfa_code"

    response = fresh_http.post(
        "/v1/auth/mfa/challenge", json={"mfa_token": mfa_token, "code": right}
    )
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["mfa_authenticated"] is True
    assert (session["role"], session["user"]["name"]) == ("member", demo.BOB_NAME)
    assert "gateways:write" not in session["scopes"]
    me = fresh_http.get("/v1/auth/whoami", headers=bearer(session["access_token"])).json()
    assert me["mfa_authenticated"] is True

    response = fresh_http.post(
        "/v1/auth/mfa/challenge", json={"mfa_token": mfa_token, "code": right}
    )
    assert error_of(response, 401)["code"] == "auth.mfa_token_expired"


def test_expired_mfa_token_is_refused(devserver_factory):
    server = devserver_factory("--mfa-token-ttl", "0")
    with httpx2.Client(base_url=server.url) as http:
        error = error_of(login(http, demo.BOB_EMAIL, demo.BOB_PASSWORD), 401)
        assert error["expires_in"] == 0
        response = http.post(
            "/v1/auth/mfa/challenge",
            json={"mfa_token": error["mfa_token"], "code": totp.code(demo.BOB_TOTP_SECRET)},
        )
        assert error_of(response, 401)["code"] == "auth.mfa_token_expired"


def test_expired_access_token_is_refused(devserver_factory):
    server = devserver_factory("--access-token-ttl", "0")
    with httpx2.Client(base_url=server.url) as http:
        session = alice(http)
        response = http.get("/v1/auth/whoami", headers=bearer(session["access_token"]))
        assert error_of(response, 401)["code"] == "auth.token_expired"


def test_refresh_rotates_and_a_replay_revokes_the_family(http):
    first = alice(http)
    response = http.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["session_id"] == first["session_id"]
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert http.get("/v1/auth/whoami", headers=bearer(second["access_token"])).status_code == 200

    replay = http.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert error_of(replay, 401)["code"] == "auth.invalid_grant"

    for access_token in (first["access_token"], second["access_token"]):
        response = http.get("/v1/auth/whoami", headers=bearer(access_token))
        assert error_of(response, 401)["code"] == "auth.token_revoked"
    response = http.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert error_of(response, 401)["code"] == "auth.invalid_grant"

    # Other sessions of the same user are another family and keep working.
    other = alice(http)
    assert http.get("/v1/auth/whoami", headers=bearer(other["access_token"])).status_code == 200


def test_unknown_refresh_token_is_invalid_grant(http):
    response = http.post("/v1/auth/refresh", json={"refresh_token": "ktr_unknown"})
    assert error_of(response, 401)["code"] == "auth.invalid_grant"


def test_logout_revokes_the_family_and_is_idempotent(http):
    session = alice(http)
    response = http.post("/v1/auth/logout", headers=bearer(session["access_token"]))
    assert response.status_code == 200
    assert response.json() == {"revoked": True}
    response = http.get("/v1/auth/whoami", headers=bearer(session["access_token"]))
    assert error_of(response, 401)["code"] == "auth.token_revoked"
    response = http.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert error_of(response, 401)["code"] == "auth.invalid_grant"
    again = http.post(
        "/v1/auth/logout",
        json={"refresh_token": session["refresh_token"]},
        headers=bearer(session["access_token"]),
    )
    assert again.status_code == 200
    assert again.json() == {"revoked": True}


def test_token_create_list_use_revoke(fresh_http):
    http = fresh_http
    session = alice(http)
    response = create_token(http, session["access_token"], ["tokens:read", "gateways:read"])
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["secret"]
    info = created["token"]
    assert secret.startswith("kt_live_") and len(secret) >= len("kt_live_") + 43
    assert info["prefix"] == secret[:12]
    assert info["state"] == "active"
    assert info["scopes"] == ["gateways:read", "tokens:read"]
    assert info["last_used_at"] is None

    me = http.get("/v1/auth/whoami", headers=bearer(secret)).json()
    assert me["auth_method"] == "api_token"
    assert me["token"] == {"id": info["id"], "name": "ci"}
    assert me["scopes"] == ["gateways:read", "tokens:read"]
    assert me["expires_at"] == info["expires_at"]

    listing = http.get("/v1/auth/tokens", headers=bearer(session["access_token"]))
    assert listing.status_code == 200
    assert secret not in listing.text
    assert secret[12:] not in listing.text
    (listed,) = listing.json()["tokens"]
    assert set(listed) == {
        "id",
        "name",
        "scopes",
        "state",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    }
    assert listed["last_used_at"] is not None

    response = http.delete(f"/v1/auth/tokens/{info['id']}", headers=bearer(session["access_token"]))
    assert response.status_code == 200
    revoked = response.json()["token"]
    assert revoked["state"] == "revoked" and revoked["revoked_at"] is not None
    response = http.get("/v1/auth/whoami", headers=bearer(secret))
    assert error_of(response, 401)["code"] == "auth.token_revoked"
    again = http.delete(f"/v1/auth/tokens/{info['id']}", headers=bearer(session["access_token"]))
    assert again.status_code == 200
    assert again.json()["token"]["revoked_at"] == revoked["revoked_at"]


def test_unknown_token_id_is_404(fresh_http):
    session = alice(fresh_http)
    for response in (
        fresh_http.delete("/v1/auth/tokens/tok_nope", headers=bearer(session["access_token"])),
        fresh_http.post(
            "/v1/auth/tokens/tok_nope/rotate", headers=bearer(bob(fresh_http)["access_token"])
        ),
    ):
        assert error_of(response, 404)["code"] == "auth.not_found"


def test_tokens_of_another_user_are_invisible(fresh_http):
    http = fresh_http
    alice_session = alice(http)
    token_id = create_token(http, alice_session["access_token"], ["tokens:read"]).json()["token"][
        "id"
    ]
    bob_session = bob(http)
    listing = http.get("/v1/auth/tokens", headers=bearer(bob_session["access_token"]))
    assert listing.json() == {"tokens": []}
    response = http.delete(
        f"/v1/auth/tokens/{token_id}", headers=bearer(bob_session["access_token"])
    )
    assert error_of(response, 404)["code"] == "auth.not_found"


def test_rotate_needs_an_mfa_session(http):
    session = alice(http)
    token_id = create_token(http, session["access_token"], ["tokens:read"]).json()["token"]["id"]
    response = http.post(
        f"/v1/auth/tokens/{token_id}/rotate", headers=bearer(session["access_token"])
    )
    error = error_of(response, 403)
    assert error["code"] == "auth.mfa_required"
    assert "mfa_token" not in error  # alice has no MFA enrolled: nothing to step up with


def test_rotate_by_bob_after_mfa(fresh_http):
    session = bob(fresh_http)
    created = create_token(
        fresh_http, session["access_token"], ["tokens:read", "gateways:read"]
    ).json()
    old_secret = created["secret"]
    response = fresh_http.post(
        f"/v1/auth/tokens/{created['token']['id']}/rotate", headers=bearer(session["access_token"])
    )
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["revoked"]["id"] == created["token"]["id"]
    assert rotated["revoked"]["state"] == "revoked"
    new = rotated["token"]
    assert new["id"] != created["token"]["id"]
    assert (new["name"], new["scopes"], new["state"]) == (
        "ci",
        created["token"]["scopes"],
        "active",
    )
    assert rotated["secret"].startswith("kt_live_") and new["prefix"] == rotated["secret"][:12]

    me = fresh_http.get("/v1/auth/whoami", headers=bearer(rotated["secret"]))
    assert me.status_code == 200 and me.json()["token"]["id"] == new["id"]
    response = fresh_http.get("/v1/auth/whoami", headers=bearer(old_secret))
    assert error_of(response, 401)["code"] == "auth.token_revoked"

    again = fresh_http.post(
        f"/v1/auth/tokens/{created['token']['id']}/rotate", headers=bearer(session["access_token"])
    )
    assert error_of(again, 404)["code"] == "auth.not_found"


def test_api_tokens_cannot_rotate(fresh_http):
    session = bob(fresh_http)
    created = create_token(
        fresh_http, session["access_token"], ["tokens:read", "tokens:write"]
    ).json()
    response = fresh_http.post(
        f"/v1/auth/tokens/{created['token']['id']}/rotate", headers=bearer(created["secret"])
    )
    error = error_of(response, 403)
    assert error["code"] == "auth.mfa_required"
    assert "mfa_token" not in error


def test_api_token_reaches_only_its_scopes(http):
    session = alice(http)
    secret = create_token(http, session["access_token"], ["gateways:read"]).json()["secret"]
    response = http.get("/v1/auth/tokens", headers=bearer(secret))
    error = error_of(response, 403)
    assert error["code"] == "auth.insufficient_scope"
    assert error["required_scope"] == "tokens:read"
    response = create_token(http, secret, ["gateways:read"])
    assert error_of(response, 403)["required_scope"] == "tokens:write"


def test_cannot_grant_scopes_the_creator_lacks(fresh_http):
    member = bob(fresh_http)
    response = create_token(fresh_http, member["access_token"], ["gateways:read", "gateways:write"])
    assert error_of(response, 403)["code"] == "auth.scope_not_allowed"

    session = alice(fresh_http)
    writer = create_token(
        fresh_http, session["access_token"], ["tokens:write", "gateways:read"]
    ).json()
    response = create_token(fresh_http, writer["secret"], ["configurations:read"])
    assert error_of(response, 403)["code"] == "auth.scope_not_allowed"
    response = create_token(fresh_http, writer["secret"], ["gateways:read"])
    assert response.status_code == 201

    response = create_token(fresh_http, session["access_token"], ["gateways:fly"])
    assert error_of(response, 400)["code"] == "auth.invalid_scope"


# --- every malformed request gets the JSON error shape -----------------------------------------


@pytest.fixture(scope="module")
def shared_token(shared_server: DevServer) -> str:
    with httpx2.Client(base_url=shared_server.url) as http:
        return str(alice(http)["access_token"])


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        (
            "POST",
            "/v1/auth/login",
            {"content": b"{not json", "headers": JSON},
            400,
            "auth.invalid_request",
        ),
        (
            "POST",
            "/v1/auth/login",
            {"content": b"\xff\xfe", "headers": JSON},
            400,
            "auth.invalid_request",
        ),
        ("POST", "/v1/auth/login", {"json": ["a", "b"]}, 400, "auth.invalid_request"),
        ("POST", "/v1/auth/login", {"json": "text"}, 400, "auth.invalid_request"),
        (
            "POST",
            "/v1/auth/login",
            {"json": {"email": ["x"], "password": 1}},
            400,
            "auth.invalid_request",
        ),
        ("POST", "/v1/auth/login", {}, 400, "auth.invalid_request"),
        (
            "POST",
            "/v1/auth/mfa/challenge",
            {"json": {"mfa_token": 5, "code": "1"}},
            400,
            "auth.invalid_request",
        ),
        (
            "POST",
            "/v1/auth/refresh",
            {"json": {"refresh_token": None}},
            400,
            "auth.invalid_request",
        ),
        (
            "POST",
            "/v1/auth/login",
            {"data": {"email": "a", "password": "b"}},
            415,
            "auth.unsupported_media_type",
        ),
        (
            "POST",
            "/v1/auth/login",
            {"content": b"{}", "headers": {"Content-Type": "text/plain"}},
            415,
            "auth.unsupported_media_type",
        ),
        (
            "POST",
            "/v1/auth/login",
            {"content": b"{" + b" " * 70_000 + b"}", "headers": JSON},
            413,
            "auth.payload_too_large",
        ),
        (
            "POST",
            "/v1/auth/tokens",
            {"content": b"[" + b"1," * 40_000 + b"1]", "headers": JSON, "auth": True},
            413,
            "auth.payload_too_large",
        ),
        ("GET", "/nope", {}, 404, "auth.not_found"),
        ("GET", "/v1/auth/tokens/tok_x/rotate", {}, 405, "auth.method_not_allowed"),
        ("GET", "/v1/auth/login", {}, 405, "auth.method_not_allowed"),
        ("PUT", "/v1/auth/whoami", {}, 405, "auth.method_not_allowed"),
        ("DELETE", "/v1/auth/tokens/tok_does_not_exist", {"auth": True}, 404, "auth.not_found"),
        ("GET", "/v1/auth/whoami", {}, 401, "auth.unauthenticated"),
    ],
)
def test_bad_requests_get_json_errors(
    shared_server, shared_token, method, path, kwargs, status, code
):
    kwargs = dict(kwargs)
    if kwargs.pop("auth", False):
        kwargs["headers"] = {**kwargs.get("headers", {}), **bearer(shared_token)}
    with httpx2.Client(base_url=shared_server.url) as http:
        response = http.request(method, path, **kwargs)
    assert error_of(response, status)["code"] == code
    if status == 405:
        assert "Allow" in response.headers


def test_oversized_chunked_body_is_413(shared_server):
    def chunks() -> Iterator[bytes]:
        yield b'{"email": "'
        for _ in range(100):
            yield b"a" * 1024
        yield b'", "password": "x"}'

    with httpx2.Client(base_url=shared_server.url) as http:
        response = http.post("/v1/auth/login", content=chunks(), headers=JSON)
    assert error_of(response, 413)["code"] == "auth.payload_too_large"
