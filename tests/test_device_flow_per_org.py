"""Device sign-in turned off by one organization (issue 13 item 4): `kt-devserver org NAME
--no-device-flow`. The device authorization comes before anyone is known, so the server refuses
when the person is: the approval page says the organization does not allow it (403), and the
device's poll answers unauthorized_client with that reason. `kt auth login --device` then says
why and, on a terminal, falls back to paste-back. Real kt-devserver and `kt` processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx2

from kt_devserver import demo
from tests.fixtures.device_person import Person, kind
from tests.fixtures.devserver import DevServer
from tests.fixtures.oauth_client import CLIENT_ID, DEVICE_GRANT, Browser
from tests.kt_process import REPO, base_env, kt, start_device_login
from tests.terminal import Terminal

REFUSAL = f"The organization {demo.ORGANIZATION_NAME} does not allow device sign-in"
PROMPT = "Paste here and press Enter: "


def org(server: DevServer, *args: str) -> str:
    """`kt-devserver --db DB org Acme ARGS`, against the running server's database."""
    done = subprocess.run(
        [sys.executable, "-m", "kt_devserver", "--db", str(server.db_path), "org",
         demo.ORGANIZATION_NAME, *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def device_authorization(server: DevServer) -> dict[str, str]:
    reply = httpx2.post(
        server.url + "/oauth/device_authorization",
        data={"client_id": CLIENT_ID, "scope": "openid offline_access"},
    )
    assert reply.status_code == 200, reply.text
    grant: dict[str, str] = reply.json()
    return grant


def poll(server: DevServer, device_code: str) -> httpx2.Response:
    data = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLIENT_ID}
    return httpx2.post(server.url + "/oauth/token", data=data)


def test_the_organization_s_setting_refuses_an_approved_device_sign_in(devserver):
    assert org(devserver) == "Acme: device sign-in allowed"
    assert org(devserver, "--no-device-flow") == "Acme: device sign-in turned off"
    assert org(devserver) == "Acme: device sign-in turned off"

    # still offered server-wide: who signs in, and so which organization, is not known yet
    meta = httpx2.get(devserver.url + "/.well-known/openid-configuration").json()
    assert "device_authorization_endpoint" in meta
    grant = device_authorization(devserver)
    with Person(devserver) as person:
        page = person.decide(grant["user_code"], "approve")
    assert page.status_code == 403
    assert kind(page) == "refused"
    assert f"{demo.ORGANIZATION_NAME} does not allow device sign-in" in page.text
    assert "kt auth login --remote" in page.text

    refused = poll(devserver, grant["device_code"])
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "unauthorized_client",
        "error_description": REFUSAL + "; sign in with a browser instead.",
    }
    assert poll(devserver, grant["device_code"]).json()["error"] == "unauthorized_client"

    # a denial is still a denial
    grant = device_authorization(devserver)
    with Person(devserver) as person:
        denied = person.decide(grant["user_code"], "deny")
        assert kind(denied) == "denied", denied.text
    assert poll(devserver, grant["device_code"]).json()["error"] == "access_denied"

    # turned on again: the next device sign-in goes through
    assert org(devserver, "--device-flow") == "Acme: device sign-in allowed"
    grant = device_authorization(devserver)
    with Person(devserver) as person:
        assert kind(person.decide(grant["user_code"], "approve")) == "approved"
    tokens = poll(devserver, grant["device_code"])
    assert tokens.status_code == 200 and "access_token" in tokens.json()


def test_an_unknown_organization_is_a_clear_error(devserver):
    done = subprocess.run(
        [sys.executable, "-m", "kt_devserver", "--db", str(devserver.db_path), "org", "Nope",
         "--no-device-flow"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "kt-devserver: error: no organization 'Nope' in this database"


def test_without_a_terminal_kt_says_why_and_keeps_nothing(tmp_path, devserver):
    org(devserver, "--no-device-flow")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    proc, doc = start_device_login(env)
    try:
        with Person(devserver) as person:
            assert kind(person.decide(doc["user_code"], "approve")) == "refused"
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 7, err
    assert out == ""
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert error["code"] == "kt.device_flow_unavailable"
    assert REFUSAL in error["message"]
    assert "kt auth login --browser" in error["hint"]
    assert "plaintext" not in err  # nothing to keep
    assert kt("auth", "status", env=env).code == 3


def test_on_a_terminal_kt_falls_back_to_paste_back_saying_why(tmp_path, devserver):
    org(devserver, "--no-device-flow")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    term = Terminal(
        ["auth", "login", "--device", "--insecure-storage", "--no-qr"], env, columns=400
    )
    seen = term.expect("Never enter a code someone sent you.")
    (user_code,) = re.findall(r"enter the code:\s+([A-Z]{4}-[A-Z]{4})", seen)
    with Person(devserver) as person:
        assert kind(person.decide(user_code, "approve")) == "refused"
    seen = term.expect(PROMPT)
    assert "Device sign-in cannot be used" in seen and REFUSAL in seen
    (url,) = re.findall(re.escape(devserver.url) + r"/oauth/authorize\S+", seen)
    browser = Browser(devserver)  # the same person, now signing in with a browser
    try:
        page = browser.sign_in(browser.http.get(url), demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
        answer = browser.approve(page).headers["location"]
    finally:
        browser.close()
    assert answer.startswith(devserver.url + "/oauth/remote-callback?")
    term.type(answer)
    assert term.finish() == 0, term.seen
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    assert who.json()["user"]["email"] == demo.ALICE_EMAIL
