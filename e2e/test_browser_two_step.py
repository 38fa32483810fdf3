"""The two-step browser sign-in end to end (issue 12): `kt auth login --browser --start --json`
exits at once, leaving a detached process that holds the loopback listener; Chromium, the
person's browser, opens the one-time link and signs in; `kt auth login --complete HANDLE` keeps
the session. Against kt-devserver and npm `oidc-provider`, with cancel and expiry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from e2e.npm_provider import OidcProvider, start_provider, stop_provider
from kt_login.store import FileStore
from tests.kt_process import Result, base_env, kt

CLIENT_ID = "kt-cli"


def start(env: dict[str, str], *extra: str) -> dict[str, Any]:
    r = kt("auth", "login", "--browser", "--start", "--insecure-storage", "--json", *extra, env=env)
    assert r.code == 0, r.stderr
    info: dict[str, Any] = r.json()
    return info


def complete(env: dict[str, str], handle: str) -> Result:
    return kt("auth", "login", "--complete", handle, "--json", "--wait", "60", env=env, timeout=90)


def test_devserver_start_sign_in_complete(tmp_path, devserver, page):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    info = start(env, "--profile", "agent")
    page.goto(info["sign_in_url"])
    page.fill("input[name=email]", "alice@example.com")
    page.fill("input[name=password]", "alice-password")
    page.click("button[type=submit]")
    page.click("button[name=decision][value=approve]")
    page.wait_for_selector("text=close this")
    r = complete(env, info["handle"])
    assert r.code == 0, r.stderr
    assert r.json()["user"]["email"] == "alice@example.com" and r.json()["profile"] == "agent"
    assert kt("auth", "whoami", "--profile", "agent", env=env).code == 0


def test_devserver_cancel_closes_the_listener(tmp_path, devserver, page):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    info = start(env)
    assert kt("auth", "login", "--cancel", info["handle"], env=env).code == 0
    with pytest.raises(PlaywrightError):
        page.goto(info["sign_in_url"], timeout=10_000)  # the listener is gone
    assert complete(env, info["handle"]).code == 2
    assert FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default") is None


def expired(env: dict[str, str], page: Any, info: dict[str, Any]) -> None:
    """Nobody signed in within --timeout 10: --complete says so, the listener is gone and the
    link no longer opens anything, and no session was kept."""
    r = complete(env, info["handle"])
    assert r.code == 1, r.stderr
    assert "no sign-in arrived within 10 s" in r.error()["message"]
    with pytest.raises(PlaywrightError):
        page.goto(info["sign_in_url"], timeout=10_000)
    assert FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default") is None


def test_devserver_sign_in_expires(tmp_path, devserver, page):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    expired(env, page, start(env, "--timeout", "10"))


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[OidcProvider]:
    started = start_provider(tmp_path_factory.mktemp("oidc-provider") / "stderr.log")
    yield started
    stop_provider(started.proc)


def test_provider_start_sign_in_complete(tmp_path, provider, page):
    env = base_env(tmp_path)  # the API URL is never contacted: the provider is not the API
    info = start(env, "--issuer", provider.issuer, "--client-id", CLIENT_ID)
    page.goto(info["sign_in_url"])
    page.fill("input[name=login]", "dave")
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_selector("input[name=login]", state="detached")  # on to the consent page
    page.click("button[type=submit]")
    r = complete(env, info["handle"])
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["identity"]["issuer"] == provider.issuer and doc["identity"]["subject"] == "dave"


def test_provider_cancel(tmp_path, provider, page):
    env = base_env(tmp_path)
    info = start(env, "--issuer", provider.issuer, "--client-id", CLIENT_ID)
    assert kt("auth", "login", "--cancel", info["handle"], env=env).code == 0
    with pytest.raises(PlaywrightError):
        page.goto(info["sign_in_url"], timeout=10_000)


def test_provider_sign_in_expires(tmp_path, provider, page):
    env = base_env(tmp_path)
    expired(
        env,
        page,
        start(env, "--issuer", provider.issuer, "--client-id", CLIENT_ID, "--timeout", "10"),
    )
