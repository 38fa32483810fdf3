"""RFC 8707 against an independent provider (issue 14 item 2, "Done when"): `kt auth login --browser
--issuer …` with the profile's `send_resource = true` at npm `oidc-provider` with its
resourceIndicators feature (e2e/oidc_provider/provider.mjs, env RESOURCES: the API URLs it
issues tokens for), driven in headless Chromium. The provider then issues a JWT access token
whose `aud` is the API — after the sign-in and after a refresh, which names the resource again —
and refuses a resource it does not serve with invalid_target.

The API URL is never contacted (the provider is a foreign issuer: the API is not asked).
Needs Node.js >= 22 and `(cd e2e/oidc_provider && npm ci)`; scripts/setup does both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from e2e.npm_provider import OidcProvider, sign_in_and_consent, start_provider, stop_provider
from kt_login.store import FileStore
from tests.kt_process import base_env, kt

API = "https://api.resource.example"  # the resource the provider serves
OTHER_API = "https://other.resource.example"  # one it does not
SCOPE = "openid profile email offline_access"


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[OidcProvider]:
    started = start_provider(
        tmp_path_factory.mktemp("oidc-provider-resources") / "stderr.log",
        RESOURCES=API,
        RESOURCE_SCOPES=SCOPE,
    )
    yield started
    stop_provider(started.proc)


def env_for(tmp_path: Path, api_url: str) -> dict[str, str]:
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=api_url)
    assert kt("config", "set", "send_resource", "true", env=env).code == 0
    return env


def audience(provider: OidcProvider, access_token: str) -> Any:
    """The access token's `aud`, its signature checked with the provider's keys."""
    keys = KeySet.import_key_set(httpx2.get(str(provider.metadata()["jwks_uri"])).json())
    return jwt.decode(access_token, keys, algorithms=["RS256"]).claims["aud"]


def test_send_resource_gets_a_token_for_that_api_only(provider, tmp_path, kt_login, page):
    env = env_for(tmp_path, API)
    run = kt_login(
        "--browser", "--issuer", provider.issuer, "--client-id", "kt-cli",
        "--insecure-storage", "--json", env=env,
    )  # fmt: skip
    sign_in_and_consent(page, run.url(), "grace")
    code, out, err = run.finish()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["identity"]["issuer"] == provider.issuer
    assert doc["identity"]["resource"] == API
    assert doc["identity"]["issuer_source"] is None  # named with --issuer
    store = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"]))
    session = store.load("default")
    assert session is not None and session.refresh_token
    assert audience(provider, session.access_token) == API

    refreshed = kt("auth", "refresh", "--json", env=env)
    assert refreshed.code == 0, refreshed.stderr
    again = store.load("default")
    assert again is not None and again.access_token != session.access_token
    assert audience(provider, again.access_token) == API


def test_a_resource_the_provider_does_not_serve_is_refused(provider, tmp_path, kt_login, page):
    env = env_for(tmp_path, OTHER_API)
    run = kt_login(
        "--browser", "--issuer", provider.issuer, "--client-id", "kt-cli",
        "--insecure-storage", "--json", env=env,
    )  # fmt: skip
    page.goto(run.url())
    code, out, err = run.finish()
    assert code != 0, out
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert "invalid_target" in json.dumps(error)
    assert "Traceback" not in err
    assert FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default") is None
