"""`kt auth login --browser --issuer … --client-id …` against a real, independent OpenID Connect
provider: npm `oidc-provider` (e2e/oidc_provider/provider.mjs), driven through its own development
login and consent pages by headless Chromium. Nothing here is kt-devserver: discovery, PKCE, the
RFC 9207 `iss`, the RS256 ID token, userinfo, refresh-token rotation and RFC 7009 revocation are
all the provider's own.

Needs Node.js >= 22 and `(cd e2e/oidc_provider && npm ci)`; scripts/setup (scripts/test runs it)
does both.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from e2e.npm_provider import OidcProvider, sign_in_and_consent, start_provider, stop_provider
from kt_login.config import DEFAULT_API_URL
from kt_login.session import Session
from kt_login.store import FileStore
from tests.kt_process import base_env, kt, start_device_login

CLIENT_ID = "kt-cli"


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[OidcProvider]:
    started = start_provider(tmp_path_factory.mktemp("oidc-provider") / "stderr.log")
    yield started
    stop_provider(started.proc)


@pytest.fixture(scope="module")
def openid_only_provider(tmp_path_factory) -> Iterator[OidcProvider]:
    """The provider configured to support the `openid` scope alone (issue 10 case 2)."""
    log = tmp_path_factory.mktemp("oidc-provider-openid") / "stderr.log"
    started = start_provider(log, SCOPES="openid")
    yield started
    stop_provider(started.proc)


@pytest.fixture(scope="module")
def no_device_id_token_provider(tmp_path_factory) -> Iterator[OidcProvider]:
    """The provider configured to return no ID token from the device grant (issue 10 case 3);
    UserInfo still names the person, and refreshes still bring ID tokens."""
    log = tmp_path_factory.mktemp("oidc-provider-device") / "stderr.log"
    started = start_provider(log, DEVICE_ID_TOKEN="none")
    yield started
    stop_provider(started.proc)


@pytest.fixture
def env(tmp_path):
    # The default API URL is never contacted: the provider is not the API, so the session is
    # kept for the API URL but its tokens stay with the provider (issue 10 case 8).
    return base_env(tmp_path)


def login_args(issuer: str) -> list[str]:
    return [
        "--browser",
        "--issuer",
        issuer,
        "--client-id",
        CLIENT_ID,
        "--insecure-storage",
        "--json",
    ]


def signed_in(provider, env, kt_login, page, login: str) -> tuple[dict[str, object], Session]:
    run = kt_login(*login_args(provider.issuer), env=env)
    sign_in_and_consent(page, run.url(), login)
    code, out, err = run.finish()
    assert code == 0, err
    session = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default")
    assert session is not None
    return json.loads(out), session


def test_signs_in_with_the_provider_and_keeps_its_identity(provider, env, kt_login, page):
    doc, session = signed_in(provider, env, kt_login, page, "carol")
    assert doc["logged_in"] is True and doc["method"] == "browser"
    assert doc["credential_store"] == "file (plaintext)"
    assert doc["identity"] == {
        "issuer": provider.issuer,  # byte for byte what discovery pinned
        "subject": "carol",
        "client_id": CLIENT_ID,
        # oidc-provider puts auth_time in the ID token only when asked (max_age) and no acr
        "acr": None,
        "auth_time": None,
        # named with --issuer (not found through the API's resource metadata), and no RFC 8707
        # resource sent: the provider is not the API
        "issuer_source": None,
        "resource": None,
    }
    assert doc["user"] == {"id": "carol", "email": "carol@example.org", "name": "carol@example.org"}
    assert doc["api_url"] == DEFAULT_API_URL  # the API URL is kept apart from the issuer
    # kt sends prompt=consent with offline_access (OIDC Core §11), so the provider grants it
    assert set(doc["scopes"]) == {"openid", "profile", "email", "offline_access"}

    status = kt("auth", "status", "--json", env=env)
    assert status.code == 0, status.stderr
    st = status.json()
    assert st["logged_in"] is True and st["credential_source"] == "file (plaintext)"
    assert st["identity"] == doc["identity"] and st["user"] == doc["user"]
    assert st["method"] == "browser" and st["expired"] is False

    meta = provider.metadata()
    assert session.issuer == provider.issuer and session.subject == "carol"
    assert session.token_endpoint == meta["token_endpoint"]
    assert session.revocation_endpoint == meta["revocation_endpoint"]
    assert session.jwks_uri == meta["jwks_uri"]
    assert session.refresh_token


def test_session_refreshes_at_the_token_endpoint_with_rotation(provider, env, kt_login, page):
    _, first = signed_in(provider, env, kt_login, page, "dave")
    config_dir = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    store = FileStore(config_dir)
    store.save("default", dataclasses.replace(first, expires_at=time.time() + 5))
    # `kt auth whoami` on a session from a provider that is not the API: the API is not asked,
    # and the access token about to expire is refreshed at the provider first.
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    assert who.json()["api_asked"] is False and who.json()["user"]["id"] == "dave"
    fresh = store.load("default")
    assert fresh is not None
    assert fresh.refresh_token and fresh.refresh_token != first.refresh_token  # rotated
    assert fresh.access_token != first.access_token
    assert fresh.expires_at is not None and fresh.expires_at > time.time() + 60
    assert fresh.subject == "dave" and fresh.issuer == provider.issuer
    userinfo = str(provider.metadata()["userinfo_endpoint"])
    reply = httpx2.get(userinfo, headers={"Authorization": f"Bearer {fresh.access_token}"})
    assert reply.status_code == 200 and reply.json()["sub"] == "dave"  # the saved one works

    # The saved refresh token works, and the provider answers a refresh with a new ID token:
    # so the refresh above passed kt's OIDC Core §12.2 check of one from a real provider.
    again = _refresh_grant(provider, fresh.refresh_token)
    assert again.status_code == 200, again.text
    assert again.json()["id_token"] and again.json()["refresh_token"] != fresh.refresh_token


def test_logout_revokes_at_the_provider(provider, env, kt_login, page):
    _, session = signed_in(provider, env, kt_login, page, "erin")
    meta = provider.metadata()
    userinfo = str(meta["userinfo_endpoint"])
    before = httpx2.get(userinfo, headers={"Authorization": f"Bearer {session.access_token}"})
    assert before.status_code == 200 and before.json()["sub"] == "erin"

    out = kt("auth", "logout", env=env)
    assert out.code == 0, out.stderr
    assert kt("auth", "status", env=env).code == 3
    assert session.refresh_token
    r = _refresh_grant(provider, session.refresh_token)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    after = httpx2.get(userinfo, headers={"Authorization": f"Bearer {session.access_token}"})
    assert after.status_code == 401


def test_issuer_with_a_trailing_slash_is_refused_before_any_browser(provider, env, kt_login):
    run = kt_login(*login_args(provider.issuer + "/"), env=env)
    # kt must end on its own: the test never reads the browser FIFO, so a browser launch
    # would leave record_url.py blocked, and this wait would time out.
    code, out, err = run.finish(timeout=30)
    assert code == 7, err
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert error["code"] == "kt.validation" and "different issuer" in error["message"]
    assert "Opened your browser" not in err and "http://127.0.0.1" not in out
    assert kt("auth", "status", env=env).code == 3
    assert FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default") is None


def _refresh_grant(provider: OidcProvider, refresh_token: str) -> httpx2.Response:
    token_endpoint = str(provider.metadata()["token_endpoint"])
    return httpx2.post(
        token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
        },
    )


def device_sign_in(provider: OidcProvider, env, page, login: str) -> dict[str, object]:
    """`kt auth login --device --json` while the 'phone' (Chromium) approves: the result."""
    proc, info = start_device_login(env, "--issuer", provider.issuer, "--client-id", CLIENT_ID)
    page.goto(info["verification_uri_complete"])
    page.click("button[type=submit]")  # confirm the code shown
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_selector("input[name=login]", state="detached")
    page.click("button[type=submit]")  # consent
    page.wait_for_selector("text=Sign-in Success")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def test_device_sign_in_with_the_provider(provider, env, page):
    """RFC 8628 against an independent provider: kt polls while the 'phone' approves."""
    doc = device_sign_in(provider, env, page, "dave")
    assert doc["method"] == "device" and doc["identity"]["subject"] == "dave"
    assert doc["identity"]["issuer"] == provider.issuer


def test_device_grant_without_id_token_signs_in_by_userinfo_and_refreshes(
    no_device_id_token_provider, env, page
):
    """The provider returns no ID token from the device grant (RFC 8628 §3.5 does not require
    one): kt names the person by UserInfo's sub and email, and that sub then anchors the ID
    token the provider's refresh brings, which kt accepts (issue 10 case 3)."""
    provider = no_device_id_token_provider
    doc = device_sign_in(provider, env, page, "grace")
    assert "device grant: id_token withheld" in provider.log.read_text()  # really none came
    assert doc["identity"]["subject"] == "grace" and doc["identity"]["auth_time"] is None
    assert doc["user"] == {"id": "grace", "email": "grace@example.org", "name": "grace@example.org"}
    store = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"]))
    first = store.load("default")
    assert first is not None and first.subject == "grace" and first.refresh_token

    store.save("default", dataclasses.replace(first, expires_at=time.time() + 5))
    who = kt("auth", "whoami", "--json", env=env)  # refreshes at the provider first
    assert who.code == 0, who.stderr
    assert who.json()["user"]["id"] == "grace"
    fresh = store.load("default")
    assert fresh is not None and fresh.subject == "grace"
    assert fresh.refresh_token and fresh.refresh_token != first.refresh_token  # rotated
    assert fresh.expires_at is not None and fresh.expires_at > time.time() + 60
    # This grant's refreshes do bring ID tokens: so the refresh above passed kt's OIDC Core
    # §12.2 check of one against the sub UserInfo gave at sign-in.
    again = _refresh_grant(provider, fresh.refresh_token)
    assert again.status_code == 200, again.text
    assert again.json()["id_token"]


def test_openid_only_provider_signs_in_without_email_or_refresh_token(
    openid_only_provider, env, kt_login, page
):
    """A provider that supports only `openid` (scopes_supported: ["openid"]): kt asks for that
    alone instead of its defaults, names the person by sub (no email claim), and says that
    without offline_access there is no refresh token (issue 10 cases 1 and 2)."""
    provider = openid_only_provider
    assert provider.metadata()["scopes_supported"] == ["openid"]
    run = kt_login(*login_args(provider.issuer), env=env)
    # kt opens its one-time loopback link (issue 11 case 1): the scope is in the authorization
    # request the link redirects the browser to.
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "redirect_uri=" in r.url else None)
    sign_in_and_consent(page, run.url(), "frank")
    assert asked and asked[0].startswith(provider.issuer), asked
    assert "scope=openid&" in asked[0] and "offline_access" not in asked[0]
    code, out, err = run.finish()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["scopes"] == ["openid"]
    assert doc["user"] == {"id": "frank", "email": "", "name": "frank"}
    (notice,) = doc["notices"]
    assert "no refresh token (offline_access was not granted)" in notice
    assert "you will need to sign in again in" in notice
    session = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default")
    assert session is not None and session.refresh_token is None and session.subject == "frank"
    status = kt("auth", "status", env=env)
    assert status.code == 0 and "Account: frank\n" in status.stdout, status.stdout
