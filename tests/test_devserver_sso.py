"""In-process tests of kt-devserver's SSO federation (kt_devserver/oauth/sso.py) against the stub
OpenID provider (HostileAS) as a confidential client: first sign-in creates the user, the same
(iss, sub) maps to the same user, other domains are refused, a bad ID token (wrong nonce, wrong
audience, unlisted alg) is refused, and an unreachable provider ends the pending authorization
with temporarily_unavailable."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kt_devserver import demo
from kt_devserver.app import create_app
from kt_devserver.oauth.scopes import ACR_MFA, ACR_PASSWORD
from kt_devserver.state import Settings, SsoConfig
from tests.adversarial.hostile_as import RSA_K1, HostileAS
from tests.fixtures.oauth_app import Page, exchange, id_claims, page_of, submit
from tests.fixtures.oauth_client import CLIENT_ID, authorization

UPSTREAM_CLIENT = "devserver"
UPSTREAM_SECRET = "upstream-secret"  # noqa: S105 - test value


@pytest.fixture
def upstream() -> Iterator[HostileAS]:
    """The upstream provider kt-devserver federates to; `behaviour.id_claims` is who signs in."""
    server = HostileAS(client_id=UPSTREAM_CLIENT, client_secret=UPSTREAM_SECRET).start()
    yield server
    server.stop()


def _app(issuer: str, domains: tuple[str, ...] = ("example.org",)) -> web.Application:
    sso = SsoConfig(
        issuer=issuer, client_id=UPSTREAM_CLIENT, client_secret=UPSTREAM_SECRET, domains=domains
    )
    return create_app(settings=Settings(sso=sso))


@pytest.fixture
async def client(upstream: HostileAS) -> Any:
    async with TestClient(TestServer(_app(upstream.issuer))) as test_client:
        yield test_client


def sso_link(page: Page) -> str:
    match = re.search(r'<a id="sso"[^>]*href="([^"]+)"', page.text)
    assert match, page.text
    return html.unescape(match.group(1))


async def through_upstream(client: TestClient[Any, Any], start: str) -> Page:
    """Follow the SSO link to the upstream, let it sign in, come back to the callback."""
    response = await client.get(start, allow_redirects=False)
    if response.status != 302:
        return await page_of(response)
    async with aiohttp.ClientSession() as http:
        async with http.get(response.headers["Location"], allow_redirects=False) as up:
            assert up.status == 302, await up.text()
            back = urlsplit(up.headers["Location"])
    # kt-devserver asked the upstream as an OpenID relying party with PKCE does
    q = parse_qs(urlsplit(response.headers["Location"]).query)
    assert q["response_type"] == ["code"] and q["client_id"] == [UPSTREAM_CLIENT]
    assert q["code_challenge_method"] == ["S256"] and "openid" in q["scope"][0].split()
    assert q["state"][0] and q["nonce"][0]
    assert back.path == "/oauth/sso/callback"
    return await page_of(await client.get(back.path + "?" + back.query, allow_redirects=False))


async def sso_sign_in(client: TestClient[Any, Any], **auth_overrides: str) -> tuple[Any, Page]:
    auth = authorization(**auth_overrides)
    page = await page_of(await client.get("/oauth/authorize", params=auth.params))
    assert page.kind == "login"
    return auth, await through_upstream(client, sso_link(page))


def error_code(page: Page) -> str:
    match = re.search(r'class="error" data-error="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def return_query(page: Page) -> dict[str, str]:
    match = re.search(r'<a id="return" href="([^"]+)"', page.text)
    assert match, page.text
    location = html.unescape(match.group(1))
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_first_sign_in_creates_the_user_and_completes_the_authorization(upstream, client):
    upstream.behaviour.id_claims = {"sub": "u-1", "email": "carol@example.org", "name": "Carol"}
    auth, page = await sso_sign_in(client)
    assert page.kind == "consent", page.text
    callback = await submit(client, page, decision="approve")
    assert callback.query()["state"] == auth.params["state"]
    status, body = await exchange(client, auth, callback.query()["code"])
    assert status == 200, body
    claims = await id_claims(client, body["id_token"])
    assert claims["email"] == "carol@example.org" and claims["acr"] == ACR_PASSWORD
    who = await client.get(
        "/v1/auth/whoami", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    doc = await who.json()
    assert who.status == 200, doc
    assert doc["user"]["email"] == "carol@example.org"
    assert doc["organization"]["name"] == demo.ORGANIZATION_NAME and doc["role"] == "member"
    # the code was exchanged once, with the client's secret (client_secret_basic), PKCE and
    # the redirect_uri of the authorization request (the stub refuses any other)
    (exchanged,) = upstream.token_calls("authorization_code")
    assert exchanged.headers["Authorization"].startswith("Basic ")
    assert exchanged.form["code_verifier"]


async def test_same_iss_sub_maps_to_the_same_user_even_if_the_email_changes(upstream, client):
    upstream.behaviour.id_claims = {"sub": "u-2", "email": "dave@example.org"}
    auth, page = await sso_sign_in(client)
    first = await id_claims(client, (await _code_tokens(client, auth, page))["id_token"])
    upstream.behaviour.id_claims = {
        "sub": "u-2",
        "email": "dave.renamed@example.org",
        "amr": ["pwd", "mfa"],
    }
    auth, page = await sso_sign_in(client, prompt="login")
    second = await id_claims(client, (await _code_tokens(client, auth, page))["id_token"])
    assert second["sub"] == first["sub"] and second["email"] == "dave@example.org"
    assert second["acr"] == ACR_MFA  # the upstream's MFA counts


async def _code_tokens(client: TestClient[Any, Any], auth: Any, page: Page) -> Any:
    assert page.kind == "consent", page.text
    callback = await submit(client, page, decision="approve")
    status, body = await exchange(client, auth, callback.query()["code"])
    assert status == 200, body
    return body


async def test_user_from_another_domain_is_refused(upstream, client):
    upstream.behaviour.id_claims = {"sub": "u-3", "email": "mallory@elsewhere.test"}
    auth, page = await sso_sign_in(client)
    assert page.status == 403
    assert error_code(page) == "sso_domain_not_allowed"
    q = return_query(page)
    assert q["error"] == "access_denied" and q["state"] == auth.params["state"]
    # the pending authorization is over
    assert (await through_upstream(client, "/oauth/sso/start?txn=x&csrf_token=y")).status == 400


@pytest.mark.parametrize(
    "override",
    [{"nonce": "not-the-nonce"}, {"aud": "someone-else"}, {"iss": "http://evil.test"}, "HS256"],
)
async def test_bad_upstream_id_token_is_refused(upstream, client, override):
    upstream.behaviour.id_claims = {"sub": "u-4", "email": "erin@example.org"}
    if override == "HS256":  # an unlisted alg, keyed with the upstream's public key
        upstream.behaviour.id_sign = "hs256-public-key"
    else:
        upstream.behaviour.id_claims.update(override)
    _, page = await sso_sign_in(client)
    assert error_code(page) == "sso_invalid_id_token"
    assert return_query(page)["error"] == "access_denied"


@pytest.mark.parametrize(
    ("jwks", "code"),
    [
        (b"<html>not a key set</html>", "sso_failed"),
        (b'{"keys": []}', "sso_invalid_id_token"),
        ("private", "sso_invalid_id_token"),  # a private key in a key set is never used
    ],
)
async def test_unusable_upstream_keys_are_refused(upstream, client, jwks, code):
    upstream.behaviour.id_claims = {"sub": "u-7", "email": "hal@example.org"}
    private = json.dumps({"keys": [RSA_K1.as_dict(private=True)]}).encode()
    upstream.behaviour.jwks_body = private if jwks == "private" else jwks
    _, page = await sso_sign_in(client)
    assert error_code(page) == code
    assert return_query(page)["error"] == "access_denied"


async def test_state_is_single_use_and_bound_to_the_browser(upstream, client):
    upstream.behaviour.id_claims = {"sub": "u-5", "email": "frank@example.org"}
    auth = authorization()
    page = await page_of(await client.get("/oauth/authorize", params=auth.params))
    response = await client.get(sso_link(page), allow_redirects=False)
    async with aiohttp.ClientSession() as http:
        async with http.get(response.headers["Location"], allow_redirects=False) as up:
            back = urlsplit(up.headers["Location"])
    # another browser (no cookie) cannot use it
    async with aiohttp.ClientSession() as other:
        url = client.make_url(back.path + "?" + back.query)
        async with other.get(url, allow_redirects=False) as stolen:
            assert stolen.status == 400
    # and it was burnt
    again = await client.get(back.path + "?" + back.query, allow_redirects=False)
    assert again.status == 400


async def test_upstream_down_gives_a_clear_page_and_temporarily_unavailable(upstream):
    issuer = upstream.issuer
    upstream.stop()  # its port is closed: nothing answers there
    async with TestClient(TestServer(_app(issuer))) as client:
        auth = authorization()
        page = await page_of(await client.get("/oauth/authorize", params=auth.params))
        done = await through_upstream(client, sso_link(page))
        assert done.status == 503
        assert error_code(done) == "temporarily_unavailable"
        assert "sign-in service is unavailable" in done.text
        q = return_query(done)
        assert q["error"] == "temporarily_unavailable" and q["state"] == auth.params["state"]


async def test_several_domains_ask_for_the_domain_first(upstream):
    upstream.behaviour.id_claims = {"sub": "u-6", "email": "gina@example.net"}
    domains = ("example.org", "example.net")
    async with TestClient(TestServer(_app(upstream.issuer, domains))) as client:
        auth = authorization()
        page = await page_of(await client.get("/oauth/authorize", params=auth.params))
        ask = await page_of(await client.get(sso_link(page)))
        assert ask.status == 200 and 'name="domain"' in ask.text
        assert urlsplit(upstream.issuer).netloc in ask.headers["Content-Security-Policy"]
        link = sso_link(page) + "&domain=nowhere.test"
        again = await page_of(await client.get(link))
        assert 'data-error="sso_domain_unknown"' in again.text
        done = await through_upstream(client, sso_link(page) + "&domain=gina@example.net")
        assert done.kind == "consent", done.text


async def test_without_sso_there_is_no_link_and_no_route():
    async with TestClient(TestServer(create_app())) as client:
        auth = authorization()
        page = await page_of(await client.get("/oauth/authorize", params=auth.params))
        assert 'id="sso"' not in page.text
        assert (await client.get("/oauth/sso/callback")).status == 404


def test_client_id_constant_is_the_cli():
    assert CLIENT_ID == "kt-cli"


async def test_sso_user_cannot_sign_in_with_a_password(upstream, client):
    upstream.behaviour.id_claims = {"sub": "u-7", "email": "hana@example.org"}
    auth, page = await sso_sign_in(client)
    await _code_tokens(client, auth, page)
    login = await page_of(
        await client.get("/oauth/authorize", params=authorization(prompt="login").params)
    )
    again = await submit(client, login, email="hana@example.org", password="!sso")
    assert again.kind == "login" and "Wrong email or password" in again.text


@pytest.mark.parametrize(
    "args",
    [
        ["--sso-client-id", "x"],
        ["--sso-domain", "example.org"],
        ["--sso-issuer", "https://idp.example.org"],
        ["--sso-issuer", "http://idp.example.org", "--sso-client-id", "x"],
    ],
)
def test_sso_options_are_checked(args):
    from click.testing import CliRunner

    from kt_devserver.__main__ import main

    result = CliRunner().invoke(main, ["--db", ":memory:", *args])
    assert result.exit_code == 2, result.output
