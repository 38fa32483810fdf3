"""kt-devserver's "copy this code" page (issue 13 item 1): `{issuer}/oauth/remote-callback`, a
redirect URI on the server itself for a CLI whose loopback the browser cannot reach. It is
announced in the metadata, accepted exactly for kt-cli (never another host's such path), shows
the whole answer to paste back (code, state, iss), and its code is exchanged like any other."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kt_devserver.app import create_app
from kt_devserver.state import Settings
from tests.fixtures.clock import FakeClock
from tests.fixtures.oauth_app import authorize, code_for, exchange, page_of, sign_in, submit
from tests.fixtures.oauth_client import authorization


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(settings=Settings(), clock=clock))) as c:
        yield c


def issuer_of(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_the_page_is_announced_and_shows_the_answer_to_paste(client, clock):
    issuer = issuer_of(client)
    meta = await (await client.get("/.well-known/openid-configuration")).json()
    page = meta["keeptrusts_remote_redirect_uri"]
    assert page == issuer + "/oauth/remote-callback"
    auth, code = await code_for(client, clock, redirect_uri=page)
    shown = await page_of(
        await client.get(
            "/oauth/remote-callback",
            params={"code": code, "state": auth.params["state"], "iss": issuer},
        )
    )
    assert shown.status == 200
    assert shown.headers["Cache-Control"] == "no-store"
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    (answer,) = re.findall(r'<textarea id="remote-answer"[^>]*>([^<]*)</textarea>', shown.text)
    answer = html.unescape(answer)
    query = parse_qs(urlsplit(answer).query)
    assert answer.startswith(page + "?")
    assert query == {"code": [code], "state": [auth.params["state"]], "iss": [issuer]}
    assert "whoever pastes it signs in as you" in shown.text
    status, tokens = await exchange(client, auth, code)
    assert status == 200, tokens
    assert "id_token" in tokens


async def test_the_consent_redirects_there_with_state_and_iss(client, clock):
    issuer = issuer_of(client)
    page = issuer + "/oauth/remote-callback"
    first = await authorize(client, authorization(redirect_uri=page))
    consent = await sign_in(client, clock, first)
    done = await submit(client, consent, decision="approve")
    assert done.headers["Location"].startswith(page + "?")
    assert done.query()["iss"] == issuer and "code" in done.query()


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/oauth/remote-callback",
        "http://127.0.0.2/oauth/remote-callback",
        "{issuer}/oauth/remote-callback/x",
        "{issuer}/oauth/remote-callback?x=1",
    ],
)
async def test_only_this_servers_own_page_is_accepted(client, redirect_uri):
    uri = redirect_uri.format(issuer=issuer_of(client))
    refused = await authorize(client, authorization(redirect_uri=uri))
    assert refused.status == 400 and refused.kind == "error"  # a page, never a redirect


async def test_the_page_without_an_answer(client):
    shown = await page_of(await client.get("/oauth/remote-callback"))
    assert shown.status == 400 and shown.kind == "error"
    denied = await page_of(
        await client.get("/oauth/remote-callback", params={"error": "access_denied", "state": "s"})
    )
    assert denied.status == 400 and "not completed" in denied.text
