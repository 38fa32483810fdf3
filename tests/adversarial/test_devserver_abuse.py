"""Abuse of a real `kt-devserver` process (issue 11, cases 10–14, 17, 19): each test performs the
attack over HTTP (httpx2), or through the real `kt` where the client is involved, and asserts the
defence: the status and error code, that nothing leaked, and — read from the server's SQLite file —
that nothing was created or changed. docs/security.md maps them to the SV-* requirements.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from kt_devserver import demo, totp
from tests.fixtures.devserver import DevServer
from tests.kt_process import base_env, kt

# --- helpers -----------------------------------------------------------------------------------


def count(server: DevServer, table: str) -> int:
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


def error_of(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"] and body["error"]["code"] == code, body
    assert body["error"]["message"]
    return dict(body["error"])


@pytest.fixture
def http(devserver: DevServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=devserver.url, timeout=10) as client:
        yield client


def port_of(server: DevServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


# --- 13. DNS rebinding: only the hosts the server is reachable as ----------------------------

# Every kind of route: API, discovery, keys, the browser pages, the token and device endpoints.
ROUTES = [
    ("POST", "/v1/auth/login"),
    ("GET", "/v1/auth/whoami"),
    ("GET", "/healthz"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/oauth/jwks"),
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/device_authorization"),
    ("GET", "/device"),
    ("GET", "/no/such/route"),
]


def rebound_hosts(port: int) -> list[str]:
    return [
        f"attacker.example:{port}",
        "attacker.example",
        f"127.0.0.1:{port + 1 if port < 65535 else port - 1}",
        "127.0.0.1",
        f"localhost.:{port}",
        f"127.0.0.1.attacker.example:{port}",
        f"0.0.0.0:{port}",
    ]


def test_rebound_host_names_are_refused_on_every_route(devserver: DevServer, http):
    sessions = count(devserver, "sessions")
    for host in rebound_hosts(port_of(devserver)):
        # The right password through a rebound name: refused before the handler runs.
        login = http.post(
            "/v1/auth/login",
            json={"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD},
            headers={"Host": host},
        )
        error_of(login, 421, "auth.misdirected_request")
        assert "access_token" not in login.text
        for method, path in ROUTES:
            response = http.request(method, path, headers={"Host": host})
            error_of(response, 421, "auth.misdirected_request")
            assert "issuer" not in response.text and "keys" not in response.text
            assert response.headers["Cache-Control"] == "no-store"
    assert count(devserver, "sessions") == sessions == 0


def test_the_bound_address_and_localhost_are_served(devserver: DevServer, http):
    port = port_of(devserver)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        response = http.get("/.well-known/openid-configuration", headers={"Host": host})
        assert response.status_code == 200, (host, response.text)
        assert response.json()["issuer"] == devserver.url
    with httpx2.Client(base_url=f"http://localhost:{port}", timeout=10) as by_name:
        login = by_name.post(
            "/v1/auth/login", json={"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD}
        )
    assert login.status_code == 200, login.text


def test_public_url_adds_exactly_its_host_and_is_the_issuer(
    devserver_factory: Callable[..., DevServer],
):
    server = devserver_factory("--public-url", "https://kt.example.test/")
    port = port_of(server)
    with httpx2.Client(base_url=server.url, timeout=10) as http:
        for host in ("kt.example.test", "kt.example.test:443", f"127.0.0.1:{port}"):
            response = http.get("/.well-known/openid-configuration", headers={"Host": host})
            assert response.status_code == 200, (host, response.text)
            assert response.json()["issuer"] == "https://kt.example.test"
        for host in ("kt.example.test:8443", "evil.kt.example.test", f"attacker.example:{port}"):
            response = http.get("/.well-known/openid-configuration", headers={"Host": host})
            error_of(response, 421, "auth.misdirected_request")


@pytest.mark.parametrize(
    "url",
    ["ftp://kt.example.test", "https://kt.example.test/api", "https://u@kt.example.test", "x"],
)
def test_public_url_must_be_scheme_host_port(tmp_path: Path, url: str):
    result = subprocess.run(
        [sys.executable, "-m", "kt_devserver", "--port", "0", "--db", ":memory:"]
        + ["--public-url", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("kt-devserver: error: --public-url ")
    assert "listening" not in result.stdout


# --- sessions and tokens of two users ---------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def alice(http: httpx2.Client) -> dict[str, Any]:
    response = http.post(
        "/v1/auth/login", json={"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def bob(http: httpx2.Client) -> dict[str, Any]:
    """Bob's MFA sign-in (the test's one use of the current TOTP code on this server)."""
    response = http.post(
        "/v1/auth/login", json={"email": demo.BOB_EMAIL, "password": demo.BOB_PASSWORD}
    )
    mfa_token = error_of(response, 401, "auth.mfa_required")["mfa_token"]
    response = http.post(
        "/v1/auth/mfa/challenge",
        json={"mfa_token": mfa_token, "code": totp.code(demo.BOB_TOTP_SECRET)},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def revoked_at(server: DevServer, session_id: str) -> float | None:
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT revoked_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return None if row[0] is None else float(row[0])


# --- 17. logout with one user's bearer and another user's refresh token ----------------------


def test_logout_cannot_revoke_another_users_session(devserver: DevServer, http):
    mallory, victim = alice(http), bob(http)
    response = http.post(
        "/v1/auth/logout",
        json={"refresh_token": victim["refresh_token"]},
        headers=bearer(mallory["access_token"]),
    )
    assert response.status_code == 200 and response.json() == {"revoked": True}
    # The caller's own session ends; the other user's is untouched and keeps working.
    assert revoked_at(devserver, mallory["session_id"]) is not None
    assert revoked_at(devserver, victim["session_id"]) is None
    me = http.get("/v1/auth/whoami", headers=bearer(victim["access_token"]))
    assert me.status_code == 200 and me.json()["user"]["email"] == demo.BOB_EMAIL
    refreshed = http.post("/v1/auth/refresh", json={"refresh_token": victim["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["session_id"] == victim["session_id"]
    # And the other way round: bob's bearer with alice's (still unspent) refresh token.
    other = alice(http)
    response = http.post(
        "/v1/auth/logout",
        json={"refresh_token": other["refresh_token"]},
        headers=bearer(refreshed.json()["access_token"]),
    )
    assert response.status_code == 200
    assert revoked_at(devserver, other["session_id"]) is None
    assert revoked_at(devserver, victim["session_id"]) is not None


# --- 19. a token whose creator was demoted ----------------------------------------------------


def set_role(server: DevServer, email: str, role: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kt_devserver", "--db", str(server.db_path), "role", email, role],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_demoted_creator_s_token_loses_the_scopes_the_role_lost(
    devserver: DevServer, http, tmp_path: Path
):
    session = alice(http)
    created = http.post(
        "/v1/auth/tokens",
        json={"name": "deploy", "scopes": ["gateways:read", "gateways:write", "tokens:write"]},
        headers=bearer(session["access_token"]),
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, KEEPTRUSTS_API_TOKEN=secret)
    before = kt("auth", "whoami", "--json", env=env)
    assert before.code == 0, before.stderr
    assert "gateways:write" in before.json()["scopes"]

    set_role(devserver, demo.ALICE_EMAIL, "member")

    after = kt("auth", "whoami", "--json", env=env)
    assert after.code == 0, after.stderr
    assert after.json()["role"] == "member"
    assert after.json()["scopes"] == ["gateways:read", "tokens:write"]
    # The lost scope cannot be passed on either, by the token or by the session.
    for credential in (secret, session["access_token"]):
        refused = http.post(
            "/v1/auth/tokens",
            json={"name": "escalate", "scopes": ["gateways:write"]},
            headers=bearer(credential),
        )
        error_of(refused, 403, "auth.scope_not_allowed")
    me = http.get("/v1/auth/whoami", headers=bearer(session["access_token"]))
    assert "gateways:write" not in me.json()["scopes"]
    assert count(devserver, "api_tokens") == 1
    # The stored grant is unchanged: promoting her back restores it, decided per request.
    set_role(devserver, demo.ALICE_EMAIL, "admin")
    assert "gateways:write" in kt("auth", "whoami", "--json", env=env).json()["scopes"]


# --- 14. a token created with a token ---------------------------------------------------------


def create_token(
    http: httpx2.Client, credential: str, scopes: list[str], days: int, name: str = "t"
) -> httpx2.Response:
    return http.post(
        "/v1/auth/tokens",
        json={"name": name, "scopes": scopes, "expires_in_days": days},
        headers=bearer(credential),
    )


def token_row(server: DevServer, token_id: str) -> dict[str, Any]:
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
    return dict(row)


def test_token_made_with_a_token_is_bounded_by_it_and_revoked_with_it(
    devserver: DevServer, http, tmp_path: Path
):
    session = alice(http)["access_token"]
    parent = create_token(http, session, ["tokens:write", "tokens:read", "gateways:read"], 1)
    assert parent.status_code == 201, parent.text
    parent_secret, parent_row = (
        parent.json()["secret"],
        token_row(devserver, parent.json()["token"]["id"]),
    )

    # Scopes the parent lacks are refused, even though its creator (an admin) holds them.
    refused = create_token(http, parent_secret, ["gateways:read", "configurations:write"], 30)
    error_of(refused, 403, "auth.scope_not_allowed")
    assert count(devserver, "api_tokens") == 1

    # The real kt, holding only the parent: asks for 365 days, gets the parent's remaining day.
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, KEEPTRUSTS_API_TOKEN=parent_secret)
    made = kt(
        "auth", "token", "create", "--name", "child", "--scope", "tokens:write,gateways:read",
        "--expires-in-days", "365", "--json", env=env,
    )  # fmt: skip
    assert made.code == 0, made.stderr
    child = made.json()
    child_row = token_row(devserver, child["token"]["id"])
    assert child_row["expires_at"] <= parent_row["expires_at"]
    assert child_row["parent_id"] == parent_row["id"]
    # ... and so on down: a token made by the child is bounded by it too.
    grandchild = create_token(http, child["secret"], ["gateways:read"], 365, name="grandchild")
    assert grandchild.status_code == 201, grandchild.text
    assert (
        token_row(devserver, grandchild.json()["token"]["id"])["expires_at"]
        <= parent_row["expires_at"]
    )
    # A session-made token is unaffected: it keeps the 365 days it asked for.
    own = create_token(http, session, ["gateways:read"], 365, name="own")
    own_row = token_row(devserver, own.json()["token"]["id"])
    assert own_row["expires_at"] - own_row["created_at"] == pytest.approx(365 * 24 * 3600, abs=5)

    revoke = http.delete(f"/v1/auth/tokens/{parent_row['id']}", headers=bearer(session))
    assert revoke.status_code == 200
    for secret in (child["secret"], grandchild.json()["secret"]):
        error_of(http.get("/v1/auth/whoami", headers=bearer(secret)), 401, "auth.token_revoked")
    whoami = kt("auth", "whoami", "--json", env={**env, "KEEPTRUSTS_API_TOKEN": child["secret"]})
    assert whoami.code != 0 and child["secret"] not in whoami.stdout + whoami.stderr
    tokens = http.get("/v1/auth/tokens", headers=bearer(session)).json()["tokens"]
    states = {t["name"]: t["state"] for t in tokens}
    assert states == {"t": "revoked", "child": "revoked", "grandchild": "revoked", "own": "active"}
    assert http.get("/v1/auth/whoami", headers=bearer(own.json()["secret"])).status_code == 200


def test_rotating_the_parent_revokes_what_it_made(devserver: DevServer, http):
    session = bob(http)["access_token"]  # rotation needs an MFA session
    parent = create_token(http, session, ["tokens:write", "gateways:read"], 30).json()
    child = create_token(http, parent["secret"], ["gateways:read"], 30).json()
    rotated = http.post(f"/v1/auth/tokens/{parent['token']['id']}/rotate", headers=bearer(session))
    assert rotated.status_code == 200, rotated.text
    error_of(
        http.get("/v1/auth/whoami", headers=bearer(child["secret"])), 401, "auth.token_revoked"
    )
    assert token_row(devserver, child["token"]["id"])["revoked_at"] is not None
    fresh = http.get("/v1/auth/whoami", headers=bearer(rotated.json()["secret"]))
    assert fresh.status_code == 200
