"""The plaintext-storage warning is said once there is a session to keep in the file, not before
a sign-in that then fails (issue 12's friction list), and with --json it is one JSON line on
stderr. The real `kt` against a real kt-devserver, and against a port nothing listens on."""

from __future__ import annotations

import json
from pathlib import Path

from tests.kt_process import ALICE, base_env, free_port, kt, password_login

PLAINTEXT = "the session will be stored in a plaintext file"


def kept(env: dict[str, str]) -> list[Path]:
    root = Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "credentials"
    return sorted(root.iterdir()) if root.exists() else []


def test_a_login_that_cannot_reach_the_server_says_nothing_about_storage(tmp_path):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=f"http://127.0.0.1:{free_port()}")
    r = password_login(env, ALICE, "--insecure-storage")
    assert r.code == 5, r.stderr
    assert "cannot reach" in r.stderr
    assert "plaintext" not in r.stderr
    assert kept(env) == []

    r = password_login(env, ALICE, "--insecure-storage", "--json")
    assert r.code == 5, r.stderr
    (line,) = r.stderr.splitlines()  # the error alone
    assert json.loads(line)["error"]["code"] == "kt.network"

    for method in ("--device", "--browser"):
        r = kt("auth", "login", method, "--insecure-storage", "--json", env=env)
        assert r.code == 5, r.stderr
        assert "plaintext" not in r.stderr, method
    assert kept(env) == []


def test_a_refused_password_says_nothing_about_storage(env):
    r = password_login(env, ALICE, "--insecure-storage", password="not-her-password")
    assert r.code == 3, r.stderr
    assert "plaintext" not in r.stderr
    assert kept(env) == []


def test_a_login_that_keeps_a_session_in_the_file_warns_once(env):
    r = password_login(env, ALICE, "--insecure-storage")
    assert r.code == 0, r.stderr
    assert r.stderr.count(PLAINTEXT) == 1, r.stderr
    (warning,) = [line for line in r.stderr.splitlines() if PLAINTEXT in line]
    assert warning.startswith("Warning: ")
    assert len(kept(env)) == 1

    r = password_login(env, ALICE, "--insecure-storage", "--json")
    assert r.code == 0, r.stderr
    (line,) = r.stderr.splitlines()
    warning = json.loads(line)["warning"]
    assert warning["code"] == "kt.plaintext_storage"
    assert warning["message"].startswith(PLAINTEXT)
    assert r.json()["credential_store"] == "file (plaintext)"
