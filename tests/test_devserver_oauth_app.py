"""In-process tests of the OAuth server with an injected clock: code, token, transaction and
sign-in session lifetimes, `max_age`, and the ID token's times. No process, no sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import KeySet

from kt_devserver import demo, totp
from kt_devserver.app import create_app
from kt_devserver.oauth.authorize import BROWSER_SESSION_TTL, TRANSACTION_TTL
from kt_devserver.oauth.grants.authorization_code import AUTHORIZATION_CODE_TTL
from kt_devserver.state import Settings
from tests.test_devserver_oauth import CLIENT_ID, Authorization, _FormParser, authorization

T0 = 1_800_000_000.0
ACCESS_TTL = 60
REFRESH_TTL = 3600


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    settings = Settings(access_token_ttl=ACCESS_TTL, refresh_token_ttl=REFRESH_TTL)
    app = create_app(settings=settings, clock=clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


class Page:
    def __init__(self, status: int, text: str, headers: Any) -> None:
        self.status = status
        self.text = text
        self.headers = headers

    @property
    def kind(self) -> str:
        if self.status == 302:
            return "redirect"
        if self.status != 200:
            return "error"
        parser = _FormParser()
        parser.feed(self.text)
        (form,) = parser.forms
        assert form.form_id is not None
        return form.form_id.removesuffix("-form")

    def query(self) -> dict[str, str]:
        assert self.status == 302, self.text
        return {k: v[0] for k, v in parse_qs(urlsplit(self.headers["Location"]).query).items()}


async def _page(response: Any) -> Page:
    return Page(response.status, await response.text(), response.headers)


async def authorize(client: TestClient[Any, Any], auth: Authorization) -> Page:
    return await _page(
        await client.get("/oauth/authorize", params=auth.params, allow_redirects=False)
    )


async def submit(client: TestClient[Any, Any], page: Page, **fields: str) -> Page:
    parser = _FormParser()
    parser.feed(page.text)
    (form,) = parser.forms
    response = await client.post(form.action, data={**form.fields, **fields}, allow_redirects=False)
    return await _page(response)


async def sign_in(
    client: TestClient[Any, Any], clock: FakeClock, page: Page, user: str = "alice"
) -> Page:
    assert page.kind == "login"
    if user == "alice":
        return await submit(client, page, email=demo.ALICE_EMAIL, password=demo.ALICE_PASSWORD)
    page = await submit(client, page, email=demo.BOB_EMAIL, password=demo.BOB_PASSWORD)
    assert page.kind == "mfa"
    return await submit(client, page, code=totp.code(demo.BOB_TOTP_SECRET, clock.now))


async def code_for(
    client: TestClient[Any, Any], clock: FakeClock, user: str = "alice", **overrides: str
) -> tuple[Authorization, str]:
    auth = authorization(**overrides)
    page = await authorize(client, auth)
    if page.kind == "login":
        page = await sign_in(client, clock, page, user)
    assert page.kind == "consent", page.text
    callback = await submit(client, page, decision="approve")
    return auth, callback.query()["code"]


async def exchange(client: TestClient[Any, Any], auth: Authorization, code: str) -> Any:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": auth.params["redirect_uri"],
        "client_id": CLIENT_ID,
        "code_verifier": auth.pkce.verifier,
    }
    response = await client.post("/oauth/token", data=data)
    return response.status, await response.json()


async def id_claims(client: TestClient[Any, Any], id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(await (await client.get("/oauth/jwks")).json())
    return dict(jwt.decode(id_token, keys, algorithms=["RS256"]).claims)


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
