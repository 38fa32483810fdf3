"""`kt auth refresh --scope S` for scopes a browser or device session lacks (issue 12): on a
terminal kt signs in again the same way, asking for what the session was granted and what it
lacks (never dropping any), keeps the profile and says what was added; without a person it exits
3 with that exact command. The real `kt` against a real kt-devserver; the person's browser is
httpx2 on kt-devserver's pages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx2

from kt_devserver import demo
from kt_login.session import Session
from kt_login.store import FileStore
from tests.fixtures.device_person import Person, kind
from tests.fixtures.devserver import DevServer
from tests.fixtures.oauth_client import Browser
from tests.kt_process import kt, start_device_login
from tests.terminal import Terminal

FIRST = "openid offline_access"  # what the first sign-in asks for


def stored(env: dict[str, str], profile: str = "default") -> Session:
    session = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load(profile)
    assert session is not None
    return session


def consented(page: httpx2.Response) -> list[str]:
    """The scopes a consent page asks the person for."""
    return re.findall(r'<li data-scope="([^"]+)"', page.text)


def device_session(env: dict[str, str], devserver: DevServer, *extra: str) -> Session:
    proc, doc = start_device_login(env, "--scope", FIRST, *extra)
    try:
        with Person(devserver) as person:
            assert kind(person.decide(doc["user_code"], "approve")) == "approved"
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return stored(env, extra[-1] if extra else "default")


def browser_session(env: dict[str, str], devserver: DevServer) -> Session:
    """`kt auth login --browser --json` whose browser cannot be opened (BROWSER=false): the
    person follows the link it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kt_login", "auth", "login", "--browser", "--json",
         "--insecure-storage", "--scope", FIRST],
        env={**env, "BROWSER": "false"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()
        while "sign_in_url" not in line:
            assert line, "kt ended before printing the sign-in link"
            line = proc.stderr.readline()
        sign_in(devserver, json.loads(line)["sign_in_url"])
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return stored(env)


def sign_in(devserver: DevServer, link: str) -> list[str]:
    """A person signs in from kt's one-time link and approves; the scopes they consented to."""
    authorize = httpx2.get(link, timeout=10).headers["location"]
    browser = Browser(devserver)
    try:
        page = browser.http.get(authorize)
        page = browser.sign_in(page, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
        scopes = consented(page)
        redirect = browser.approve(page)
    finally:
        browser.close()
    assert redirect.status_code in (302, 303), redirect.text
    assert httpx2.get(redirect.headers["location"], timeout=10).status_code == 200
    return scopes


def test_without_a_person_kt_exits_3_with_the_sign_in_that_adds_them(env, devserver):
    before = device_session(env, devserver, "--profile", "ops")
    assert before.granted_scope == FIRST
    for extra in ((), ("--json",)):
        r = kt("auth", "refresh", "--profile", "ops", "--scope", "email", *extra, env=env)
        assert r.code == 3, r.stderr
        assert r.stdout == ""
    error = r.error()
    assert "does not have email" in error["message"]
    assert error["hint"] == (
        "run: kt auth login --device --scope 'openid offline_access email' --insecure-storage "
        "--profile ops"
    )
    assert stored(env, "ops") == before  # neither refreshed nor replaced

    # scopes it has are just a refresh
    r = kt("auth", "refresh", "--profile", "ops", "--scope", "offline_access", env=env)
    assert r.code == 0, r.stderr
    assert stored(env, "ops").refresh_token != before.refresh_token


def test_on_a_terminal_a_device_session_consents_again_to_the_union(env, devserver):
    before = device_session(env, devserver)
    term = Terminal(["auth", "refresh", "--scope", "email"], env, columns=400)
    seen = term.expect("Never enter a code someone sent you.")
    assert "does not have email: signing in again with your device" in seen
    (user_code,) = re.findall(r"enter the code:\s+([A-Z]{4}-[A-Z]{4})", seen)
    with Person(devserver) as person:
        page = person.to_consent(user_code)
        assert consented(page) == ["openid", "offline_access", "email"]  # nothing dropped
        assert kind(person.submit(page, decision="approve")) == "approved"
    assert term.finish() == 0, term.seen
    assert "Added to the session: email." in term.seen
    after = stored(env)
    assert after.granted_scope == "openid offline_access email"
    assert after.method == "device" and after.refresh_token  # offline_access kept
    assert after.access_token != before.access_token
    assert kt("auth", "whoami", env=env).code == 0


def test_on_a_terminal_a_browser_session_consents_again_to_the_union(env, devserver):
    before = browser_session(env, devserver)
    assert before.method == "browser" and before.granted_scope == FIRST
    term = Terminal(
        ["auth", "refresh", "--scope", "email profile"], {**env, "BROWSER": "false"}, columns=400
    )
    seen = term.expect("Paste here and press Enter: ")
    assert "does not have email, profile: signing in again with your browser" in seen
    (link,) = re.findall(r"^  (http://127\.0\.0\.1:\d+/\S+)", seen, re.MULTILINE)
    assert sign_in(devserver, link) == ["openid", "offline_access", "email", "profile"]
    assert term.finish() == 0, term.seen
    assert "Added to the session: email, profile." in term.seen
    after = stored(env)
    assert after.granted_scope == "openid offline_access email profile"
    assert after.method == "browser" and after.refresh_token


def test_scopes_the_issuer_does_not_offer_are_refused_before_any_sign_in(env, devserver):
    before = device_session(env, devserver)
    r = kt("auth", "refresh", "--scope", "email billing:admin", env=env)
    assert r.code == 2, r.stderr
    assert "Error: billing:admin: not a scope" in r.stderr  # email is one it offers
    assert "follow your role" in r.stderr
    assert stored(env) == before
