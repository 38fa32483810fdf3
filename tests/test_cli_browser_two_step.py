"""Two-step browser sign-in for agents (issue 12): `kt auth login --browser --start` leaves a
small detached process holding the loopback listener, prints its one-time link and a handle and
exits at once; `--complete HANDLE` collects what that process finished; `--cancel HANDLE` ends
it. The real `kt` against a real kt-devserver, the person's browser scripted over HTTP
(e2e/test_browser_two_step.py does it in Chromium)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from kt_login.store import FileStore
from tests.fixtures.oauth_client import form_of
from tests.kt_process import ALICE, Result, kt

SECRETS_OF_THE_REQUEST = {"verifier", "code_verifier", "state", "nonce", "code_challenge"}


def cfg(env: dict[str, str]) -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"])


def start(env: dict[str, str], *extra: str) -> dict[str, Any]:
    began = time.monotonic()
    r = kt("auth", "login", "--browser", "--start", "--insecure-storage", "--json", *extra, env=env)
    assert r.code == 0, r.stderr
    assert time.monotonic() - began < 30  # back at once, not when the person is done
    info: dict[str, Any] = r.json()
    return info


def complete(env: dict[str, str], handle: str, *extra: str) -> Result:
    return kt("auth", "login", "--complete", handle, "--json", *extra, env=env, timeout=120)


def state_of(env: dict[str, str], handle: str) -> dict[str, Any] | None:
    path = cfg(env) / "pending" / f"{handle}.json"
    return json.loads(path.read_text()) if path.exists() else None


def holder_gone(pid: int, within: float = 20.0) -> bool:
    """Whether the holder process has exited (it is not our child: no wait() to reap it)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().split(") ", 1)[1].startswith("Z"):
                    return True  # exited, waiting for init to reap it
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.05)
    return False


def person_signs_in(sign_in_url: str, decision: str = "approve") -> httpx2.Response:
    """The person's browser: the one-time link, the provider's sign-in and consent, and back
    to kt's listener."""
    with httpx2.Client(timeout=10, follow_redirects=True) as browser:
        page = browser.get(sign_in_url)
        for fields in (
            {"email": ALICE[0], "password": ALICE[1]},
            {"decision": decision},
        ):
            form = form_of(page)
            page = browser.post(str(page.url.join(form.action)), data={**form.fields, **fields})
        return page


def test_start_then_sign_in_then_complete(env, devserver):
    info = start(env, "--profile", "agent")
    assert info["method"] == "browser" and info["sign_in_url"].startswith("http://127.0.0.1:")
    assert info["complete_command"] == f"kt auth login --complete {info['handle']}"
    state = state_of(env, info["handle"])
    assert state is not None and not SECRETS_OF_THE_REQUEST & set(state)
    pid = state["pid"]
    assert not holder_gone(pid, within=0.5)  # it holds the listener

    back = person_signs_in(info["sign_in_url"])
    assert back.status_code == 200 and back.url.host == "127.0.0.1"
    r = complete(env, info["handle"])
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["profile"] == "agent" and doc["user"]["email"] == ALICE[0]
    assert doc["method"] == "browser"
    assert state_of(env, info["handle"]) is None
    assert holder_gone(pid)
    session = FileStore(cfg(env)).load("agent")
    assert session is not None and session.method == "browser"
    assert kt("auth", "whoami", "--profile", "agent", env=env).code == 0


def test_pending_then_cancel_ends_the_listener(env):
    info = start(env)
    for extra in ((), ("--wait", "0")):
        r = complete(env, info["handle"], "--wait", "1", *extra)
        assert r.code == 3
        assert r.error()["code"] == "auth.sign_in_pending"
        assert r.error()["hint"] == f"run: kt auth login --complete {info['handle']}"
    state = state_of(env, info["handle"])
    assert state is not None
    r = kt("auth", "login", "--cancel", info["handle"], env=env)
    assert r.code == 0, r.stderr
    assert holder_gone(state["pid"])
    assert state_of(env, info["handle"]) is None
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(info["sign_in_url"], timeout=5)  # nothing listens there any more
    r = complete(env, info["handle"])
    assert r.code == 2


def test_a_denied_sign_in(env):
    info = start(env)
    person_signs_in(info["sign_in_url"], decision="deny")
    r = complete(env, info["handle"], "--wait", "60")
    assert r.code == 3
    assert r.error()["code"] == "oauth.access_denied"
    assert state_of(env, info["handle"]) is None
    assert FileStore(cfg(env)).load("default") is None


def test_nobody_signs_in_before_the_timeout(env):
    info = start(env, "--timeout", "10")
    pid = state_of(env, info["handle"])["pid"]  # type: ignore[index]
    r = complete(env, info["handle"], "--wait", "60")
    assert r.code == 1
    assert "no sign-in arrived within 10 s" in r.error()["message"]
    assert state_of(env, info["handle"]) is None
    assert holder_gone(pid)
