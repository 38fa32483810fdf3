"""The two-step device sign-in end to end (issue 12): `kt auth login --device --start --json`
exits at once with a handle; Chromium, standing in for the person's phone, approves on the
verification page; `kt auth login --complete HANDLE` then keeps the session. Against kt-devserver
and against npm `oidc-provider`, including expiry and cancel."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.npm_provider import OidcProvider, start_provider, stop_provider
from kt_login.store import FileStore
from tests.kt_process import Result, base_env, kt


def start(env: dict[str, str], *extra: str) -> dict[str, Any]:
    began = time.monotonic()
    r = kt("auth", "login", "--device", "--start", "--insecure-storage", "--json", *extra, env=env)
    assert r.code == 0, r.stderr
    assert time.monotonic() - began < 20  # it does not wait for the person
    info: dict[str, Any] = r.json()
    return info


def complete(env: dict[str, str], handle: str, *extra: str) -> Result:
    return kt("auth", "login", "--complete", handle, "--json", *extra, env=env, timeout=120)


def pending(env: dict[str, str], handle: str) -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "pending" / f"{handle}.json"


# --------------------------------------------------------------------------- kt-devserver


def approve_on_devserver(page, info: dict[str, Any], decision: str = "approve") -> None:
    page.goto(info["qr_payload"])  # what the person's phone opens from the QR code
    page.click("button[name=decision][value=continue]")
    page.fill("input[name=email]", "alice@example.com")
    page.fill("input[name=password]", "alice-password")
    page.click("button[type=submit]")
    page.click(f"button[name=decision][value={decision}]")


def test_devserver_start_approve_complete(tmp_path, devserver, page):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    info = start(env, "--profile", "agent")
    approve_on_devserver(page, info)
    page.wait_for_selector("text=You can return to your device")
    r = complete(env, info["handle"])
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["profile"] == "agent" and doc["user"]["email"] == "alice@example.com"
    assert not pending(env, info["handle"]).exists()
    assert kt("auth", "whoami", "--profile", "agent", env=env).code == 0


def test_devserver_denied(tmp_path, devserver, page):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    info = start(env)
    approve_on_devserver(page, info, decision="deny")
    r = complete(env, info["handle"])
    assert r.code == 3
    assert r.error()["code"] == "oauth.access_denied"
    assert not pending(env, info["handle"]).exists()


def test_devserver_code_expires(tmp_path, devserver_factory):
    """A code nobody approves: --complete waits no longer than the code lives, says so, and
    removes the pending sign-in."""
    server = devserver_factory("--device-code-ttl", "8", "--device-interval", "1")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    info = start(env)
    r = complete(env, info["handle"], "--wait", "60")
    assert r.code == 3
    assert "expired" in r.error()["message"] or r.error()["code"] == "oauth.expired_token"
    assert r.error()["hint"] == "run: kt auth login --device --start --profile default"
    assert not pending(env, info["handle"]).exists()


def test_devserver_cancel(tmp_path, devserver, page):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    info = start(env)
    r = kt("auth", "login", "--cancel", info["handle"], env=env)
    assert r.code == 0, r.stderr
    approve_on_devserver(page, info)  # the person approves anyway: nothing on this machine uses it
    page.wait_for_selector("text=You can return to your device")
    r = complete(env, info["handle"])
    assert r.code == 2 and "no pending sign-in" in r.error()["message"]
    assert FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default") is None


# --------------------------------------------------------------------------- npm oidc-provider

CLIENT_ID = "kt-cli"


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[OidcProvider]:
    started = start_provider(tmp_path_factory.mktemp("oidc-provider") / "stderr.log")
    yield started
    stop_provider(started.proc)


def approve_at_provider(page, info: dict[str, Any], login: str) -> None:
    page.goto(info["qr_payload"])
    page.click("button[type=submit]")  # confirm the code shown
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_selector("input[name=login]", state="detached")
    page.click("button[type=submit]")  # consent
    page.wait_for_selector("text=Sign-in Success")


def test_provider_start_approve_complete(tmp_path, provider, page):
    env = base_env(tmp_path)  # the API URL is never contacted: the provider is not the API
    info = start(env, "--issuer", provider.issuer, "--client-id", CLIENT_ID, "--profile", "p")
    approve_at_provider(page, info, "dave")
    r = complete(env, info["handle"])
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["method"] == "device" and doc["identity"]["subject"] == "dave"
    assert doc["identity"]["issuer"] == provider.issuer
    assert not pending(env, info["handle"]).exists()


def test_provider_pending_then_cancel(tmp_path, provider):
    env = base_env(tmp_path)
    info = start(env, "--issuer", provider.issuer, "--client-id", CLIENT_ID)
    r = complete(env, info["handle"], "--wait", "0")
    assert r.code == 3 and r.error()["code"] == "auth.sign_in_pending"
    r = kt("auth", "login", "--cancel", info["handle"], env=env)
    assert r.code == 0, r.stderr
    assert not pending(env, info["handle"]).exists()
    assert json.loads(kt("auth", "status", "--json", env=env).stdout)["logged_in"] is False
