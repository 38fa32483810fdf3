"""Two-step device sign-in for agents (issue 12): `kt auth login --device --start` prints the
code, the URL and a handle and exits at once; `--complete HANDLE [--wait]` finishes it;
`--cancel HANDLE` forgets it. The real `kt` against a real kt-devserver, the person's side
played on its verification pages over HTTP (e2e/test_device_two_step.py does it in Chromium)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest

from kt_devserver import demo
from kt_login.store import FileStore
from tests.fixtures.oauth_client import form_of
from tests.kt_process import ALICE, Result, base_env, kt


def cfg(env: dict[str, str]) -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"])


def start(env: dict[str, str], *extra: str) -> dict[str, Any]:
    r = kt("auth", "login", "--device", "--start", "--insecure-storage", "--json", *extra, env=env)
    assert r.code == 0, r.stderr
    return r.json() | {"_stderr": r.stderr, "_stdout": r.stdout}


def pending_file(env: dict[str, str], handle: str) -> Path:
    return cfg(env) / "pending" / f"{handle}.json"


def complete(env: dict[str, str], handle: str, *extra: str) -> Result:
    return kt("auth", "login", "--complete", handle, *extra, env=env, timeout=120)


def person_decides(url: str, verification_uri_complete: str, decision: str = "approve") -> None:
    """alice, on her phone: open the link, confirm the code, sign in, approve (or deny)."""
    with httpx2.Client(base_url=url, timeout=10, follow_redirects=True) as browser:
        page = browser.get(verification_uri_complete)

        def submit(response: httpx2.Response, **fields: str) -> httpx2.Response:
            form = form_of(response)
            return browser.post(form.action, data={**form.fields, **fields})

        page = submit(page, decision="continue")
        page = submit(page, email=demo.ALICE_EMAIL, password=demo.ALICE_PASSWORD)
        page = submit(page, decision=decision)
        assert page.status_code == 200, page.text


def test_start_then_approve_then_complete(env, devserver):
    info = start(env, "--profile", "agent")
    assert info["user_code"] and info["verification_uri"].startswith(devserver.url)
    assert info["qr_payload"] == info["verification_uri_complete"]
    assert info["complete_command"] == f"kt auth login --complete {info['handle']}"
    assert info["expires_in"] > 60 and info["expires_at"].endswith("Z")
    # the pending state is owner-only, and its device code is printed nowhere
    path = pending_file(env, info["handle"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    device_code = json.loads(path.read_text())["device_code"]
    assert device_code not in info["_stdout"] + info["_stderr"]

    person_decides(devserver.url, info["verification_uri_complete"])
    # finished from another shell whose default profile is not the agent's
    r = complete(env, info["handle"], "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["logged_in"] is True and doc["profile"] == "agent" and doc["method"] == "device"
    assert doc["user"]["email"] == ALICE[0]
    assert device_code not in r.stdout + r.stderr
    assert not path.exists()
    session = FileStore(cfg(env)).load("agent")
    assert session is not None and session.method == "device"
    r = kt("auth", "whoami", "--profile", "agent", "--json", env=env)
    assert r.code == 0 and r.json()["user"]["email"] == ALICE[0]
    # done is done
    assert complete(env, info["handle"]).code == 2


def test_complete_before_approval_says_pending_and_keeps_it(env, devserver):
    info = start(env)
    for extra in ((), ("--json",)):
        r = complete(env, info["handle"], "--wait", "0", *extra)
        assert r.code == 3
        assert r.stdout == ""
    error = r.error()
    assert error["code"] == "auth.sign_in_pending"
    assert error["hint"] == f"run: kt auth login --complete {info['handle']}"
    assert pending_file(env, info["handle"]).exists()
    person_decides(devserver.url, info["verification_uri_complete"])
    r = complete(env, info["handle"], "--wait", "60")
    assert r.code == 0, r.stderr
    assert "Logged in to" in r.stdout


def test_a_denied_sign_in_ends(env, devserver):
    info = start(env)
    person_decides(devserver.url, info["verification_uri_complete"], decision="deny")
    r = complete(env, info["handle"], "--wait", "60")
    assert r.code == 3
    assert "denied" in r.stderr
    assert not pending_file(env, info["handle"]).exists()
    assert FileStore(cfg(env)).load("default") is None


def test_an_expired_sign_in_ends_with_the_command_to_start_again(env):
    info = start(env, "--profile", "agent")
    path = pending_file(env, info["handle"])
    state = json.loads(path.read_text())
    state["expires_at"] = time.time() - 1  # later: the code's lifetime has passed
    path.write_text(json.dumps(state))
    r = complete(env, info["handle"], "--json")
    assert r.code == 3
    error = r.error()
    assert "expired" in error["message"]
    assert error["hint"] == "run: kt auth login --device --start --profile agent"
    assert not path.exists()


def test_cancel(env):
    info = start(env)
    r = kt("auth", "login", "--cancel", info["handle"], "--json", env=env)
    assert r.code == 0, r.stderr
    assert r.json() == {"cancelled": True, "handle": info["handle"]}
    assert not pending_file(env, info["handle"]).exists()
    for args in (("--cancel", info["handle"]), ("--complete", info["handle"])):
        r = kt("auth", "login", *args, env=env)
        assert r.code == 2 and "no pending sign-in" in r.stderr


def test_a_pending_file_others_may_read_is_refused(env):
    info = start(env)
    path = pending_file(env, info["handle"])
    path.chmod(0o644)
    r = complete(env, info["handle"])
    assert r.code == 1
    assert r.stderr.splitlines()[-1] == f"run: chmod 600 {path}"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--complete", "../../etc/passwd"), "not a sign-in handle"),
        (("--cancel", "d" + "0" * 24, "--complete", "d" + "0" * 24), "one of --start"),
        (("--start",), "--start needs --browser or --device"),
        (("--device", "--start", "--email", "a@example.com"), "drop --email"),
    ],
)
def test_usage_errors(env, args, says):
    r = kt("auth", "login", *args, env=env)
    assert r.code == 2
    assert says in r.stderr


def test_complete_for_another_profile_is_refused(env):
    info = start(env, "--profile", "agent")
    r = complete(env, info["handle"], "--profile", "other")
    assert r.code == 2 and "is for profile 'agent'" in r.stderr
    assert pending_file(env, info["handle"]).exists()


_READ_ITEM = """
import json, sys
import keyring
print(json.dumps(keyring.get_password("keeptrusts-cli", sys.argv[1])))
"""


def keyring_item(env: dict[str, str], name: str) -> str | None:
    proc = subprocess.run(
        [sys.executable, "-c", _READ_ITEM, name],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    value = json.loads(proc.stdout)
    assert value is None or isinstance(value, str)
    return value


def test_with_a_keyring_the_device_code_is_kept_there_not_in_the_file(
    tmp_path, devserver, secret_service
):
    profile = f"agent-{uuid.uuid4().hex[:10]}"
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, **secret_service)
    r = kt("auth", "login", "--device", "--start", "--profile", profile, "--json", env=env)
    assert r.code == 0, r.stderr
    info = r.json()
    state = json.loads(pending_file(env, info["handle"]).read_text())
    assert "device_code" not in state and state["device_code_in"] == "keyring"
    device_code = keyring_item(env, f"pending:{info['handle']}")
    assert device_code and device_code not in r.stdout + r.stderr

    person_decides(devserver.url, info["verification_uri_complete"])
    r = complete(env, info["handle"], "--json")
    assert r.code == 0, r.stderr
    assert r.json()["credential_store"] == "keyring"
    assert keyring_item(env, f"pending:{info['handle']}") is None  # gone with the sign-in
    assert not pending_file(env, info["handle"]).exists()
    assert keyring_item(env, f"profile:{profile}")  # the session is there
    assert kt("auth", "logout", "--profile", profile, env=env).code == 0
