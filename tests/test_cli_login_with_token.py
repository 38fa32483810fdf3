"""`kt auth login --with-token < file`: an existing API token kept for a profile, checked with
whoami first — the real `kt` against a real kt-devserver (and a hostile API for a 5xx)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx2
import pytest

from kt_login.store import FileStore
from tests.adversarial.hostile_api import HostileAPI, Reply
from tests.kt_process import ALICE, base_env, kt, password_login


def cfg(env: dict[str, str]) -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"])


@pytest.fixture
def api_token(tmp_path: Path, devserver) -> str:
    """A real API token of alice's, created with kt in a config dir of its own."""
    maker = base_env(tmp_path / "maker", KEEPTRUSTS_API_URL=devserver.url)
    assert password_login(maker, ALICE, "--insecure-storage").code == 0
    r = kt("auth", "token", "create", "--name", "ci", "--scope", "tokens:read", env=maker)
    assert r.code == 0, r.stderr
    return r.stdout.strip()


def with_token(env: dict[str, str], token: str, *extra: str):
    return kt(
        "auth", "login", "--with-token", "--insecure-storage", *extra, env=env, input=token + "\n"
    )


def test_keeps_an_api_token_for_the_profile(env, devserver, api_token):
    r = with_token(env, api_token, "--profile", "ci")
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == (
        f"Logged in to {devserver.url} as {ALICE[0]} (Acme, admin). "
        "Session stored in: file (plaintext)."
    )
    assert api_token not in r.stdout + r.stderr
    stored = FileStore(cfg(env)).load("ci")
    assert stored is not None
    assert stored.access_token == api_token and stored.refresh_token is None
    assert stored.method == "api_token" and stored.scopes == ("tokens:read",)
    assert stored.expires_at is not None  # the token's own expiry, as whoami says it

    r = kt("auth", "whoami", "--json", "--profile", "ci", env=env)
    assert r.code == 0, r.stderr
    assert r.json()["auth_method"] == "api_token" and r.json()["token"]["name"] == "ci"
    r = kt("auth", "print-access-token", "--profile", "ci", env=env)
    assert (r.code, r.stdout) == (0, api_token + "\n")
    r = kt("auth", "status", "--json", "--profile", "ci", env=env)
    assert r.code == 0 and r.json()["method"] == "api_token"


def test_json_document(env, api_token):
    r = with_token(env, api_token, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["logged_in"] is True and doc["method"] == "api_token"
    assert doc["user"]["email"] == ALICE[0]
    assert api_token not in r.stdout


def test_a_token_the_api_refuses_is_not_kept(env, devserver, api_token):
    for token in ("kt_live_not_a_real_token", "something else entirely"):
        for extra in ((), ("--json",)):
            r = with_token(env, token, *extra)
            assert r.code == 3, r.stderr
            assert r.stdout == ""
    assert "refused the token" in r.error()["message"]
    assert FileStore(cfg(env)).load("default") is None


def test_a_revoked_token_is_refused(env, tmp_path, devserver, api_token):
    maker = base_env(tmp_path / "maker", KEEPTRUSTS_API_URL=devserver.url)
    listing = kt("auth", "token", "list", "--json", env=maker).json()
    (token_id,) = [t["id"] for t in listing["tokens"] if t["name"] == "ci"]
    r = kt("auth", "token", "revoke", "--id", token_id, "--yes", env=maker)
    assert r.code == 0, r.stderr
    r = with_token(env, api_token)
    assert r.code == 3
    assert "revoked" in r.stderr
    assert FileStore(cfg(env)).load("default") is None


def test_a_session_access_token_is_not_an_api_token(env):
    login = password_login(env, ALICE, "--insecure-storage", "--profile", "person")
    assert login.code == 0
    session = FileStore(cfg(env)).load("person")
    assert session is not None
    r = with_token(env, session.access_token, "--profile", "ci")
    assert r.code == 2
    assert "not an API token" in r.stderr
    assert FileStore(cfg(env)).load("ci") is None


def test_the_token_is_never_an_argument(env, api_token):
    r = kt("auth", "login", "--with-token", api_token, "--insecure-storage", env=env)
    assert r.code == 2
    assert FileStore(cfg(env)).load("default") is None
    r = kt("auth", "login", "--with-token", "--insecure-storage", env=env, input="")
    assert r.code == 2 and "no API token on standard input" in r.stderr
    r = with_token(env, api_token, "--email", ALICE[0])
    assert r.code == 2 and "drop --email" in r.stderr


def test_unreachable_api_exits_5(tmp_path, api_token):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    env = base_env(tmp_path / "x", KEEPTRUSTS_API_URL=f"http://127.0.0.1:{port}")
    r = with_token(env, api_token)
    assert r.code == 5
    assert FileStore(cfg(env)).load("default") is None


def test_a_failing_api_exits_6(tmp_path, api_token):
    api = HostileAPI().start()
    try:
        api.routes[("GET", "/v1/auth/whoami")] = Reply(500, b'{"error": "boom"}')
        env = base_env(tmp_path / "x", KEEPTRUSTS_API_URL=api.url)
        r = with_token(env, api_token)
    finally:
        api.stop()
    assert r.code == 6
    assert FileStore(cfg(env)).load("default") is None


def test_logout_forgets_it_without_revoking_it(env, devserver, api_token):
    assert with_token(env, api_token).code == 0
    r = kt("auth", "logout", env=env)
    assert r.code == 0, r.stderr
    assert "Removed the API token of profile 'default' from this machine; it stays valid" in (
        r.stdout
    )
    assert FileStore(cfg(env)).load("default") is None
    reply = httpx2.get(
        f"{devserver.url}/v1/auth/whoami", headers={"Authorization": f"Bearer {api_token}"}
    )
    assert reply.status_code == 200  # still the user's, to revoke with kt auth token revoke


def test_replacing_it_with_a_password_login_keeps_the_token_valid(env, devserver, api_token):
    assert with_token(env, api_token).code == 0
    assert password_login(env, ALICE, "--insecure-storage").code == 0
    reply = httpx2.get(
        f"{devserver.url}/v1/auth/whoami", headers={"Authorization": f"Bearer {api_token}"}
    )
    assert reply.status_code == 200
