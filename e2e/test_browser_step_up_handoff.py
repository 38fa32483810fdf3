"""The step-up handoff end to end in Chromium (issue 12, issue 14 item 3): an agent's command meets
kt-devserver's RFC 9470 challenge with no person at the terminal, exits 4 with a step-up sign-in
already started; the person opens its link in Chromium, signs in again (password and code: the
challenge's max_age asks for a fresh sign-in), the agent runs the printed command and retries.
The same flow scripted over HTTP is tests/test_cli_step_up.py."""

from __future__ import annotations

import contextlib
import shlex
import sqlite3
import time

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from tests.kt_process import base_env, kt

MFA_ACR = "urn:keeptrusts:acr:mfa"


def bob_signs_in(page, url: str, code_at: float) -> None:
    page.goto(url)
    page.fill("input[name=email]", "bob@example.com")
    page.fill("input[name=password]", "bob-password")
    page.click("button[type=submit]")
    page.fill("input[name=code]", totp.code(BOB_TOTP_SECRET, code_at))
    page.click("button[type=submit]")
    if page.locator("button[name=decision][value=approve]").count():
        page.click("button[name=decision][value=approve]")
    page.wait_for_selector("text=close this")


def test_a_step_up_handed_over_is_finished_in_the_browser(tmp_path, devserver_factory, page):
    devserver = devserver_factory("--mfa-max-age", "300")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    started = kt("auth", "login", "--browser", "--start", "--insecure-storage", "--json", env=env)
    assert started.code == 0, started.stderr
    bob_signs_in(page, started.json()["sign_in_url"], time.time())
    done = kt("auth", "login", "--complete", started.json()["handle"], "--json", env=env)
    assert done.code == 0, done.stderr
    created = kt(
        "auth", "token", "create", "--name", "ci", "--scope", "tokens:read", "--json", env=env
    )
    assert created.code == 0, created.stderr
    token_id = created.json()["token"]["id"]
    with contextlib.closing(sqlite3.connect(devserver.db_path)) as db, db:
        db.execute("UPDATE sessions SET created_at = created_at - 3600")  # his MFA is now old

    rotate = ("auth", "token", "rotate", "--id", token_id, "--json")
    r = kt(*rotate, env=env)
    assert r.code == 4, r.stderr
    error = r.error()
    assert (error["acr_values"], error["max_age"]) == (MFA_ACR, 300)
    bob_signs_in(page, error["step_up"]["sign_in_url"], time.time() + 30)  # the next code
    finished = kt(*shlex.split(error["hint"].removeprefix("run: "))[1:], "--json", env=env)
    assert finished.code == 0, finished.stderr
    assert finished.json()["identity"]["acr"] == MFA_ACR
    r = kt(*rotate, env=env)
    assert r.code == 0, r.stderr
    assert r.json()["revoked"]["id"] == token_id
