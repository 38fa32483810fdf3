"""`kt auth login --device` for real: the kt process polls kt-devserver while Chromium, standing
in for the person's phone, approves (or denies) on the verification page."""

from __future__ import annotations

import json

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from tests.kt_process import base_env, kt, start_device_login


def approve_on_page(page, info, email, password, *, code=None, decision="approve"):
    page.goto(info["verification_uri_complete"])
    page.click("button[name=decision][value=continue]")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    if code is not None:
        page.fill("input[name=code]", code)
        page.click("button[type=submit]")
    page.click(f"button[name=decision][value={decision}]")


def test_alice_approves_on_another_device(tmp_path, devserver, page):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    proc, info = start_device_login(env)
    assert set(info) == {"verification_uri", "verification_uri_complete", "user_code", "expires_in"}
    approve_on_page(page, info, "alice@example.com", "alice-password")
    page.wait_for_selector("text=You can return to your device")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["method"] == "device" and doc["user"]["email"] == "alice@example.com"
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0 and who.json()["role"] == "admin"


def test_bob_approves_with_totp(tmp_path, devserver, page):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    proc, info = start_device_login(env)
    approve_on_page(page, info, "bob@example.com", "bob-password", code=totp.code(BOB_TOTP_SECRET))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["mfa_authenticated"] is True


def test_denied_on_the_other_device(tmp_path, devserver, page):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    proc, info = start_device_login(env)
    approve_on_page(page, info, "alice@example.com", "alice-password", decision="deny")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert json.loads(err.strip().splitlines()[-1])["error"]["code"] == "oauth.access_denied"
    assert kt("auth", "status", env=env).code == 3


def test_code_expires(tmp_path, devserver_factory):
    server = devserver_factory("--device-code-ttl", "2", "--device-interval", "1")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    proc, info = start_device_login(env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert json.loads(err.strip().splitlines()[-1])["error"]["code"] == "oauth.expired_token"
    assert "device_code" not in err
