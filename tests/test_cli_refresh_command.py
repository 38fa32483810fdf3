"""`kt auth refresh [--scope S]`: a refresh now, or why not and what to run — the real `kt`
against a real kt-devserver."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import httpx2

from kt_login.session import Session
from kt_login.store import FileStore
from tests.kt_process import ALICE, create_token, kt, password_login, token_login
from tests.sample_sessions import make_session


def cfg(env: dict[str, str]) -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"])


def stored(env: dict[str, str], profile: str = "default") -> Session | None:
    return FileStore(cfg(env)).load(profile)


def login(env: dict[str, str], *extra: str) -> Session:
    assert password_login(env, ALICE, "--insecure-storage", *extra).code == 0
    session = stored(env, extra[-1] if extra else "default")
    assert session is not None
    return session


def whoami_status(url: str, token: str) -> int:
    return httpx2.get(
        f"{url}/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_refreshes_a_fresh_session_now(env, devserver):
    before = login(env)
    r = kt("auth", "refresh", env=env)
    assert r.code == 0, r.stderr
    after = stored(env)
    assert after is not None
    assert after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token
    assert r.stdout.startswith("Refreshed the session of profile 'default'")
    assert whoami_status(devserver.url, after.access_token) == 200
    assert after.access_token not in r.stdout + r.stderr

    r = kt("auth", "refresh", "--json", env=env)
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["refreshed"] is True and doc["profile"] == "default"
    assert doc["expires_at"].endswith("Z")
    newest = stored(env)
    assert newest is not None and newest.refresh_token != after.refresh_token


def test_no_session(env):
    for extra in ((), ("--json",)):
        r = kt("auth", "refresh", "--profile", "ci", *extra, env=env)
        assert r.code == 3
        assert r.stdout == ""
    assert r.error()["hint"] == "run: kt auth login --profile ci"


def test_a_session_without_refresh_token_says_why_and_is_kept(env):
    login(env)
    kept = FileStore(cfg(env))
    session = stored(env)
    assert session is not None
    kept.save("default", dataclasses.replace(session, refresh_token=None))
    r = kt("auth", "refresh", env=env)
    assert r.code == 3
    assert "cannot refresh the session of profile 'default'" in r.stderr
    assert "no refresh token" in r.stderr
    assert r.stderr.splitlines()[-1] == "run: kt auth login"
    assert stored(env) == dataclasses.replace(session, refresh_token=None)


def test_an_expired_refresh_token_says_so_and_the_session_is_kept(env):
    session = login(env, "--profile", "work")
    expired = dataclasses.replace(session, refresh_expires_at=time.time() - 10)
    FileStore(cfg(env)).save("work", expired)
    r = kt("auth", "refresh", "--profile", "work", "--json", env=env)
    assert r.code == 3
    error = r.error()
    assert error["code"] == "auth.not_refreshable"
    assert "refresh token has expired" in error["message"]
    assert error["hint"] == "run: kt auth login --profile work"
    assert stored(env, "work") == expired


def test_a_refresh_the_server_refuses_ends_the_session(env, devserver):
    session = login(env)
    reply = httpx2.post(
        f"{devserver.url}/v1/auth/logout",
        headers={"Authorization": f"Bearer {session.access_token}"},
        json={},
    )
    assert reply.status_code == 200  # signed out elsewhere
    r = kt("auth", "refresh", env=env)
    assert r.code == 3
    assert "your session has ended" in r.stderr
    assert r.stderr.splitlines()[-1] == "run: kt auth login"
    assert stored(env) is None


def test_an_api_token_is_not_refreshed(env, devserver):
    login(env, "--profile", "maker")
    token = create_token(env, "ci", "maker")
    r = token_login(env, token, "ci")
    assert r.code == 0, r.stderr
    r = kt("auth", "refresh", "--profile", "ci", env=env)
    assert r.code == 1
    assert "holds an API token" in r.stderr and "is not refreshed" in r.stderr
    assert "valid until 20" in r.stderr
    assert token not in r.stderr
    assert stored(env, "ci") is not None

    r = kt("auth", "refresh", "--json", env={**env, "KEEPTRUSTS_API_TOKEN": token})
    assert r.code == 1
    assert "KEEPTRUSTS_API_TOKEN" in r.error()["message"]
    assert token not in r.stderr


def test_scope_the_session_has_just_refreshes(env):
    before = login(env)
    r = kt("auth", "refresh", "--scope", "tokens:read tokens:write", env=env)
    assert r.code == 0, r.stderr
    after = stored(env)
    assert after is not None and after.refresh_token != before.refresh_token


def test_more_scope_than_a_password_session_has_is_refused(env):
    before = login(env)
    r = kt("auth", "refresh", "--scope", "tokens:read billing:admin", env=env)
    assert r.code == 2
    assert "follow your role" in r.stderr and "billing:admin" in r.stderr
    assert stored(env) == before  # nothing refreshed


def test_more_scope_than_an_oauth_session_has_prints_the_consent_to_run(env, devserver):
    oauth = make_session(
        api_url=devserver.url,
        kind="oauth",
        method="browser",
        issuer=devserver.url,
        client_id="kt-cli",
        token_endpoint=f"{devserver.url}/oauth/token",
        scopes=("openid", "tokens:read"),
        granted_scope="openid",
        expires_at=time.time() + 900,
        refresh_expires_at=None,
    )
    FileStore(cfg(env)).save("corp", oauth)
    r = kt("auth", "refresh", "--profile", "corp", "--scope", "openid email", env=env)
    assert r.code == 3
    assert "does not have email" in r.stderr
    # the sign-in that asks for what the session has and what it lacks (issue 12)
    assert r.stderr.splitlines()[-1] == (
        "run: kt auth login --browser --scope 'openid email' --insecure-storage --profile corp"
    )
    assert stored(env, "corp") == oauth

    # an API scope is the role's: the issuer does not offer it, so no consent would add it
    r = kt("auth", "refresh", "--profile", "corp", "--scope", "openid tokens:write", env=env)
    assert r.code == 2
    assert "tokens:write: not a scope" in r.stderr and "follow your role" in r.stderr
    assert stored(env, "corp") == oauth
