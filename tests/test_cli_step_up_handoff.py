"""Step-up handoff (issue 12): a command that meets auth.mfa_required with no person at the
terminal exits 4, and its JSON error carries everything to continue — the mfa_token and, as the
hint, the exact `kt auth mfa challenge` command — so an agent can ask its person for a code, run
the command as printed and retry. The real `kt` against a real kt-devserver."""

from __future__ import annotations

import contextlib
import shlex
import sqlite3
import time

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from tests.kt_process import BOB, base_env, kt, password_login


def test_an_agent_continues_a_step_up_from_the_json_error(tmp_path, devserver_factory):
    devserver = devserver_factory("--mfa-max-age", "300")  # rotating needs MFA of the last 5 min
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    # bob signs in (password, then his code), and creates a token to rotate later
    login = password_login(env, BOB, "--insecure-storage", "--json")
    assert login.code == 4
    first = login.error()
    assert first["hint"].startswith("run: kt auth mfa challenge --token ")
    r = kt(
        *shlex.split(first["hint"].removeprefix("run: "))[1:],
        env=env,
        input=totp.code(BOB_TOTP_SECRET) + "\n",
    )
    assert r.code == 0, r.stderr
    created = kt(
        "auth", "token", "create", "--name", "deploy", "--scope", "tokens:read", "--json", env=env
    )
    assert created.code == 0, created.stderr
    token_id = created.json()["token"]["id"]

    # time passes: his MFA is now older than the server allows for rotating tokens
    with contextlib.closing(sqlite3.connect(devserver.db_path)) as db, db:
        db.execute("UPDATE sessions SET created_at = created_at - 3600")

    rotate = ("auth", "token", "rotate", "--id", token_id, "--json")
    r = kt(*rotate, env=env)  # no terminal: nobody to prompt
    assert r.code == 4, r.stderr
    assert r.stdout == ""
    error = r.error()
    assert error["code"] == "auth.mfa_required" and error["exit_code"] == 4
    assert error["mfa_token"]
    # what the server's WWW-Authenticate asked for (RFC 9470): the level, and how recent
    assert (error["acr_values"], error["max_age"]) == ("urn:keeptrusts:acr:mfa", 300)
    command = shlex.split(error["hint"].removeprefix("run: "))
    assert command[:5] == ["kt", "auth", "mfa", "challenge", "--token"]
    assert command[5] == error["mfa_token"]

    # the agent asks its person for a code, runs the command as printed, and retries
    code = totp.code(BOB_TOTP_SECRET, time.time() + 30)  # the next code: each is good once
    r = kt(*command[1:], env=env, input=code + "\n")
    assert r.code == 0, r.stderr
    r = kt(*rotate, env=env)
    assert r.code == 0, r.stderr
    assert r.json()["token"]["id"] != token_id
