"""`kt auth login --browser --issuer …` through pushed authorization requests (RFC 9126, issue 14
item 4) against an independent provider: npm `oidc-provider` configured with PAR required
(e2e/oidc_provider/provider.mjs, env PAR=required), driven in headless Chromium. The provider
refuses any authorization request that was not pushed, so a completed sign-in proves kt pushed
it; the browser is sent to a URL carrying only client_id and request_uri.

Needs Node.js >= 22 and `(cd e2e/oidc_provider && npm ci)`; scripts/setup does both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from e2e.npm_provider import OidcProvider, sign_in_and_consent, start_provider, stop_provider
from kt_login.store import FileStore
from tests.kt_process import base_env, kt

CLIENT_ID = "kt-cli"


@pytest.fixture(scope="module")
def par_provider(tmp_path_factory) -> Iterator[OidcProvider]:
    started = start_provider(
        tmp_path_factory.mktemp("oidc-provider-par") / "stderr.log", PAR="required"
    )
    yield started
    stop_provider(started.proc)


@pytest.fixture
def env(tmp_path):
    return base_env(tmp_path)  # the API URL is never contacted: the provider is not the API


def test_browser_sign_in_pushes_its_request_to_a_provider_that_requires_it(
    par_provider, env, kt_login, page
):
    meta = par_provider.metadata()
    assert meta["require_pushed_authorization_requests"] is True
    assert meta["pushed_authorization_request_endpoint"].startswith(par_provider.issuer)
    authorize_path = urlsplit(str(meta["authorization_endpoint"])).path
    opened: list[str] = []
    page.on(
        "request",
        lambda r: opened.append(r.url) if urlsplit(r.url).path == authorize_path else None,
    )
    run = kt_login(
        "--browser", "--issuer", par_provider.issuer, "--client-id", CLIENT_ID,
        "--insecure-storage", "--json", env=env,
    )  # fmt: skip
    sign_in_and_consent(page, run.url(), "grace")
    code, out, err = run.finish()
    assert code == 0, err
    # The browser reached the authorization endpoint with the short URL alone: nothing of the
    # request (state, nonce, PKCE challenge, redirect_uri, scope) rode in it.
    short = opened[0]
    assert short.startswith(par_provider.issuer + authorize_path + "?")
    query = parse_qsl(urlsplit(short).query)
    assert [name for name, _ in query] == ["client_id", "request_uri"]
    assert dict(query)["client_id"] == CLIENT_ID
    assert dict(query)["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert len(short) < 140
    doc = json.loads(out)
    assert doc["logged_in"] is True and doc["identity"]["issuer"] == par_provider.issuer
    assert doc["user"]["id"] == "grace"
    # what was pushed was honoured: the scopes, and prompt=consent for offline_access
    assert set(doc["scopes"]) == {"openid", "profile", "email", "offline_access"}
    session = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default")
    assert session is not None and session.refresh_token and session.subject == "grace"
    refreshed = kt("auth", "refresh", "--json", env=env)
    assert refreshed.code == 0, refreshed.stderr
