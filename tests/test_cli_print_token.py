"""`kt auth print-access-token`: the real `kt` against a real kt-devserver.

Time moves the way tests/test_cli_refresh.py moves it: the stored session is rewritten (as kt
writes it) with the expiry a later moment would see.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import httpx2

from kt_login.session import Session
from kt_login.store import FileStore
from tests.kt_process import ALICE, base_env, kt, password_login
from tests.terminal import Terminal


def config_dir(env: dict[str, str]) -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"])


def stored(env: dict[str, str], profile: str = "default") -> Session | None:
    return FileStore(config_dir(env)).load(profile)


def rewrite(env: dict[str, str], profile: str = "default", **changes: Any) -> Session:
    session = stored(env, profile)
    assert session is not None
    changed = dataclasses.replace(session, **changes)
    FileStore(config_dir(env)).save(profile, changed)
    return changed


def login(env: dict[str, str], *extra: str) -> Session:
    r = password_login(env, ALICE, "--insecure-storage", *extra)
    assert r.code == 0, r.stderr
    profile = extra[extra.index("--profile") + 1] if "--profile" in extra else "default"
    session = stored(env, profile)
    assert session is not None
    return session


def whoami_with(url: str, token: str) -> httpx2.Response:
    return httpx2.get(f"{url}/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})


def test_prints_the_stored_token_alone_and_it_works(env, devserver):
    session = login(env)
    r = kt("auth", "print-access-token", env=env)
    assert r.code == 0, r.stderr
    assert r.stdout == session.access_token + "\n"
    assert r.stderr == ""
    reply = whoami_with(devserver.url, r.stdout.strip())
    assert reply.status_code == 200 and reply.json()["user"]["email"] == ALICE[0]
    after = stored(env)
    assert after is not None and after.refresh_token == session.refresh_token  # no refresh


def test_json_document(env, devserver):
    session = login(env)
    r = kt("auth", "print-access-token", "--json", env=env)
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["access_token"] == session.access_token
    assert doc["token_type"] == "Bearer"
    assert doc["profile"] == "default"
    assert doc["api_url"] == devserver.url
    assert doc["credential_source"] == "file (plaintext)"
    assert doc["expires_at"].endswith("Z")
    assert session.expires_at is not None
    assert abs(doc["expires_in"] - (session.expires_at - time.time())) < 30


def test_an_expired_access_token_is_refreshed_first(env, devserver):
    before = login(env)
    rewrite(env, expires_at=time.time() - 30)  # the moment after the access token expired
    r = kt("auth", "print-access-token", env=env)
    assert r.code == 0, r.stderr
    token = r.stdout.strip()
    after = stored(env)
    assert after is not None
    assert token == after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token  # rotated and saved before use
    assert after.expires_at is not None and after.expires_at > time.time() + 600
    assert whoami_with(devserver.url, token).status_code == 200


def test_min_ttl_refreshes_a_token_that_expires_sooner(env, devserver):
    login(env)
    # 5 minutes left: fine for a request now, too short for --min-ttl 10m
    short = rewrite(env, expires_at=time.time() + 300)
    r = kt("auth", "print-access-token", "--min-ttl", "10m", "--json", env=env)
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["access_token"] != short.access_token
    assert doc["expires_in"] >= 600
    assert whoami_with(devserver.url, doc["access_token"]).status_code == 200

    # 20 minutes left: no refresh for --min-ttl 10m (nor for 600 seconds written plainly)
    long = rewrite(env, expires_at=time.time() + 1200)
    for ttl in ("10m", "600", "600s"):
        r = kt("auth", "print-access-token", "--min-ttl", ttl, env=env)
        assert r.code == 0, r.stderr
        assert r.stdout.strip() == long.access_token


def test_min_ttl_longer_than_the_servers_lifetime_gives_the_fresh_token_and_says_so(env):
    login(env)
    r = kt("auth", "print-access-token", "--min-ttl", "2h", env=env)
    assert r.code == 0, r.stderr
    after = stored(env)
    assert after is not None and r.stdout.strip() == after.access_token
    assert "less than --min-ttl 7200 s" in r.stderr


def test_bad_min_ttl_is_a_usage_error(env):
    r = kt("auth", "print-access-token", "--min-ttl", "soon", env=env)
    assert r.code == 2
    assert "not a duration" in r.stderr
    assert r.stdout == ""


def test_no_session_exits_3_with_the_login_command(env):
    r = kt("auth", "print-access-token", env=env)
    assert r.code == 3
    assert r.stdout == ""
    assert r.stderr.splitlines()[-1] == "run: kt auth login"

    r = kt("auth", "print-access-token", "--profile", "ci", "--json", env=env)
    assert r.code == 3
    assert r.stdout == ""
    error = r.error()
    assert error["exit_code"] == 3
    assert error["hint"] == "run: kt auth login --profile ci"


def test_an_expired_refresh_token_exits_3_and_prints_no_token(env):
    session = login(env, "--profile", "ci")
    past = time.time() - 30
    rewrite(env, "ci", expires_at=past, refresh_expires_at=past)
    r = kt("auth", "print-access-token", "--profile", "ci", env=env)
    assert r.code == 3
    assert r.stdout == ""
    assert "expired" in r.stderr
    assert r.stderr.splitlines()[-1] == "run: kt auth login --profile ci"
    assert session.access_token not in r.stderr


def test_a_session_that_cannot_be_refreshed_is_kept_when_min_ttl_is_not_met(env):
    login(env)
    kept = rewrite(env, refresh_token=None, expires_at=time.time() + 300)
    r = kt("auth", "print-access-token", "--min-ttl", "10m", env=env)
    assert r.code == 3
    assert r.stdout == ""
    assert "cannot be refreshed" in r.stderr and "no refresh token" in r.stderr
    assert r.stderr.splitlines()[-1] == "run: kt auth login"
    assert stored(env) == kept  # still usable for what it has left
    r = kt("auth", "print-access-token", env=env)
    assert r.code == 0 and r.stdout.strip() == kept.access_token


def test_keeptrusts_api_token_wins(env, devserver):
    login(env)
    api_token = "kt_live_example_not_checked"
    r = kt("auth", "print-access-token", env={**env, "KEEPTRUSTS_API_TOKEN": api_token})
    assert r.code == 0, r.stderr
    assert r.stdout == api_token + "\n"
    r = kt("auth", "print-access-token", "--json", env={**env, "KEEPTRUSTS_API_TOKEN": api_token})
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["access_token"] == api_token
    assert doc["credential_source"] == "environment"
    assert doc["expires_at"] is None and doc["expires_in"] is None
    assert doc["api_url"] == devserver.url


def test_never_prompts_on_a_terminal(tmp_path, devserver):
    """A person's terminal and no session: kt asks nothing, it says what to run."""
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    term = Terminal(["auth", "print-access-token"], env)
    try:
        code = term.finish()  # nothing is typed: a prompt would hang until the timeout
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
            term.proc.wait()
    assert code == 3
    text = term.seen
    assert "run: kt auth login" in text
    assert "Email" not in text and "Password" not in text


def test_listed_in_auth_help(tmp_path):
    r = kt("auth", "--help", env=base_env(tmp_path))
    assert "print-access-token" in r.stdout
