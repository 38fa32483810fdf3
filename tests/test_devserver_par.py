"""kt-devserver's pushed authorization requests (RFC 9126, issue 14 item 4), in process with an
injected clock: the endpoint (client authentication, the authorization endpoint's checks, 201
with a single-use request_uri good for 60 s), the authorization endpoint's resolution of it
(the pushed parameters only: anything changed or added on the short URL is refused), and
`--par`/`--require-par`/client `kt-cli-par`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kt_devserver.app import create_app
from kt_devserver.oauth.pushed import PUSHED_REQUEST_TTL, REQUEST_URI_PREFIX
from kt_devserver.state import Settings
from tests.fixtures.clock import FakeClock
from tests.fixtures.oauth_app import Page, exchange, id_claims, page_of, sign_in, submit
from tests.fixtures.oauth_client import CLIENT_ID, REDIRECT_URI, Authorization, authorization

Client = TestClient[Any, Any]


@asynccontextmanager
async def server(clock: FakeClock, **settings: Any) -> AsyncIterator[Client]:
    app = create_app(settings=Settings(**settings), clock=clock)
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[Client]:
    async with server(clock, par=True) as started:
        yield started


async def push(client: Client, params: dict[str, str]) -> tuple[int, dict[str, Any], Any]:
    response = await client.post("/oauth/par", data=params)
    return response.status, await response.json(), response.headers


async def pushed(client: Client, auth: Authorization) -> str:
    status, body, headers = await push(client, auth.params)
    assert status == 201, body
    assert headers["Cache-Control"] == "no-store"
    assert body["expires_in"] == PUSHED_REQUEST_TTL == 60
    uri = body["request_uri"]
    assert uri.startswith(REQUEST_URI_PREFIX) and len(uri) > len(REQUEST_URI_PREFIX) + 20
    return str(uri)


async def open_short(client: Client, **query: str) -> Page:
    response = await client.get("/oauth/authorize", params=query, allow_redirects=False)
    return await page_of(response)


def refused(page: Page, error: str) -> None:
    assert page.status == 400 and page.kind == "error", page.text
    assert f'data-error="{error}"' in page.text
    assert "Location" not in page.headers  # a page, never a redirect to a URI not pushed


async def test_metadata_names_the_endpoint_only_when_offered(clock, client):
    doc = await (await client.get("/.well-known/oauth-authorization-server")).json()
    issuer = doc["issuer"]
    assert doc["pushed_authorization_request_endpoint"] == issuer + "/oauth/par"
    assert doc["require_pushed_authorization_requests"] is False
    async with server(clock) as plain:
        doc = await (await plain.get("/.well-known/openid-configuration")).json()
        assert "pushed_authorization_request_endpoint" not in doc
        assert "require_pushed_authorization_requests" not in doc
        status, body, _ = await push(plain, authorization().params)
        assert (status, body["error"]) == (404, "invalid_request")
    async with server(clock, require_par=True) as strict:
        doc = await (await strict.get("/.well-known/openid-configuration")).json()
        assert doc["require_pushed_authorization_requests"] is True
        assert doc["pushed_authorization_request_endpoint"].endswith("/oauth/par")


async def test_a_pushed_request_signs_in_through_the_short_url(clock, client):
    auth = authorization()
    uri = await pushed(client, auth)
    page = await open_short(client, client_id=CLIENT_ID, request_uri=uri)
    page = await sign_in(client, clock, page)
    assert page.kind == "consent"
    callback = await submit(client, page, decision="approve")
    answer = callback.query()
    assert callback.headers["Location"].startswith(REDIRECT_URI + "?")  # the pushed redirect_uri
    assert answer["state"] == auth.params["state"]  # the pushed state
    status, tokens = await exchange(client, auth, answer["code"])  # the pushed PKCE challenge
    assert status == 200, tokens
    claims = await id_claims(client, tokens["id_token"])
    assert claims["nonce"] == auth.params["nonce"]  # the pushed nonce
    assert set(tokens["scope"].split()) == set(auth.params["scope"].split())


async def test_a_request_uri_is_good_once(clock, client):
    uri = await pushed(client, authorization())
    first = await open_short(client, client_id=CLIENT_ID, request_uri=uri)
    assert first.kind == "login"
    refused(await open_short(client, client_id=CLIENT_ID, request_uri=uri), "invalid_request_uri")


async def test_a_request_uri_expires_after_sixty_seconds(clock, client):
    uri = await pushed(client, authorization())
    clock.advance(PUSHED_REQUEST_TTL)
    page = await open_short(client, client_id=CLIENT_ID, request_uri=uri)
    refused(page, "invalid_request_uri")
    assert "expired or was already used" in page.text
    uri = await pushed(client, authorization())
    clock.advance(PUSHED_REQUEST_TTL - 1)
    assert (await open_short(client, client_id=CLIENT_ID, request_uri=uri)).kind == "login"


async def test_unknown_request_uris_are_refused(client):
    for uri in (REQUEST_URI_PREFIX + "made-up", "https://attacker.example/request.jwt", ""):
        refused(
            await open_short(client, client_id=CLIENT_ID, request_uri=uri), "invalid_request_uri"
        )


@pytest.mark.parametrize(
    "changed",
    [
        {"redirect_uri": "http://127.0.0.1:9/callback"},
        {"scope": "openid profile email offline_access"},
        {"state": "attackers-state"},
        {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
        {"prompt": "none"},
    ],
    ids=lambda changed: next(iter(changed)),
)
async def test_a_parameter_changed_on_the_short_url_is_refused(clock, client, changed):
    """RFC 9126 §4 (RFC 9101 §5): only the pushed request counts; a short URL carrying more is
    refused, and does not spend the request_uri the real client still holds."""
    auth = authorization(scope="openid")
    uri = await pushed(client, auth)
    page = await open_short(client, client_id=CLIENT_ID, request_uri=uri, **changed)
    refused(page, "invalid_request")
    assert "only client_id may accompany request_uri" in page.text
    assert (await open_short(client, client_id=CLIENT_ID, request_uri=uri)).kind == "login"


async def test_a_request_uri_belongs_to_the_client_that_pushed_it(clock, client):
    uri = await pushed(client, authorization())
    page = await open_short(client, client_id="kt-cli-localhost", request_uri=uri)
    refused(page, "invalid_request")
    refused(await open_short(client, request_uri=uri), "invalid_request_uri")  # spent above


async def test_the_endpoint_checks_what_the_authorization_endpoint_checks(client):
    cases: list[tuple[dict[str, str | None], int, str]] = [
        ({"client_id": "nobody"}, 400, "invalid_client"),
        ({"client_id": None}, 400, "invalid_client"),
        ({"redirect_uri": "http://attacker.example/callback"}, 400, "invalid_request"),
        ({"redirect_uri": "http://localhost:5000/callback"}, 400, "invalid_request"),
        ({"response_type": "token"}, 400, "unsupported_response_type"),
        ({"code_challenge": None}, 400, "invalid_request"),
        ({"code_challenge_method": "plain"}, 400, "invalid_request"),
        ({"max_age": "soon"}, 400, "invalid_request"),
        ({"request_uri": REQUEST_URI_PREFIX + "x"}, 400, "invalid_request"),
        ({"resource": "https://other-api.example"}, 400, "invalid_target"),  # RFC 8707
    ]
    for overrides, status, error in cases:
        got, body, headers = await push(client, authorization(**overrides).params)
        assert (got, body["error"]) == (status, error), (overrides, body)
        assert body["error_description"] and "Location" not in headers


async def test_the_endpoint_takes_only_a_form_without_repeats(client):
    response = await client.post("/oauth/par", json=authorization().params)
    assert response.status == 400 and (await response.json())["error"] == "invalid_request"
    form = [*authorization().params.items(), ("scope", "openid")]
    response = await client.post("/oauth/par", data=form)
    assert (
        response.status == 400
        and "Repeated parameter" in (await response.json())["error_description"]
    )


def unpushed(auth: Authorization) -> Callable[[Client], Any]:
    return lambda client: client.get("/oauth/authorize", params=auth.params, allow_redirects=False)


async def test_required_pushed_requests_refuse_a_plain_one(clock):
    async with server(clock, require_par=True) as strict:
        page = await page_of(await unpushed(authorization())(strict))
        refused(page, "invalid_request")
        assert "must push its authorization requests" in page.text
        uri = await pushed(strict, authorization())
        assert (await open_short(strict, client_id=CLIENT_ID, request_uri=uri)).kind == "login"


async def test_a_client_registered_with_require_par_must_push(clock, client):
    auth = authorization(client_id="kt-cli-par")
    refused(await page_of(await unpushed(auth)(client)), "invalid_request")
    plain = await page_of(await unpushed(authorization())(client))
    assert plain.kind == "login"  # kt-cli may still send its request in the URL
    uri = await pushed(client, auth)
    page = await open_short(client, client_id="kt-cli-par", request_uri=uri)
    assert page.kind == "login"
    page = await sign_in(client, clock, page)
    callback = await submit(client, page, decision="approve")
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback.headers["Location"]).query).items()}
    assert query["state"] == auth.params["state"] and query["code"]


async def test_a_pushed_resource_is_the_tokens_audience(clock, client):
    """RFC 8707 through PAR: the resource rides in the pushed request, and the access token is
    for it (this server's API)."""
    api = str(client.make_url("")).rstrip("/")
    auth = authorization(resource=api)
    uri = await pushed(client, auth)
    page = await sign_in(
        client, clock, await open_short(client, client_id=CLIENT_ID, request_uri=uri)
    )
    callback = await submit(client, page, decision="approve")
    status, tokens = await exchange(client, auth, callback.query()["code"])
    assert status == 200, tokens
    me = await client.get(
        "/v1/auth/whoami", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status == 200 and (await me.json())["audience"] == api
