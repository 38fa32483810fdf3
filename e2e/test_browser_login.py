"""`kt auth login --browser` for real: the kt process, its loopback listener, kt-devserver's pages
and a headless Chromium driven like a person would."""

from __future__ import annotations

import json
import time

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from tests.kt_process import kt


def sign_in(page, email, password):
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def approve(page):
    page.click("button[name=decision][value=approve]")


def test_alice_signs_in_with_the_browser(env, kt_login, page):
    run = kt_login("--browser", "--insecure-storage", "--json", env=env)
    page.goto(run.url())
    sign_in(page, "alice@example.com", "alice-password")
    approve(page)
    page.wait_for_selector("text=close this")
    code, out, err = run.finish()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["user"]["email"] == "alice@example.com" and doc["method"] == "browser"
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    assert who.json()["role"] == "admin" and who.json()["organization"]["name"] == "Acme"


def test_bob_signs_in_with_password_and_totp(env, kt_login, page):
    run = kt_login("--browser", "--insecure-storage", "--json", env=env)
    page.goto(run.url())
    sign_in(page, "bob@example.com", "bob-password")
    page.fill("input[name=code]", totp.code(BOB_TOTP_SECRET))
    page.click("button[type=submit]")
    approve(page)
    page.wait_for_selector("text=close this")
    code, out, err = run.finish()
    assert code == 0, err
    assert json.loads(out)["mfa_authenticated"] is True
    who = kt("auth", "whoami", "--json", env=env).json()
    assert who["user"]["email"] == "bob@example.com" and who["mfa_authenticated"] is True


def test_denied_consent(env, kt_login, page):
    run = kt_login("--browser", "--insecure-storage", "--json", env=env)
    page.goto(run.url())
    sign_in(page, "alice@example.com", "alice-password")
    page.click("button[name=decision][value=deny]")
    code, out, err = run.finish()
    assert code == 3
    assert json.loads(err.strip().splitlines()[-1])["error"]["code"] == "oauth.access_denied"
    assert kt("auth", "status", env=env).code == 3


def test_wrong_password_then_tab_closed_times_out(env, kt_login, page):
    run = kt_login("--browser", "--insecure-storage", "--timeout", "10", env=env)
    page.goto(run.url())
    sign_in(page, "alice@example.com", "wrong")
    assert page.locator("input[name=password]").count() == 1  # still on the sign-in page
    page.close()
    code, out, err = run.finish()
    assert code == 1
    assert "no sign-in arrived" in err
    assert kt("auth", "status", env=env).code == 3


def test_no_browser_prints_url(env, kt_login, page):
    run = kt_login("--no-browser", "--insecure-storage", env=env)
    # with --no-browser kt only prints the URL; read it from stderr like a person would
    assert run.proc.stderr is not None
    url = None
    for line in run.proc.stderr:
        if line.strip().startswith("http"):
            url = line.strip()
            break
    # …which is kt's one-time loopback link, not the authorization request (issue 11 case 1)
    assert url and url.startswith("http://127.0.0.1:") and "?" not in url
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "redirect_uri=" in r.url else None)
    page.goto(url)
    assert asked and "code_challenge_method=S256" in asked[0], asked
    sign_in(page, "alice@example.com", "alice-password")
    approve(page)
    code, _, err = run.finish()
    assert code == 0, err


def test_browser_session_refreshes_and_logs_out_at_the_issuer(env, kt_login, page, devserver):
    import dataclasses
    import time
    from pathlib import Path

    import httpx2

    from kt_login.store import FileStore

    run = kt_login("--browser", "--insecure-storage", env=env)
    page.goto(run.url())
    sign_in(page, "alice@example.com", "alice-password")
    approve(page)
    assert run.finish()[0] == 0
    store = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"]))
    first = store.load("default")
    assert first is not None and first.token_endpoint and first.subject
    store.save("default", dataclasses.replace(first, expires_at=time.time() + 5))
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    second = store.load("default")
    assert second.refresh_token != first.refresh_token  # rotated at the token endpoint
    assert second.subject == first.subject and second.issuer == first.issuer
    assert kt("auth", "logout", env=env).code == 0
    r = httpx2.get(
        devserver.url + "/v1/auth/whoami",
        headers={"Authorization": f"Bearer {second.access_token}"},
    )
    assert r.status_code == 401


def test_browser_step_up(env, kt_login, kt_browser, page):
    run = kt_login("--browser", "--insecure-storage", env=env)
    page.goto(run.url())
    sign_in(page, "bob@example.com", "bob-password")
    page.fill("input[name=code]", totp.code(BOB_TOTP_SECRET))
    page.click("button[type=submit]")
    approve(page)
    assert run.finish()[0] == 0
    # step-up: prompt=login makes the issuer ask for the password and the code again
    step = kt_browser("auth", "mfa", "challenge", "--browser", "--json", env=env)
    page.goto(step.url())
    sign_in(page, "bob@example.com", "bob-password")
    # A TOTP code is good once (RFC 6238 §5.2): the sign-in above used this step's, so the next.
    page.fill("input[name=code]", totp.code(BOB_TOTP_SECRET, time.time() + 30))
    page.click("button[type=submit]")
    if page.locator("button[name=decision][value=approve]").count():
        approve(page)
    code, out, err = step.finish()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["identity"]["acr"] == "urn:keeptrusts:acr:mfa"
    assert kt("auth", "whoami", env=env).code == 0


def test_step_up_level_not_reached_is_refused(env, kt_login, kt_browser, page):
    run = kt_login("--browser", "--insecure-storage", env=env)
    page.goto(run.url())
    sign_in(page, "alice@example.com", "alice-password")
    approve(page)
    assert run.finish()[0] == 0
    before = kt("auth", "status", "--json", env=env).json()
    step = kt_browser("auth", "mfa", "challenge", "--browser", "--json", env=env)
    page.goto(step.url())
    sign_in(page, "alice@example.com", "alice-password")  # alice has no second factor
    if page.locator("button[name=decision][value=approve]").count():
        approve(page)
    code, _, err = step.finish()
    assert code == 7, err  # the ID token's acr does not show MFA
    after = kt("auth", "status", "--json", env=env).json()
    assert after["expires_at"] == before["expires_at"]  # the stored session is unchanged
