"""kt-devserver's DPoP (RFC 9449), in process with an injected clock: tokens bound to the key of
the token request's proof (cnf.jkt kept with the family, refreshes included), proofs checked at
the token endpoint, the API and UserInfo, nonces asked for and rotated, a bound token refused
without a proof of its key or as Bearer. kt's own proofs (kt_login.dpop) are the client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from aiohttp.test_utils import TestClient, TestServer

from kt_devserver.app import create_app
from kt_devserver.dpop import ALGORITHMS
from kt_devserver.state import Settings
from kt_login import dpop
from tests.fixtures.clock import FakeClock
from tests.fixtures.oauth_app import code_for
from tests.fixtures.oauth_client import CLIENT_ID

WHOAMI = "/v1/auth/whoami"


def make_client(clock: FakeClock, **settings: Any) -> TestClient[Any, Any]:
    app = create_app(settings=Settings(**settings), clock=clock)
    return TestClient(TestServer(app))


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    async with make_client(clock, dpop_nonce_ttl=0) as test_client:
        yield test_client


@pytest.fixture
def prover(clock: FakeClock) -> dpop.Prover:
    return dpop.Prover(dpop.DpopKey.generate(), clock=clock)


async def learned(prover: dpop.Prover, response: Any) -> bool:
    """Feed an aiohttp reply to kt's Prover, as httpx2 would have it."""
    reply = httpx2.Response(
        response.status,
        headers=list(response.headers.items()),
        content=await response.read(),
        request=httpx2.Request(response.method, str(response.url)),
    )
    return prover.learn(reply)


async def token_request(
    client: TestClient[Any, Any], data: dict[str, str], prover: dpop.Prover | None
) -> Any:
    headers = {}
    if prover is not None:
        headers["DPoP"] = prover.proof("POST", str(client.make_url("/oauth/token")))
    return await client.post("/oauth/token", data=data, headers=headers)


async def dpop_tokens(
    client: TestClient[Any, Any], clock: FakeClock, prover: dpop.Prover
) -> dict[str, Any]:
    auth, code = await code_for(client, clock, scope="openid email offline_access")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": auth.params["redirect_uri"],
        "client_id": CLIENT_ID,
        "code_verifier": auth.pkce.verifier,
    }
    response = await token_request(client, data, prover)
    if response.status == 400 and await learned(prover, response):
        response = await token_request(client, data, prover)  # the nonce it asked for
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def refresh(
    client: TestClient[Any, Any], refresh_token: str, prover: dpop.Prover | None
) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID}
    return await token_request(client, data, prover)


async def api_get(
    client: TestClient[Any, Any],
    token: str,
    prover: dpop.Prover | None,
    *,
    path: str = WHOAMI,
    scheme: str = "DPoP",
    proof: str | None = None,
) -> Any:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is None and prover is not None:
        proof = prover.proof("GET", str(client.make_url(path)), access_token=token)
    if proof is not None:
        headers["DPoP"] = proof
    return await client.get(path, headers=headers)


async def test_metadata_names_the_proof_algorithms(client):
    doc = await (await client.get("/.well-known/oauth-authorization-server")).json()
    assert doc["dpop_signing_alg_values_supported"] == list(ALGORITHMS)
    assert "ES256" in doc["dpop_signing_alg_values_supported"]


async def test_a_proof_at_the_token_endpoint_binds_the_tokens(client, clock, prover):
    tokens = await dpop_tokens(client, clock, prover)
    assert tokens["token_type"] == "DPoP"
    ok = await api_get(client, tokens["access_token"], prover)
    assert ok.status == 200, await ok.text()
    assert (await ok.json())["user"]["email"] == "alice@example.com"
    info = await api_get(client, tokens["access_token"], prover, path="/oauth/userinfo")
    assert info.status == 200 and (await info.json())["email"] == "alice@example.com"


async def test_a_bound_token_without_its_key_is_refused(client, clock, prover):
    token = (await dpop_tokens(client, clock, prover))["access_token"]
    thief = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    for attempt in (
        await api_get(client, token, None, scheme="Bearer"),
        await api_get(client, token, prover, scheme="Bearer"),
        await api_get(client, token, None),
        await api_get(client, token, thief),
        await api_get(client, token, None, path="/oauth/userinfo", scheme="Bearer"),
        await api_get(client, token, thief, path="/oauth/userinfo"),
    ):
        assert attempt.status == 401
        assert attempt.headers["WWW-Authenticate"].startswith("DPoP ")
        assert 'algs="' in attempt.headers["WWW-Authenticate"]
    body = await (await api_get(client, token, None, scheme="Bearer")).json()
    assert body["error"]["code"] == "auth.invalid_token"
    assert "bound to a DPoP key" in body["error"]["message"]
    body = await (await api_get(client, token, thief)).json()
    assert body["error"]["code"] == "auth.invalid_dpop_proof"


async def test_a_replayed_or_misdirected_proof_is_refused(client, clock, prover):
    token = (await dpop_tokens(client, clock, prover))["access_token"]
    proof = prover.proof("GET", str(client.make_url(WHOAMI)), access_token=token)
    assert (await api_get(client, token, prover, proof=proof)).status == 200
    replayed = await api_get(client, token, prover, proof=proof)
    assert replayed.status == 401
    assert "used before" in (await replayed.json())["error"]["message"]
    wrong_url = prover.proof("GET", str(client.make_url("/v1/auth/tokens")), access_token=token)
    assert (await api_get(client, token, prover, proof=wrong_url)).status == 401
    no_ath = prover.proof("GET", str(client.make_url(WHOAMI)))
    assert (await api_get(client, token, prover, proof=no_ath)).status == 401


async def test_refresh_keeps_the_binding_and_needs_the_key(client, clock, prover):
    tokens = await dpop_tokens(client, clock, prover)
    refresh_token = tokens["refresh_token"]
    thief = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    for who in (None, thief):
        refused = await refresh(client, refresh_token, who)
        assert refused.status == 400
        assert (await refused.json())["error"] == "invalid_dpop_proof"
    first_party = await client.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert first_party.status == 401
    assert "DPoP" in (await first_party.json())["error"]["message"]
    # None of those spent it: the key's holder refreshes, and the new tokens stay bound.
    renewed = await refresh(client, refresh_token, prover)
    assert renewed.status == 200, await renewed.text()
    fresh = await renewed.json()
    assert fresh["token_type"] == "DPoP" and fresh["refresh_token"] != refresh_token
    assert (await api_get(client, fresh["access_token"], prover)).status == 200
    assert (await api_get(client, fresh["access_token"], None, scheme="Bearer")).status == 401
    again = await refresh(client, fresh["refresh_token"], prover)
    assert again.status == 200 and (await again.json())["token_type"] == "DPoP"


async def test_bearer_tokens_stay_bearer(client, clock):
    auth, code = await code_for(client, clock)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": auth.params["redirect_uri"],
        "client_id": CLIENT_ID,
        "code_verifier": auth.pkce.verifier,
    }
    tokens = await (await token_request(client, data, None)).json()
    assert tokens["token_type"] == "Bearer"
    assert (await api_get(client, tokens["access_token"], None, scheme="Bearer")).status == 200
    prover = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    refused = await api_get(client, tokens["access_token"], prover)
    assert refused.status == 401 and "not DPoP-bound" in await refused.text()


async def test_a_bad_proof_spends_no_code(client, clock, prover):
    auth, code = await code_for(client, clock)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": auth.params["redirect_uri"],
        "client_id": CLIENT_ID,
        "code_verifier": auth.pkce.verifier,
    }
    bad = prover.proof("POST", str(client.make_url("/oauth/elsewhere")))
    refused = await client.post("/oauth/token", data=data, headers={"DPoP": bad})
    assert refused.status == 400 and (await refused.json())["error"] == "invalid_dpop_proof"
    ok = await token_request(client, data, prover)
    assert ok.status == 200 and (await ok.json())["token_type"] == "DPoP"


async def test_nonces_are_asked_for_and_rotate(clock, prover):
    async with make_client(clock, dpop_nonce_ttl=300) as client:
        auth, code = await code_for(client, clock, scope="openid offline_access")
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": auth.params["redirect_uri"],
            "client_id": CLIENT_ID,
            "code_verifier": auth.pkce.verifier,
        }
        asked = await token_request(client, data, prover)
        assert asked.status == 400 and (await asked.json())["error"] == "use_dpop_nonce"
        assert asked.headers["DPoP-Nonce"]
        assert await learned(prover, asked)
        done = await token_request(client, data, prover)
        assert done.status == 200 and done.headers["DPoP-Nonce"]
        tokens = await done.json()
        token = tokens["access_token"]
        assert (await api_get(client, token, prover)).status == 200  # the same server's nonce
        clock.advance(600)  # two periods on: the nonce kt holds is no longer accepted
        stale = await api_get(client, token, prover)
        assert stale.status == 401
        assert 'error="use_dpop_nonce"' in stale.headers["WWW-Authenticate"]
        assert await learned(prover, stale)
        assert (await api_get(client, token, prover)).status == 200
        clock.advance(600)
        stale = await refresh(client, tokens["refresh_token"], prover)
        assert stale.status == 400 and await learned(prover, stale)
        renewed = await refresh(client, tokens["refresh_token"], prover)  # not spent before
        assert renewed.status == 200
