"""In-process tests of the kt_devserver app (aiohttp test client, injected clock): time-dependent
rules and request validation, without starting a process or sleeping."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kt_devserver import demo, totp
from kt_devserver.app import create_app
from kt_devserver.db import Database
from kt_devserver.schema import ADDED_COLUMNS
from kt_devserver.signin_checks import ACCOUNT_FREE_FAILURES, ADDRESS_FREE_FAILURES
from kt_devserver.state import Settings
from kt_devserver.throttle import MAX_KEYS, Backoff, Throttle, TooManyAttempts
from kt_login.www_authenticate import parse
from tests.fixtures.clock import FakeClock


@pytest.fixture
def settings() -> Settings:
    return Settings(access_token_ttl=60, refresh_token_ttl=3600, mfa_token_ttl=120)


@pytest.fixture
async def client(clock: FakeClock, settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings=settings, clock=clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def post(client: TestClient[Any, Any], path: str, body: Any, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post(path, json=body, headers=headers)


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


async def alice(client: TestClient[Any, Any]) -> dict[str, Any]:
    response = await post(
        client, "/v1/auth/login", {"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD}
    )
    assert response.status == 200
    return await response.json()


async def bob(client: TestClient[Any, Any], clock: FakeClock) -> dict[str, Any]:
    response = await post(
        client, "/v1/auth/login", {"email": demo.BOB_EMAIL, "password": demo.BOB_PASSWORD}
    )
    mfa_token = (await error_of(response, 401))["mfa_token"]
    response = await post(
        client,
        "/v1/auth/mfa/challenge",
        {"mfa_token": mfa_token, "code": totp.code(demo.BOB_TOTP_SECRET, clock())},
    )
    assert response.status == 200
    return await response.json()


async def whoami(client: TestClient[Any, Any], token: str):
    return await client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})


async def test_access_token_expires_then_refresh_works(client, clock):
    session = await alice(client)
    assert session["expires_in"] == 60
    clock.advance(59)
    assert (await whoami(client, session["access_token"])).status == 200
    clock.advance(1)
    error = await error_of(await whoami(client, session["access_token"]), 401)
    assert error["code"] == "auth.token_expired"
    response = await post(client, "/v1/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert response.status == 200
    fresh = await response.json()
    assert fresh["session_id"] == session["session_id"]
    assert fresh["refresh_expires_in"] == 3600 - 60  # absolute family expiry, not extended
    assert (await whoami(client, fresh["access_token"])).status == 200


async def test_refresh_token_expires_absolutely(client, clock):
    session = await alice(client)
    clock.advance(3600)
    response = await post(client, "/v1/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert (await error_of(response, 401))["code"] == "auth.invalid_grant"


async def test_access_token_never_outlives_its_session(clock):
    app = create_app(settings=Settings(access_token_ttl=900, refresh_token_ttl=100), clock=clock)
    async with TestClient(TestServer(app)) as client:
        session = await alice(client)
        assert session["expires_in"] == 100


async def test_mfa_token_expires(client, clock):
    response = await post(
        client, "/v1/auth/login", {"email": demo.BOB_EMAIL, "password": demo.BOB_PASSWORD}
    )
    error = await error_of(response, 401)
    assert error["code"] == "auth.mfa_required"
    assert error["expires_in"] == 120
    clock.advance(120)
    response = await post(
        client,
        "/v1/auth/mfa/challenge",
        {"mfa_token": error["mfa_token"], "code": totp.code(demo.BOB_TOTP_SECRET, clock())},
    )
    assert (await error_of(response, 401))["code"] == "auth.mfa_token_expired"


async def test_five_wrong_codes_burn_the_mfa_token(client, clock):
    response = await post(
        client, "/v1/auth/login", {"email": demo.BOB_EMAIL, "password": demo.BOB_PASSWORD}
    )
    mfa_token = (await error_of(response, 401))["mfa_token"]
    right = totp.code(demo.BOB_TOTP_SECRET, clock())
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        response = await post(
            client, "/v1/auth/mfa/challenge", {"mfa_token": mfa_token, "code": wrong}
        )
        assert (await error_of(response, 401))["code"] == "auth.invalid_mfa_code"
    response = await post(client, "/v1/auth/mfa/challenge", {"mfa_token": mfa_token, "code": right})
    assert (await error_of(response, 401))["code"] == "auth.mfa_token_expired"


async def test_totp_accepts_one_step_of_drift_only(client, clock):
    for offset, ok in ((-30, True), (30, True), (-90, False), (90, False)):
        response = await post(
            client, "/v1/auth/login", {"email": demo.BOB_EMAIL, "password": demo.BOB_PASSWORD}
        )
        mfa_token = (await error_of(response, 401))["mfa_token"]
        code = totp.code(demo.BOB_TOTP_SECRET, clock() + offset)
        response = await post(
            client, "/v1/auth/mfa/challenge", {"mfa_token": mfa_token, "code": code}
        )
        assert (response.status == 200) is ok, offset


async def test_api_token_expires(client, clock):
    session = await alice(client)
    response = await post(
        client,
        "/v1/auth/tokens",
        {"name": "short", "scopes": ["tokens:read"], "expires_in_days": 1},
        session["access_token"],
    )
    assert response.status == 201
    secret = (await response.json())["secret"]
    assert (await whoami(client, secret)).status == 200
    clock.advance(24 * 3600)
    assert (await error_of(await whoami(client, secret), 401))["code"] == "auth.token_expired"
    listed = await client.get(
        "/v1/auth/tokens",
        headers={"Authorization": f"Bearer {(await alice(client))['access_token']}"},
    )
    (info,) = (await listed.json())["tokens"]
    assert info["state"] == "expired"
    assert info["last_used_at"] == "2027-01-15T08:00:00Z"  # T0, the one successful use


async def test_step_up_when_mfa_is_older_than_max_age(clock):
    settings = Settings(refresh_token_ttl=86400, mfa_max_age=300)
    app = create_app(settings=settings, clock=clock)
    async with TestClient(TestServer(app)) as client:
        session = await bob(client, clock)
        created = await post(
            client,
            "/v1/auth/tokens",
            {"name": "ci", "scopes": ["tokens:read"]},
            session["access_token"],
        )
        token_id = (await created.json())["token"]["id"]
        clock.advance(301)
        refreshed = await post(
            client, "/v1/auth/refresh", {"refresh_token": session["refresh_token"]}
        )
        old_session = await refreshed.json()
        rotate = f"/v1/auth/tokens/{token_id}/rotate"
        response = await post(client, rotate, None, old_session["access_token"])
        # RFC 9470: 401 with the challenge, the JSON body as before (issue 14 item 3)
        error = await error_of(response, 401)
        assert error["code"] == "auth.mfa_required"
        assert error["expires_in"] == settings.mfa_token_ttl
        challenge = parse(response.headers.getall("WWW-Authenticate"))
        assert challenge[0].params["error"] == "insufficient_user_authentication"
        assert challenge[0].params["max_age"] == "300"
        response = await post(
            client,
            "/v1/auth/mfa/challenge",
            {"mfa_token": error["mfa_token"], "code": totp.code(demo.BOB_TOTP_SECRET, clock())},
        )
        stepped_up = await response.json()
        assert stepped_up["mfa_authenticated"] is True
        assert stepped_up["session_id"] != old_session["session_id"]
        response = await post(client, rotate, None, stepped_up["access_token"])
        assert response.status == 200
        # The step-up replaced nothing: the older session still works.
        assert (await whoami(client, old_session["access_token"])).status == 200


async def test_unexpected_exception_is_a_json_500_without_the_body(caplog):
    app = create_app()

    async def boom(request: web.Request) -> web.Response:
        await request.read()
        raise RuntimeError("canary-" + request.headers["X-Canary"])

    app.router.add_post("/boom", boom)
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.DEBUG):
            response = await client.post(
                "/boom",
                json={"password": "canary-body-password"},
                headers={"X-Canary": "in-exception-message"},
            )
        error = await error_of(response, 500)
        assert error["code"] == "auth.internal"
    assert "RuntimeError" in caplog.text
    assert "canary-body-password" not in caplog.text
    assert "canary-in-exception-message" not in caplog.text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "alice@example.com"}, "auth.invalid_request"),
        ({"email": 1, "password": "x"}, "auth.invalid_request"),
        ({"email": "alice@example.com", "password": ["x"]}, "auth.invalid_request"),
        ({"email": "", "password": "x"}, "auth.invalid_request"),
    ],
)
async def test_login_field_validation(client, body, code):
    response = await post(client, "/v1/auth/login", body)
    assert (await error_of(response, 400))["code"] == code


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "x"}, 400, "auth.invalid_request"),
        ({"name": "x", "scopes": []}, 400, "auth.invalid_request"),
        ({"name": "x", "scopes": "tokens:read"}, 400, "auth.invalid_request"),
        ({"name": "x", "scopes": [1]}, 400, "auth.invalid_request"),
        ({"name": "x", "scopes": ["nope:read"]}, 400, "auth.invalid_scope"),
        (
            {"name": "x", "scopes": ["tokens:read"], "expires_in_days": 0},
            400,
            "auth.invalid_request",
        ),
        (
            {"name": "x", "scopes": ["tokens:read"], "expires_in_days": 366},
            400,
            "auth.invalid_request",
        ),
        (
            {"name": "x", "scopes": ["tokens:read"], "expires_in_days": True},
            400,
            "auth.invalid_request",
        ),
        (
            {"name": "x", "scopes": ["tokens:read"], "expires_in_days": 1.5},
            400,
            "auth.invalid_request",
        ),
        ({"name": "", "scopes": ["tokens:read"]}, 400, "auth.invalid_request"),
    ],
)
async def test_token_create_validation(client, body, status, code):
    session = await alice(client)
    response = await post(client, "/v1/auth/tokens", body, session["access_token"])
    assert (await error_of(response, status))["code"] == code


async def test_token_create_defaults_and_bounds(client, clock):
    session = await alice(client)
    response = await post(
        client,
        "/v1/auth/tokens",
        {"name": "x", "scopes": ["tokens:read", "gateways:read", "tokens:read"]},
        session["access_token"],
    )
    assert response.status == 201
    reply = await response.json()
    info = reply["token"]
    assert info["scopes"] == ["gateways:read", "tokens:read"]
    assert info["created_at"] == "2027-01-15T08:00:00Z"
    assert info["expires_at"] == "2027-04-15T08:00:00Z"  # 90 days
    assert info["prefix"] == reply["secret"][:12]
    assert info["id"].startswith("tok_")
    assert (info["last_used_at"], info["revoked_at"], info["state"]) == (None, None, "active")


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer kta_unknown", "Basic abc", "Bearer kt_live_unknown", "Bearer other"],
)
async def test_unknown_credentials_are_unauthenticated(client, header):
    headers = {"Authorization": header} if header else {}
    response = await client.get("/v1/auth/whoami", headers=headers)
    assert (await error_of(response, 401))["code"] == "auth.unauthenticated"


async def test_logout_with_only_a_refresh_token(client):
    session = await alice(client)
    response = await post(client, "/v1/auth/logout", {"refresh_token": session["refresh_token"]})
    assert response.status == 200
    assert await response.json() == {"revoked": True}
    error = await error_of(await whoami(client, session["access_token"]), 401)
    assert error["code"] == "auth.token_revoked"


async def test_logout_without_any_credential_is_refused(client):
    response = await client.post("/v1/auth/logout")
    assert (await error_of(response, 401))["code"] == "auth.unauthenticated"


async def test_responses_are_not_cacheable(client):
    session = await alice(client)
    response = await whoami(client, session["access_token"])
    assert response.headers["Cache-Control"] == "no-store"
    response = await client.get("/nope")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"].startswith("application/json")


async def test_token_made_with_a_token_ends_with_its_parent(client, clock):
    session = (await alice(client))["access_token"]
    body = {"name": "parent", "scopes": ["tokens:write", "gateways:read"], "expires_in_days": 1}
    parent = await (await post(client, "/v1/auth/tokens", body, session)).json()
    clock.advance(23 * 3600)
    body = {"name": "child", "scopes": ["gateways:read"], "expires_in_days": 30}
    response = await post(client, "/v1/auth/tokens", body, parent["secret"])
    assert response.status == 201
    child = await response.json()
    assert child["token"]["expires_at"] == parent["token"]["expires_at"]
    clock.advance(3600 - 1)
    assert (await whoami(client, child["secret"])).status == 200
    clock.advance(1)
    error = await error_of(await whoami(client, child["secret"]), 401)
    assert error["code"] == "auth.token_expired"


def test_a_database_from_before_the_added_columns_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    Database(path).close()
    with sqlite3.connect(path) as old:
        for table, column, _ in ADDED_COLUMNS:
            old.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    database = Database(path)
    try:
        for table, column, _ in ADDED_COLUMNS:
            names = {row[1] for row in database.connection.execute(f"PRAGMA table_info({table})")}
            assert column in names
    finally:
        database.close()


# --- throttling and TOTP replay (signin_checks.py), on the injected clock ----------------------


async def login_as(client: TestClient[Any, Any], email: str, password: str):
    return await post(client, "/v1/auth/login", {"email": email, "password": password})


async def fail_logins(client: TestClient[Any, Any], email: str, times: int) -> None:
    for _ in range(times):
        response = await login_as(client, email, "wrong")
        assert (await error_of(response, 401))["code"] == "auth.invalid_credentials"


async def retry_after(response: Any) -> int:
    error = await error_of(response, 429)
    assert error["code"] == "auth.too_many_attempts"
    assert response.headers["Retry-After"] == str(error["retry_after"])
    return int(error["retry_after"])


@pytest.mark.parametrize("email", [demo.ALICE_EMAIL, "nobody@example.com"])
async def test_password_backoff_doubles_up_to_the_lockout_then_success_resets(clock, email):
    settings = Settings(throttle_base_delay=2, throttle_max_delay=16)
    async with TestClient(TestServer(create_app(settings=settings, clock=clock))) as client:
        await fail_logins(client, email, ACCOUNT_FREE_FAILURES)
        for wait in (2, 4, 8, 16, 16):  # doubling, capped at --throttle-max-delay
            assert await retry_after(await login_as(client, email, "wrong")) == wait
            clock.advance(wait - 1)
            assert await retry_after(await login_as(client, email, "wrong")) == 1
            clock.advance(1)
            await fail_logins(client, email, 1)  # allowed again, and wrong again
        clock.advance(16)
        if email == demo.ALICE_EMAIL:
            assert (await login_as(client, email, demo.ALICE_PASSWORD)).status == 200
            await fail_logins(client, email, ACCOUNT_FREE_FAILURES)  # counting starts over
        else:
            await fail_logins(client, email, 1)


async def test_failures_are_forgotten_after_an_hour_without_any(clock):
    settings = Settings(throttle_base_delay=1, throttle_max_delay=900)
    async with TestClient(TestServer(create_app(settings=settings, clock=clock))) as client:
        await fail_logins(client, demo.ALICE_EMAIL, ACCOUNT_FREE_FAILURES)
        assert await retry_after(await login_as(client, demo.ALICE_EMAIL, "wrong")) == 1
        clock.advance(3600)
        await fail_logins(client, demo.ALICE_EMAIL, ACCOUNT_FREE_FAILURES)


async def test_throttling_off_with_a_zero_base_delay(clock):
    settings = Settings(throttle_base_delay=0)
    async with TestClient(TestServer(create_app(settings=settings, clock=clock))) as client:
        await fail_logins(client, demo.ALICE_EMAIL, ADDRESS_FREE_FAILURES + 1)
        assert (await login_as(client, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)).status == 200


async def bob_mfa_token(client: TestClient[Any, Any]) -> str:
    response = await login_as(client, demo.BOB_EMAIL, demo.BOB_PASSWORD)
    return str((await error_of(response, 401))["mfa_token"])


async def answer(client: TestClient[Any, Any], code: str):
    token = await bob_mfa_token(client)
    return await post(client, "/v1/auth/mfa/challenge", {"mfa_token": token, "code": code})


async def test_a_totp_step_is_accepted_once_and_never_an_older_one(client, clock):
    now = totp.code(demo.BOB_TOTP_SECRET, clock())
    previous = totp.code(demo.BOB_TOTP_SECRET, clock() - 30)
    following = totp.code(demo.BOB_TOTP_SECRET, clock() + 30)
    assert (await answer(client, now)).status == 200
    for code in (now, previous):
        error = await error_of(await answer(client, code), 401)
        assert error["code"] == "auth.invalid_mfa_code"
        assert error["message"].startswith("That code was already used; wait for the next one")
    assert (await answer(client, following)).status == 200  # the next step, already valid
    clock.advance(30)
    error = await error_of(await answer(client, following), 401)
    assert "already used" in error["message"]
    clock.advance(30)
    assert (await answer(client, totp.code(demo.BOB_TOTP_SECRET, clock()))).status == 200


async def test_mfa_backoff_counts_across_tokens_and_a_success_resets_it(client, clock):
    right = totp.code(demo.BOB_TOTP_SECRET, clock())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(ACCOUNT_FREE_FAILURES):
        assert (await answer(client, wrong)).status == 401
    assert await retry_after(await answer(client, right)) == 1
    clock.advance(1)
    assert (await answer(client, right)).status == 200
    clock.advance(30)
    again = totp.code(demo.BOB_TOTP_SECRET, clock())
    for _ in range(ACCOUNT_FREE_FAILURES):
        assert (await answer(client, wrong)).status == 401
    assert (await answer(client, again)).status == 429


def test_throttle_keeps_a_bounded_number_of_keys():
    backoff = Backoff(free=1, base_delay=60, max_delay=60)
    throttle = Throttle()
    throttle.attempt({"first": backoff}, 0.0)
    for i in range(MAX_KEYS):
        throttle.attempt({f"key{i}": backoff}, 1.0)
    throttle.attempt({"first": backoff}, 2.0)  # evicted as the oldest: not waiting any more
    with pytest.raises(TooManyAttempts) as refused:
        throttle.attempt({f"key{MAX_KEYS - 1}": backoff}, 2.0)
    assert refused.value.retry_after == 59
