"""In-process tests of the device authorization grant with an injected clock: polling interval and
`slow_down` (+5 s per RFC 8628 §3.5), `expires_in`, the wrong-code window, ID token times.
No process, no sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kt_devserver import demo, totp
from kt_devserver.app import create_app
from kt_devserver.oauth.device_pages import (
    MAX_WRONG_CODES_OVERALL,
    MAX_WRONG_CODES_PER_SESSION,
    WRONG_CODE_WINDOW,
    EntryLimiter,
)
from kt_devserver.state import Settings
from tests.fixtures.clock import FakeClock
from tests.fixtures.oauth_app import Page, id_claims, page_of, submit
from tests.fixtures.oauth_client import ALL_SCOPES, CLIENT_ID, DEVICE_GRANT, NOT_VALID

TTL = 600
INTERVAL = 5


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    settings = Settings(device_code_ttl=TTL, device_interval=INTERVAL)
    async with TestClient(TestServer(create_app(settings=settings, clock=clock))) as test_client:
        yield test_client


async def authorize_device(client: TestClient[Any, Any], scope: str = ALL_SCOPES) -> Any:
    response = await client.post(
        "/oauth/device_authorization", data={"client_id": CLIENT_ID, "scope": scope}
    )
    assert response.status == 200
    return await response.json()


async def poll(client: TestClient[Any, Any], device_code: str) -> tuple[int, Any]:
    data = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLIENT_ID}
    response = await client.post("/oauth/token", data=data)
    return response.status, await response.json()


async def error_of(client: TestClient[Any, Any], device_code: str) -> str:
    status, body = await poll(client, device_code)
    assert status == 400, body
    return str(body["error"])


async def enter(client: TestClient[Any, Any], user_code: str) -> Page:
    page = await page_of(await client.get("/oauth/device"))
    assert page.kind == "device-code"
    return await submit(client, page, user_code=user_code)


async def decide(
    client: TestClient[Any, Any], clock: FakeClock, user_code: str, decision: str, user: str
) -> Page:
    page = await enter(client, user_code)
    assert page.kind == "device-confirm", page.text
    page = await submit(client, page, decision="continue")
    if page.kind == "login":
        if user == "alice":
            page = await submit(client, page, email=demo.ALICE_EMAIL, password=demo.ALICE_PASSWORD)
        else:
            page = await submit(client, page, email=demo.BOB_EMAIL, password=demo.BOB_PASSWORD)
            assert page.kind == "mfa"
            page = await submit(client, page, code=totp.code(demo.BOB_TOTP_SECRET, clock.now))
    assert page.kind == "device-consent", page.text
    return await submit(client, page, decision=decision)


# --- interval and slow_down --------------------------------------------------------------------


async def test_polling_at_the_interval_is_pending(client, clock):
    grant = await authorize_device(client)
    assert grant["interval"] == INTERVAL
    for _ in range(4):
        assert await error_of(client, grant["device_code"]) == "authorization_pending"
        clock.advance(INTERVAL)


async def test_slow_down_adds_five_seconds_for_this_and_every_later_poll(client, clock):
    code = (await authorize_device(client))["device_code"]
    assert await error_of(client, code) == "authorization_pending"  # the first poll: fine
    clock.advance(INTERVAL - 0.5)
    assert await error_of(client, code) == "slow_down"  # interval is now 10
    clock.advance(INTERVAL)
    assert await error_of(client, code) == "slow_down"  # 5 < 10: interval is now 15
    clock.advance(14.9)
    assert await error_of(client, code) == "slow_down"  # 14.9 < 15: interval is now 20
    clock.advance(20)
    assert await error_of(client, code) == "authorization_pending"  # waited the full 20
    clock.advance(20)
    assert await error_of(client, code) == "authorization_pending"  # and it stays at 20
    clock.advance(19)
    status, body = await poll(client, code)
    assert (status, body["error"]) == (400, "slow_down")
    assert "25 seconds" in body["error_description"]


async def test_slow_down_is_per_device_code(client, clock):
    first = (await authorize_device(client))["device_code"]
    second = (await authorize_device(client))["device_code"]
    assert await error_of(client, first) == "authorization_pending"
    assert await error_of(client, second) == "authorization_pending"
    assert await error_of(client, first) == "slow_down"
    clock.advance(INTERVAL)
    assert await error_of(client, second) == "authorization_pending"


async def test_an_approved_code_is_answered_even_when_polled_fast(client, clock):
    grant = await authorize_device(client)
    assert await error_of(client, grant["device_code"]) == "authorization_pending"
    assert (await decide(client, clock, grant["user_code"], "approve", "alice")).kind == "approved"
    status, body = await poll(client, grant["device_code"])
    assert status == 200 and body["access_token"].startswith("kta_")


# --- expiry ------------------------------------------------------------------------------------


async def test_expired_token_after_expires_in(client, clock):
    grant = await authorize_device(client)
    assert grant["expires_in"] == TTL
    clock.advance(TTL - 1)
    assert await error_of(client, grant["device_code"]) == "authorization_pending"
    clock.advance(1)
    assert await error_of(client, grant["device_code"]) == "expired_token"
    clock.advance(INTERVAL)
    assert await error_of(client, grant["device_code"]) == "expired_token"


async def test_an_approval_not_collected_in_time_expires(client, clock):
    grant = await authorize_device(client)
    assert (await decide(client, clock, grant["user_code"], "approve", "alice")).kind == "approved"
    clock.advance(TTL)
    assert await error_of(client, grant["device_code"]) == "expired_token"


async def test_an_expired_user_code_is_not_valid(client, clock):
    grant = await authorize_device(client)
    clock.advance(TTL)
    page = await enter(client, grant["user_code"])
    assert page.status == 400 and NOT_VALID in page.text


async def test_a_code_that_expires_during_sign_in_cannot_be_approved(client, clock):
    grant = await authorize_device(client)
    page = await enter(client, grant["user_code"])
    page = await submit(client, page, decision="continue")
    page = await submit(client, page, email=demo.ALICE_EMAIL, password=demo.ALICE_PASSWORD)
    assert page.kind == "device-consent"
    clock.advance(TTL)
    late = await submit(client, page, decision="approve")
    assert late.status == 400 and late.kind == "error"
    assert await error_of(client, grant["device_code"]) == "expired_token"


async def test_custom_ttl_and_interval(clock):
    settings = Settings(device_code_ttl=30, device_interval=2)
    async with TestClient(TestServer(create_app(settings=settings, clock=clock))) as client:
        grant = await authorize_device(client)
        assert (grant["expires_in"], grant["interval"]) == (30, 2)
        assert await error_of(client, grant["device_code"]) == "authorization_pending"
        clock.advance(1)
        assert await error_of(client, grant["device_code"]) == "slow_down"  # interval now 7
        clock.advance(7)
        assert await error_of(client, grant["device_code"]) == "authorization_pending"
        clock.advance(30)
        assert await error_of(client, grant["device_code"]) == "expired_token"


# --- tokens ------------------------------------------------------------------------------------


async def test_id_token_times(client, clock):
    grant = await authorize_device(client)
    signed_in_at = clock.now
    assert (await decide(client, clock, grant["user_code"], "approve", "bob")).kind == "approved"
    clock.advance(42)
    status, body = await poll(client, grant["device_code"])
    assert status == 200, body
    claims = await id_claims(client, body["id_token"])
    assert claims["iat"] == int(clock.now)  # fresh: the client checks iat (no nonce here)
    assert claims["auth_time"] == int(signed_in_at)
    assert claims["acr"] == "urn:keeptrusts:acr:mfa" and claims["amr"] == ["pwd", "otp"]
    assert "nonce" not in claims
    whoami = await client.get(
        "/v1/auth/whoami", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert whoami.status == 200 and (await whoami.json())["mfa_authenticated"] is True


# --- wrong user codes --------------------------------------------------------------------------


async def test_wrong_codes_window(client, clock):
    assert MAX_WRONG_CODES_PER_SESSION == 5 and WRONG_CODE_WINDOW == 600
    for _ in range(MAX_WRONG_CODES_PER_SESSION):
        assert (await enter(client, "BCDF-BCDF")).status == 400
        clock.advance(60)
    grant = await authorize_device(client)  # lives 600 s from here
    limited = await enter(client, grant["user_code"])
    assert limited.status == 429
    # The oldest wrong code leaves the window 600 s after it was typed, 300 s from now.
    assert limited.headers["Retry-After"] == "300"
    clock.advance(299)
    assert (await enter(client, grant["user_code"])).status == 429
    clock.advance(1)
    assert (await enter(client, grant["user_code"])).kind == "device-confirm"


def test_entry_limiter_caps_the_whole_server(clock):
    limiter = EntryLimiter()
    for i in range(MAX_WRONG_CODES_OVERALL):
        session = f"bs_{i}"
        assert limiter.retry_after(session, clock.now) is None
        limiter.record_wrong_code(session, clock.now)
    assert limiter.retry_after("bs_fresh", clock.now) == WRONG_CODE_WINDOW
    clock.advance(WRONG_CODE_WINDOW)
    assert limiter.retry_after("bs_fresh", clock.now) is None
