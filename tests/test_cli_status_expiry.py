"""`kt auth status` tells a session that can still be used (or refreshed) from an expired one
(issue 12, defect 2), through the real `kt` and without a network."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kt_login.store import FileStore
from tests.kt_process import base_env, kt
from tests.sample_sessions import ACCESS, REFRESH, make_session

API = "http://127.0.0.1:9"  # never contacted: status reads the store only
HOUR = 3600.0


def stored(tmp_path: Path, **times: object) -> dict[str, str]:
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=API)
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text('credential_store = "file"\n')
    FileStore(cfg).save("default", make_session(api_url=API, **times))
    return env


@pytest.mark.parametrize(
    "times, why",
    [
        ({"refresh_expires_at": time.time() - HOUR}, "the refresh token has expired"),
        ({"refresh_token": None, "refresh_expires_at": None}, "no refresh token"),
    ],
)
def test_an_expired_session_is_reported_expired_and_exits_3(tmp_path, times, why):
    env = stored(
        tmp_path, expires_at=time.time() - 2 * HOUR, obtained_at=time.time() - 3 * HOUR, **times
    )
    r = kt("auth", "status", "--json", env=env)
    assert r.code == 3, r.stderr
    doc = r.json()
    assert doc["expired"] is True and doc["logged_in"] is False
    assert doc["access_token_expired"] is True and doc["refreshable"] is False
    assert r.error()["code"] == "auth.login_required"
    assert "has expired" in r.error()["message"]
    human = kt("auth", "status", env=env)
    assert human.code == 3
    assert "the session has expired" in human.stdout and why in human.stdout
    assert "will be refreshed" not in human.stdout
    assert "run: kt auth login" in human.stderr
    assert ACCESS not in human.stdout + human.stderr and REFRESH not in human.stdout + human.stderr


def test_an_expired_access_token_with_a_live_refresh_token_is_still_logged_in(tmp_path):
    env = stored(
        tmp_path,
        expires_at=time.time() - HOUR,
        obtained_at=time.time() - 2 * HOUR,
        refresh_expires_at=time.time() + 24 * HOUR,
    )
    r = kt("auth", "status", "--json", env=env)
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["logged_in"] is True and doc["expired"] is False
    assert doc["access_token_expired"] is True and doc["refreshable"] is True
    human = kt("auth", "status", env=env)
    assert human.code == 0 and "(will be refreshed on next use)" in human.stdout


def test_a_live_session_that_cannot_be_refreshed_says_so(tmp_path):
    env = stored(
        tmp_path,
        expires_at=time.time() + HOUR,
        obtained_at=time.time(),
        refresh_token=None,
        refresh_expires_at=None,
    )
    r = kt("auth", "status", env=env)
    assert r.code == 0, r.stderr
    assert "(cannot be refreshed)" in r.stdout
