"""SSO federation for real: `kt auth login --browser` → kt-devserver's sign-in page → "Sign in with
SSO" (`a#sso`) → npm oidc-provider as the company's provider (its own login and consent pages) →
kt-devserver's callback and consent → kt's loopback. The CLI talks only to kt-devserver.

Needs Node.js and `(cd e2e/oidc_provider && npm ci)`, as e2e/test_generic_oidc.py does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.npm_provider import OidcProvider, start_provider, stop_provider
from tests.fixtures.devserver import DevServer, start_devserver
from tests.kt_process import base_env, free_port, kt, start_device_login

SSO_CLIENT_ID = "kt-devserver"
SSO_CLIENT_SECRET = "e2e-sso-secret"  # noqa: S105 - test value
SSO_DOMAIN = "example.org"


class _Env:
    """Set environment variables for child processes started inside the block."""

    def __init__(self, **values: str) -> None:
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for name, value in self.values.items():
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value

    def __exit__(self, *exc: object) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _devserver(tmp_path: Path, port: int, issuer: str) -> DevServer:
    with _Env(KT_DEVSERVER_SSO_CLIENT_SECRET=SSO_CLIENT_SECRET):
        return start_devserver(
            tmp_path,
            "--port",
            str(port),
            "--sso-issuer",
            issuer,
            "--sso-client-id",
            SSO_CLIENT_ID,
            "--sso-domain",
            SSO_DOMAIN,
        )


@pytest.fixture(scope="module")
def federation(tmp_path_factory) -> Iterator[tuple[OidcProvider, DevServer]]:
    port = free_port()
    client = {
        "client_id": SSO_CLIENT_ID,
        "client_secret": SSO_CLIENT_SECRET,
        "token_endpoint_auth_method": "client_secret_basic",
        "application_type": "web",
        "redirect_uris": [f"http://127.0.0.1:{port}/oauth/sso/callback"],
        "response_types": ["code"],
        "grant_types": ["authorization_code"],
    }
    tmp = tmp_path_factory.mktemp("sso")
    with _Env(EXTRA_CLIENT_JSON=json.dumps(client)):
        provider = start_provider(tmp / "provider.log")
    server = _devserver(tmp, port, provider.issuer)
    yield provider, server
    server.stop()
    stop_provider(provider.proc)


@pytest.fixture
def env(tmp_path, federation):
    _, server = federation
    return base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)


def upstream_sign_in(page, login: str) -> None:
    """oidc-provider's development pages: login (any password), then its consent."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_selector("input[name=login]", state="detached")
    page.click("button[type=submit]")


def last_error(err: str) -> dict[str, object]:
    doc = json.loads(err.strip().splitlines()[-1])
    error = doc["error"]
    assert isinstance(error, dict)
    return error


def test_new_user_signs_in_through_the_company_provider(env, kt_login, page):
    run = kt_login("--browser", "--insecure-storage", "--json", env=env)
    page.goto(run.url())
    page.click("a#sso")
    upstream_sign_in(page, "carol")
    page.click("button[name=decision][value=approve]")  # kt-devserver's own consent
    page.wait_for_selector("text=close this")
    code, out, err = run.finish()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["user"]["email"] == "carol@example.org" and doc["method"] == "browser"
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    me = who.json()
    assert me["user"]["email"] == "carol@example.org"
    assert me["organization"]["name"] == "Acme" and me["role"] == "member"


def test_user_from_another_domain_is_refused(env, kt_login, page):
    run = kt_login("--browser", "--insecure-storage", "--json", env=env)
    page.goto(run.url())
    page.click("a#sso")
    upstream_sign_in(page, "mallory@elsewhere.test")
    refusal = page.locator("p.error[data-error=sso_domain_not_allowed]")
    assert "mallory@elsewhere.test" in refusal.inner_text()
    page.click("a#return")
    code, _, err = run.finish()
    assert code == 3, err
    assert last_error(err)["code"] == "oauth.access_denied"


def test_provider_down_gives_a_clear_page_and_cli_error(tmp_path, kt_login, page):
    dead_issuer = f"http://127.0.0.1:{free_port()}"
    server = _devserver(tmp_path, free_port(), dead_issuer)
    try:
        env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
        run = kt_login("--browser", "--insecure-storage", "--json", env=env)
        page.goto(run.url())
        page.click("a#sso")
        message = page.locator("p.error[data-error=temporarily_unavailable]").inner_text()
        assert "sign-in service is unavailable" in message
        page.click("a#return")
        code, _, err = run.finish()
        assert code == 6, err
        error = last_error(err)
        assert error["code"] == "oauth.temporarily_unavailable", error
    finally:
        server.stop()


def test_device_login_works_for_an_sso_user(env, page):
    proc, info = start_device_login(env)
    page.goto(info["verification_uri_complete"])
    page.click("button[name=decision][value=continue]")
    page.click("a#sso")
    upstream_sign_in(page, "dana")
    page.click("button[name=decision][value=approve]")  # the device consent page
    page.wait_for_selector("text=You can return to your device")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["method"] == "device" and doc["user"]["email"] == "dana@example.org"
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    assert who.json()["organization"]["name"] == "Acme"
