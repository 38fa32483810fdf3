"""Abuse of a real `kt-devserver` process (issue 11, cases 10–14, 17, 19): each test performs the
attack over HTTP (httpx2), or through the real `kt` where the client is involved, and asserts the
defence: the status and error code, that nothing leaked, and — read from the server's SQLite file —
that nothing was created or changed. docs/security.md maps them to the SV-* requirements.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from kt_devserver import demo, totp
from kt_devserver.signin_checks import ACCOUNT_FREE_FAILURES, ADDRESS_FREE_FAILURES
from tests.api_replies import error_of, login
from tests.fixtures.devserver import DevServer
from tests.fixtures.oauth_client import Browser, authorization, forms_in
from tests.kt_process import base_env, kt

# --- helpers -----------------------------------------------------------------------------------


def count(server: DevServer, table: str) -> int:
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


@pytest.fixture
def http(devserver: DevServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=devserver.url, timeout=10) as client:
        yield client


def kt_env(tmp_path: Path, server: DevServer, **extra: str) -> dict[str, str]:
    """A home for the real kt against `server`, keeping sessions in a file (no keyring here)."""
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url, **extra)
    config = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    config.mkdir(parents=True)
    (config / "config.toml").write_text('credential_store = "file"\n')
    return env


def stored_sessions(tmp_path: Path) -> list[Path]:
    credentials = tmp_path / "config" / "credentials"
    return sorted(credentials.iterdir()) if credentials.exists() else []


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


# --- the sign-in pages (tests/fixtures/oauth_client.py's browser) ------------------------------


@contextlib.contextmanager
def browser_on(server: DevServer) -> Iterator[Browser]:
    browser = Browser(server)
    try:
        yield browser
    finally:
        browser.close()


def kind_of(page: httpx2.Response) -> str:
    """The page's form ('login', 'mfa', 'consent'), whatever its status; else 'error'."""
    forms = forms_in(page.text)
    return forms[0].form_id.removesuffix("-form") if forms else "error"


def password_page(browser: Browser, email: str, password: str) -> httpx2.Response:
    page = browser.authorize(authorization())
    assert kind_of(page) == "login", page.text
    return browser.submit(page, email=email, password=password)


def refused_page(page: httpx2.Response) -> None:
    """The page again with the wait: 429, Retry-After, nothing signed in."""
    assert page.status_code == 429, page.text
    assert int(page.headers["Retry-After"]) >= 1
    assert "Too many failed attempts; try again in" in page.text
    assert kind_of(page) in {"login", "mfa"}


def session_count(server: DevServer) -> int:
    return count(server, "sessions")


# --- 10. TOTP replay: a code is good once (RFC 6238 §5.2) --------------------------------------


def mfa_token_for_bob(http: httpx2.Client) -> str:
    response = http.post(
        "/v1/auth/login", json={"email": demo.BOB_EMAIL, "password": demo.BOB_PASSWORD}
    )
    return str(error_of(response, 401, "auth.mfa_required")["mfa_token"])


def challenge(http: httpx2.Client, mfa_token: str, code: str) -> httpx2.Response:
    return http.post("/v1/auth/mfa/challenge", json={"mfa_token": mfa_token, "code": code})


def printed_code(server: DevServer) -> str:
    """What `kt-devserver totp bob@example.com` prints for this server's database."""
    result = subprocess.run(
        [sys.executable, "-m", "kt_devserver", "--db", str(server.db_path), "totp", demo.BOB_EMAIL],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_totp_code_is_accepted_once_on_the_api_pages_and_through_kt(
    devserver: DevServer, http, tmp_path: Path
):
    code = printed_code(devserver)
    assert challenge(http, mfa_token_for_bob(http), code).status_code == 200
    assert session_count(devserver) == 1

    # The same code again, with a fresh mfa_token: refused, and says why.
    replay = challenge(http, mfa_token_for_bob(http), code)
    message = error_of(replay, 401, "auth.invalid_mfa_code")["message"]
    assert "already used" in message
    assert "access_token" not in replay.text

    # ... on the sign-in page: the MFA page again, nobody signed in.
    with browser_on(devserver) as browser:
        mfa = password_page(browser, demo.BOB_EMAIL, demo.BOB_PASSWORD)
        assert kind_of(mfa) == "mfa"
        again = browser.submit(mfa, code=code)
    assert again.status_code == 200 and kind_of(again) == "mfa"
    assert "That code was already used; wait for the next one." in again.text

    # ... and through the real kt, which stores nothing.
    env = kt_env(tmp_path, devserver)
    login = kt(
        "auth", "login", "--email", demo.BOB_EMAIL, "--password-stdin", "--json",
        env=env, input=demo.BOB_PASSWORD + "\n",
    )  # fmt: skip
    assert login.code == 4, login.stderr
    token = login.error()["mfa_token"]
    refused = kt("auth", "mfa", "challenge", "--token", token, env=env, input=code + "\n")
    assert refused.code != 0 and "already used" in refused.stderr
    assert stored_sessions(tmp_path) == []
    assert session_count(devserver) == 1

    # `kt-devserver totp` now prints the next step's code, which works once.
    fresh = printed_code(devserver)
    assert fresh != code
    accepted = kt("auth", "mfa", "challenge", "--token", token, env=env, input=fresh + "\n")
    assert accepted.code == 0, accepted.stderr
    assert session_count(devserver) == 2 and len(stored_sessions(tmp_path)) == 1


# --- 11. MFA brute force: limited per user across mfa_tokens, and per address -----------------


def too_many(response: httpx2.Response) -> dict[str, Any]:
    error = error_of(response, 429, "auth.too_many_attempts")
    assert int(response.headers["Retry-After"]) == error["retry_after"] >= 1
    assert error["message"] == f"Too many failed attempts; try again in {error['retry_after']} s."
    return error


def wrong_code(right: str) -> str:
    return f"{(int(right) + 500_000) % 1_000_000:06d}"


@pytest.fixture
def slow_server(devserver_factory: Callable[..., DevServer]) -> DevServer:
    """A server whose first backoff is a minute: the refusals outlast the slowest `kt` start."""
    return devserver_factory("--throttle-base-delay", "60")


@pytest.fixture
def slow_http(slow_server: DevServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=slow_server.url, timeout=10) as client:
        yield client


def test_mfa_guesses_are_limited_per_user_across_mfa_tokens(
    slow_server: DevServer, slow_http: httpx2.Client, tmp_path: Path
):
    right = totp.code(demo.BOB_TOTP_SECRET)
    # A fresh mfa_token for every guess, as the attack did: the per-user count still adds up.
    for _ in range(ACCOUNT_FREE_FAILURES):
        response = challenge(slow_http, mfa_token_for_bob(slow_http), wrong_code(right))
        error_of(response, 401, "auth.invalid_mfa_code")
    for code in (wrong_code(right), right):  # the right code too: it is not even looked at
        too_many(challenge(slow_http, mfa_token_for_bob(slow_http), code))
    assert session_count(slow_server) == 0

    # The sign-in page shares the count: its MFA step refuses the right code as well.
    with browser_on(slow_server) as browser:
        mfa = password_page(browser, demo.BOB_EMAIL, demo.BOB_PASSWORD)
        assert kind_of(mfa) == "mfa"
        refused_page(browser.submit(mfa, code=right))

    # The real kt: a clear refusal, nothing stored.
    env = kt_env(tmp_path, slow_server)
    login = kt(
        "auth", "login", "--email", demo.BOB_EMAIL, "--password-stdin", "--json",
        env=env, input=demo.BOB_PASSWORD + "\n",
    )  # fmt: skip
    assert login.code == 4, login.stderr
    token = login.error()["mfa_token"]
    result = kt("auth", "mfa", "challenge", "--token", token, env=env, input=right + "\n")
    assert result.code != 0 and "Too many failed attempts; try again in" in result.stderr
    assert stored_sessions(tmp_path) == [] and session_count(slow_server) == 0


# --- 12. password brute force: per account (known or not) and per address --------------------


def test_password_guesses_are_throttled_the_same_for_known_and_unknown_accounts(
    slow_server: DevServer, slow_http: httpx2.Client, tmp_path: Path
):
    accounts = {demo.ALICE_EMAIL: demo.ALICE_PASSWORD, "nobody@example.com": "anything"}
    refusals = []
    for email, right in accounts.items():
        for i in range(ACCOUNT_FREE_FAILURES):
            error_of(login(slow_http, email, f"guess-{i}"), 401, "auth.invalid_credentials")
        # Locked: even the right password is refused, before it is checked.
        refused = login(slow_http, email, right)
        too_many(refused)
        assert "access_token" not in refused.text
        refusals.append((refused.status_code, refused.headers["Retry-After"], refused.json()))
    # An unknown account is throttled exactly like a real one: nothing tells them apart.
    assert refusals[0] == refusals[1]
    assert session_count(slow_server) == 0

    # The sign-in page shares the count, and so does the real kt.
    with browser_on(slow_server) as browser:
        refused_page(password_page(browser, demo.ALICE_EMAIL, demo.ALICE_PASSWORD))
    env = kt_env(tmp_path, slow_server)
    result = kt(
        "auth", "login", "--email", demo.ALICE_EMAIL, "--password-stdin",
        env=env, input=demo.ALICE_PASSWORD + "\n",
    )  # fmt: skip
    assert result.code != 0 and "Too many failed attempts; try again in" in result.stderr
    assert demo.ALICE_PASSWORD not in result.stdout + result.stderr
    assert stored_sessions(tmp_path) == [] and session_count(slow_server) == 0
    # Other accounts are not locked by this one's lockout.
    assert login(slow_http, demo.BOB_EMAIL, demo.BOB_PASSWORD).status_code == 401  # mfa_required


def test_one_address_guessing_many_accounts_is_throttled(
    slow_server: DevServer, slow_http: httpx2.Client
):
    bobs_token = mfa_token_for_bob(slow_http)
    # One guess per account stays under every account's limit; the address's adds them up.
    for i in range(ADDRESS_FREE_FAILURES):
        error_of(login(slow_http, f"user{i}@example.com", "guess"), 401, "auth.invalid_credentials")
    too_many(login(slow_http, "one-more@example.com", "guess"))
    too_many(login(slow_http, demo.ALICE_EMAIL, demo.ALICE_PASSWORD))
    # Codes and passwords count against the same address: bob's right code is refused too.
    too_many(challenge(slow_http, bobs_token, totp.code(demo.BOB_TOTP_SECRET)))
    assert session_count(slow_server) == 0


def test_throttling_answers_at_once_and_the_lockout_is_bounded(
    devserver_factory: Callable[..., DevServer],
):
    server = devserver_factory("--throttle-base-delay", "60", "--throttle-max-delay", "120")
    with httpx2.Client(base_url=server.url, timeout=10) as http:
        for i in range(ACCOUNT_FREE_FAILURES):
            login(http, demo.ALICE_EMAIL, f"guess-{i}")
        started = time.monotonic()
        error = too_many(login(http, demo.ALICE_EMAIL, demo.ALICE_PASSWORD))
        assert time.monotonic() - started < 5  # a refusal, not a slowed reply
        assert 59 <= error["retry_after"] <= 60


def test_the_device_flow_s_sign_in_page_shares_the_lockout(
    slow_server: DevServer, slow_http: httpx2.Client
):
    for i in range(ACCOUNT_FREE_FAILURES):
        error_of(login(slow_http, demo.ALICE_EMAIL, f"guess-{i}"), 401, "auth.invalid_credentials")
    grant = slow_http.post(
        "/oauth/device_authorization", data={"client_id": "kt-cli", "scope": "openid"}
    ).json()
    with browser_on(slow_server) as browser:
        page = browser.http.get("/oauth/device", params={"user_code": grant["user_code"]})
        assert kind_of(page) == "device-confirm", page.text
        page = browser.submit(page, decision="continue")
        assert kind_of(page) == "login", page.text
        refused_page(browser.submit(page, email=demo.ALICE_EMAIL, password=demo.ALICE_PASSWORD))
    poll = slow_http.post(
        "/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": grant["device_code"],
            "client_id": "kt-cli",
        },
    )
    assert poll.status_code == 400 and poll.json()["error"] == "authorization_pending"
    assert session_count(slow_server) == 0
