"""kt-devserver's RFC 8693 token exchange over HTTP (a real kt-devserver process, the stub OpenID
provider as the CI's issuer): trust rules set with `kt-devserver trust`, a CI job's JWT exchanged
for an API token of the rule's scopes and lifetime, and a session's access token delegated to an
actor with at most its scopes and a capped lifetime, revoked with the session.

The refusals a person meets through `kt` (wrong audience, repository, expired, replayed, unsigned,
foreign key; broader scope, longer TTL) are in tests/test_cli_federated.py and
tests/test_cli_token_exchange.py; here is the wire contract."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.adversarial.hostile_as import CI_SUBJECT, HostileAS
from tests.api_replies import login
from tests.fixtures.devserver import DevServer
from tests.kt_process import ALICE, REPO

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN


@pytest.fixture(scope="module")
def ci() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


@pytest.fixture
def http(devserver: DevServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=devserver.url, timeout=15) as client:
        yield client


def exchange(http: httpx2.Client, subject_token: str, token_type: str = JWT, **more: str) -> Any:
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "client_id": "kt-cli",
        "subject_token": subject_token,
        "subject_token_type": token_type,
        **more,
    }
    return http.post("/oauth/token", data=form)


def whoami(http: httpx2.Client, token: str) -> httpx2.Response:
    return http.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})


def test_metadata_lists_token_exchange(http: httpx2.Client) -> None:
    doc = http.get("/.well-known/oauth-authorization-server").json()
    assert TOKEN_EXCHANGE in doc["grant_types_supported"]


def test_a_trusted_ci_token_becomes_a_short_lived_api_token(
    http: httpx2.Client, devserver: DevServer, ci: HostileAS
) -> None:
    devserver.trust(ci.issuer, "--scope", "gateways:read", "--lifetime", "600")
    reply = exchange(http, ci.ci_token(devserver.url))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["issued_token_type"] == ACCESS_TOKEN
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "gateways:read"
    assert 590 <= body["expires_in"] <= 600
    assert "refresh_token" not in body
    who = whoami(http, body["access_token"]).json()
    assert who["auth_method"] == "federated"
    assert who["federated"] == {"issuer": ci.issuer, "subject": CI_SUBJECT}
    assert who["user"]["email"] == "deploy@workload.invalid"
    assert who["scopes"] == ["gateways:read"]
    assert who["organization"]["name"] == "Acme"
    # what the rule grants, no more: no tokens:*, so no long-lived secret can be made with it
    made = http.post(
        "/v1/auth/tokens",
        json={"name": "x", "scopes": ["gateways:read"]},
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert made.status_code == 403


def test_scope_asked_for_within_the_rule_and_not_beyond(
    http: httpx2.Client, devserver: DevServer, ci: HostileAS
) -> None:
    devserver.trust(ci.issuer)
    narrowed = exchange(http, ci.ci_token(devserver.url), scope="configurations:read")
    assert narrowed.json()["scope"] == "configurations:read"
    beyond = exchange(http, ci.ci_token(devserver.url), scope="gateways:write")
    assert beyond.status_code == 400
    assert beyond.json()["error"] == "invalid_scope"


def test_a_rule_cannot_grant_token_scopes_or_trust_every_token(
    devserver: DevServer, ci: HostileAS
) -> None:
    refused = devserver.admin(
        "trust", "add", "x", "--issuer", ci.issuer, "--audience", "a",
        "--claim", "repository=acme/app", "--scope", "tokens:write",
    )  # fmt: skip
    assert refused.returncode == 2
    no_claim = devserver.admin(
        "trust", "add", "x", "--issuer", ci.issuer, "--audience", "a",
        "--scope", "gateways:read",
    )  # fmt: skip
    assert no_claim.returncode == 2
    assert "Traceback" not in refused.stderr + no_claim.stderr


def test_removing_the_rule_revokes_its_tokens(
    http: httpx2.Client, devserver: DevServer, ci: HostileAS
) -> None:
    devserver.trust(ci.issuer)
    token = exchange(http, ci.ci_token(devserver.url)).json()["access_token"]
    assert whoami(http, token).status_code == 200
    listed = devserver.admin("trust", "list")
    assert listed.stdout.startswith("deploy (Acme): " + ci.issuer)
    assert devserver.admin("trust", "remove", "deploy").returncode == 0
    assert whoami(http, token).status_code == 401
    assert exchange(http, ci.ci_token(devserver.url)).json()["error"] == "invalid_grant"


def test_an_issuer_no_rule_names_is_never_fetched(
    http: httpx2.Client, devserver: DevServer, ci: HostileAS
) -> None:
    ci.reset()
    reply = exchange(http, ci.ci_token(devserver.url))
    assert reply.status_code == 400
    assert "No trust rule" in reply.json()["error_description"]
    assert ci.calls("GET", "/jwks") == []


def _session_token(http: httpx2.Client) -> str:
    token: str = login(http, *ALICE).json()["access_token"]
    return token


def test_delegation_down_scopes_names_the_actor_and_ends_with_the_session(
    http: httpx2.Client,
) -> None:
    session = _session_token(http)
    reply = exchange(
        http, session, ACCESS_TOKEN, scope="gateways:read", actor="agent:bot", expires_in="600"
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["scope"] == "gateways:read"
    assert 590 <= body["expires_in"] <= 600
    who = whoami(http, body["access_token"]).json()
    assert who["auth_method"] == "delegated"
    assert who["act"] == {"sub": "agent:bot"}
    assert who["user"]["email"] == ALICE[0]
    assert who["scopes"] == ["gateways:read"]
    assert who["mfa_authenticated"] is False
    # a delegated token is not delegated again
    again = exchange(http, body["access_token"], ACCESS_TOKEN, scope="gateways:read", actor="a:b")
    assert again.json()["error"] == "invalid_grant"
    http.post("/v1/auth/logout", headers={"Authorization": f"Bearer {session}"})
    assert whoami(http, body["access_token"]).status_code == 401


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"scope": "gateways:read", "actor": "agent:bot", "expires_in": "3601"}, "invalid_request"),
        ({"scope": "gateways:read", "actor": "no actor"}, "invalid_request"),
        ({"actor": "agent:bot"}, "invalid_scope"),
        ({"scope": "gateways:delete", "actor": "agent:bot"}, "invalid_scope"),
    ],
)
def test_delegation_refusals(http: httpx2.Client, form: dict[str, str], error: str) -> None:
    reply = exchange(http, _session_token(http), ACCESS_TOKEN, **form)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == error


def test_no_scope_beyond_the_session(http: httpx2.Client, devserver: DevServer) -> None:
    assert devserver.admin("role", ALICE[0], "member").returncode == 0
    reply = exchange(
        http, _session_token(http), ACCESS_TOKEN, scope="gateways:write", actor="agent:bot"
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_scope"
    assert "gateways:write" in reply.json()["error_description"]


def test_an_api_token_is_not_delegated(http: httpx2.Client) -> None:
    session = _session_token(http)
    made = http.post(
        "/v1/auth/tokens",
        json={"name": "ci", "scopes": ["gateways:read"]},
        headers={"Authorization": f"Bearer {session}"},
    ).json()
    reply = exchange(http, made["secret"], ACCESS_TOKEN, scope="gateways:read", actor="agent:b")
    assert reply.json()["error"] == "invalid_grant"


def test_trust_help_lists_the_commands(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kt_devserver", "trust", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0
    for command in ("add", "list", "remove"):
        assert command in done.stdout
