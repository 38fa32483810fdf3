"""kt-devserver's step-up and scope refusals carry RFC 9470 / RFC 6750 challenges beside the JSON
body (issue 14 item 3): an operation that needs MFA answers 401 `WWW-Authenticate: Bearer
error="insufficient_user_authentication", acr_values=…, max_age=…` with `auth.mfa_required` (and
its mfa_token) in the body, so older clients keep working; a credential without a scope gets 403
`error="insufficient_scope", scope=…`. Read with kt's own parser."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from kt_devserver import demo, totp
from kt_login.www_authenticate import Challenge, find, parse
from tests.api_replies import error_of, login
from tests.fixtures.devserver import DevServer

MFA_ACR = "urn:keeptrusts:acr:mfa"


@pytest.fixture
def server(devserver_factory) -> DevServer:
    devserver: DevServer = devserver_factory("--mfa-max-age", "300")
    return devserver


@pytest.fixture
def http(server: DevServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.url, timeout=10) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bob(http: httpx2.Client) -> dict[str, Any]:
    """bob's password session after his MFA code."""
    error = error_of(login(http, demo.BOB_EMAIL, demo.BOB_PASSWORD), 401)
    response = http.post(
        "/v1/auth/mfa/challenge",
        json={"mfa_token": error["mfa_token"], "code": totp.code(demo.BOB_TOTP_SECRET)},
    )
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session


def challenge_of(response: httpx2.Response) -> Challenge:
    found = find(parse(response.headers.get_list("www-authenticate")), "Bearer")
    assert found is not None, response.headers
    return found


def test_an_mfa_too_old_for_the_operation_is_an_rfc9470_challenge(server, http):
    session = bob(http)
    created = http.post(
        "/v1/auth/tokens",
        json={"name": "ci", "scopes": ["tokens:read"]},
        headers=bearer(session["access_token"]),
    )
    assert created.status_code == 201, created.text
    with contextlib.closing(sqlite3.connect(server.db_path)) as db, db:
        db.execute("UPDATE sessions SET created_at = created_at - 3600")

    response = http.post(
        f"/v1/auth/tokens/{created.json()['token']['id']}/rotate",
        headers=bearer(session["access_token"]),
    )
    error = error_of(response, 401, "auth.mfa_required")  # the body older clients read
    assert error["mfa_token"].startswith("ktm_") and error["expires_in"] > 0
    challenge = challenge_of(response)
    assert challenge.params == {
        # RFC 9728 §5.1: every API challenge names the API's protected resource metadata first
        "resource_metadata": server.url + "/.well-known/oauth-protected-resource",
        "error": "insufficient_user_authentication",
        "error_description": error["message"],
        "acr_values": MFA_ACR,
        "max_age": "300",
    }
    # the session ended nothing: whoami still answers, no refresh is called for
    assert http.get("/v1/auth/whoami", headers=bearer(session["access_token"])).status_code == 200


def test_a_credential_without_the_scope_gets_insufficient_scope(http):
    session = bob(http)
    created = http.post(
        "/v1/auth/tokens",
        json={"name": "read-only", "scopes": ["tokens:read"]},
        headers=bearer(session["access_token"]),
    )
    read_only = created.json()["secret"]
    response = http.post(
        "/v1/auth/tokens", json={"name": "x", "scopes": ["tokens:read"]}, headers=bearer(read_only)
    )
    error = error_of(response, 403, "auth.insufficient_scope")
    assert error["required_scope"] == "tokens:write"
    challenge = challenge_of(response)
    assert challenge.param("error") == "insufficient_scope"
    assert challenge.param("scope") == "tokens:write"

    # bob is a member: passing on gateways:write needs a credential holding it
    response = http.post(
        "/v1/auth/tokens",
        json={"name": "gw", "scopes": ["gateways:write"]},
        headers=bearer(session["access_token"]),
    )
    error_of(response, 403, "auth.scope_not_allowed")
    assert challenge_of(response).params["scope"] == "gateways:write"


def test_no_credential_is_a_plain_bearer_challenge(server, http):
    response = http.get("/v1/auth/whoami")
    error_of(response, 401, "auth.unauthenticated")
    metadata = server.url + "/.well-known/oauth-protected-resource"  # RFC 9728 §5.1
    assert challenge_of(response) == Challenge(
        "bearer", {"resource_metadata": metadata, "realm": "keeptrusts"}
    )
