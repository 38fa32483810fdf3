"""In-process tests of the OAuth server with an injected clock: code, token, transaction and
sign-in session lifetimes, `max_age`, and the ID token's times. No process, no sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kt_devserver import demo, totp
from kt_devserver.app import create_app
from kt_devserver.oauth.authorize import BROWSER_SESSION_TTL, TRANSACTION_TTL
from kt_devserver.oauth.grants.authorization_code import AUTHORIZATION_CODE_TTL
from kt_devserver.state import Settings
from tests.fixtures.clock import T0, FakeClock
from tests.fixtures.oauth_app import (
    authorize,
    code_for,
    exchange,
    id_claims,
    sign_in,
    submit,
)
from tests.fixtures.oauth_client import CLIENT_ID, authorization

ACCESS_TTL = 60
REFRESH_TTL = 3600


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    settings = Settings(access_token_ttl=ACCESS_TTL, refresh_token_ttl=REFRESH_TTL)
    app = create_app(settings=settings, clock=clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_code_lifetime_is_sixty_seconds(client, clock):
    assert AUTHORIZATION_CODE_TTL <= 60
    auth, code = await code_for(client, clock)
    clock.advance(AUTHORIZATION_CODE_TTL)
    status, body = await exchange(client, auth, code)
    assert (status, body["error"]) == (400, "invalid_grant")
    auth, code = await code_for(client, clock)
    clock.advance(AUTHORIZATION_CODE_TTL - 1)
    status, body = await exchange(client, auth, code)
    assert status == 200, body


async def test_id_token_times_follow_the_clock(client, clock):
    auth, code = await code_for(client, clock, "bob")
    clock.advance(5)
    status, body = await exchange(client, auth, code)
    assert status == 200, body
    claims = await id_claims(client, body["id_token"])
    assert claims["auth_time"] == int(T0)
    assert claims["iat"] == int(T0) + 5
    assert claims["exp"] > claims["iat"]
    assert claims["iss"] == str(client.make_url("")).rstrip("/")
    assert claims["amr"] == ["pwd", "otp"]


async def test_tokens_expire_on_the_clock(client, clock):
    auth, code = await code_for(client, clock)
    _, body = await exchange(client, auth, code)
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert body["expires_in"] == ACCESS_TTL
    clock.advance(ACCESS_TTL)
    me = await client.get("/v1/auth/whoami", headers=bearer)
    assert me.status == 401 and (await me.json())["error"]["code"] == "auth.token_expired"
    assert (await client.get("/oauth/userinfo", headers=bearer)).status == 401
    data = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    data["client_id"] = CLIENT_ID
    refreshed = await client.post("/oauth/token", data=data)
    assert refreshed.status == 200
    renewed = await refreshed.json()
    clock.advance(REFRESH_TTL)
    data["refresh_token"] = renewed["refresh_token"]
    expired = await client.post("/oauth/token", data=data)
    assert expired.status == 400 and (await expired.json())["error"] == "invalid_grant"


async def test_refresh_never_extends_the_family(client, clock):
    auth, code = await code_for(client, clock)
    _, body = await exchange(client, auth, code)
    clock.advance(REFRESH_TTL - 10)
    data = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    data["client_id"] = CLIENT_ID
    renewed = await (await client.post("/oauth/token", data=data)).json()
    assert renewed["expires_in"] == 10


async def test_max_age_forces_a_fresh_sign_in(client, clock):
    await code_for(client, clock)
    clock.advance(100)
    assert (await authorize(client, authorization(max_age="500"))).kind == "consent"
    page = await authorize(client, authorization(max_age="50"))
    assert page.kind == "login"
    page = await sign_in(client, clock, page)
    callback = await submit(client, page, decision="approve")
    assert callback.kind == "redirect"
    bad = await authorize(client, authorization(max_age="soon"))
    assert bad.query()["error"] == "invalid_request"


async def test_auth_time_is_the_sign_in_not_the_reuse(client, clock):
    await code_for(client, clock)
    clock.advance(300)
    auth, code = await code_for(client, clock)
    _, body = await exchange(client, auth, code)
    claims = await id_claims(client, body["id_token"])
    assert claims["auth_time"] == int(T0)
    assert claims["iat"] == int(T0) + 300


async def test_the_sign_in_session_expires(client, clock):
    await code_for(client, clock)
    clock.advance(BROWSER_SESSION_TTL)
    assert (await authorize(client, authorization())).kind == "login"


async def test_a_stale_transaction_is_refused(client, clock):
    page = await authorize(client, authorization())
    clock.advance(TRANSACTION_TTL)
    late = await submit(client, page, email=demo.ALICE_EMAIL, password=demo.ALICE_PASSWORD)
    assert late.status == 400 and "expired" in late.text


async def test_a_consent_form_answers_once(client, clock):
    page = await sign_in(client, clock, await authorize(client, authorization()))
    assert (await submit(client, page, decision="approve")).kind == "redirect"
    again = await submit(client, page, decision="approve")
    assert again.status == 400


async def test_bob_five_wrong_codes_end_the_attempt(client, clock):
    auth = authorization()
    page = await authorize(client, auth)
    page = await submit(client, page, email=demo.BOB_EMAIL, password=demo.BOB_PASSWORD)
    good = totp.code(demo.BOB_TOTP_SECRET, clock.now)
    wrong = "000000" if good != "000000" else "111111"
    for _ in range(4):
        page = await submit(client, page, code=wrong)
        assert page.kind == "mfa" and "Wrong code." in page.text
    final = await submit(client, page, code=wrong)
    query = final.query()
    assert query["error"] == "access_denied" and query["state"] == auth.params["state"]
