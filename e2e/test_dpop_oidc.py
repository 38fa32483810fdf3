"""`kt auth login --browser --dpop` against an independent provider (issue 15 part 1, RFC 9449):
npm `oidc-provider` with its dPoP feature and a server nonce on every proof
(e2e/oidc_provider/provider.mjs, env DPOP=nonce), the sign-in driven in headless Chromium. The
provider issues DPoP-bound tokens only to a token request with a valid proof, answers UserInfo
only with one, binds the refresh token of this public client to the key, and wants its nonce
(use_dpop_nonce first): a completed sign-in and refresh prove kt's proofs and nonce handling
against code it did not write.

Needs Node.js >= 22 and `(cd e2e/oidc_provider && npm ci)`; scripts/setup does both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from e2e.npm_provider import OidcProvider, sign_in_and_consent, start_provider, stop_provider
from kt_login.dpop import DpopKey
from kt_login.store import FileStore
from tests.kt_process import base_env, kt

CLIENT_ID = "kt-cli"


@pytest.fixture(scope="module")
def dpop_provider(tmp_path_factory) -> Iterator[OidcProvider]:
    started = start_provider(
        tmp_path_factory.mktemp("oidc-provider-dpop") / "stderr.log", DPOP="nonce"
    )
    yield started
    stop_provider(started.proc)


@pytest.fixture
def env(tmp_path):
    return base_env(tmp_path)  # the API URL is never contacted: the provider is not the API


def test_browser_sign_in_and_refresh_with_dpop(dpop_provider, env, kt_login, page):
    meta = dpop_provider.metadata()
    assert "ES256" in meta["dpop_signing_alg_values_supported"]
    run = kt_login(
        "--browser", "--dpop", "--issuer", dpop_provider.issuer, "--client-id", CLIENT_ID,
        "--insecure-storage", "--json", env=env,
    )  # fmt: skip
    sign_in_and_consent(page, run.url(), "dora")
    code, out, err = run.finish()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["logged_in"] is True and doc["user"]["id"] == "dora"
    session = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default")
    assert session is not None and session.dpop_key and session.refresh_token
    jkt = DpopKey.from_json(session.dpop_key).thumbprint
    assert doc["dpop_jkt"] == jkt
    # the access token is bound: UserInfo refuses it as a bearer token
    plain = httpx2.get(
        str(meta["userinfo_endpoint"]),
        headers={"Authorization": f"Bearer {session.access_token}"},
    )
    assert plain.status_code in (400, 401), plain.text
    # the refresh token is bound too: the refresh carries a proof (and the provider's nonce)
    refreshed = kt("auth", "refresh", "--json", env=env)
    assert refreshed.code == 0, refreshed.stderr
    after = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default")
    assert after is not None and after.access_token != session.access_token
    assert after.dpop_key == session.dpop_key
    status = kt("auth", "status", "--json", env=env)
    assert status.code == 0 and status.json()["dpop_jkt"] == jkt
    copied = httpx2.post(
        str(meta["token_endpoint"]),
        data={
            "grant_type": "refresh_token",
            "refresh_token": after.refresh_token or "",
            "client_id": CLIENT_ID,
        },
    )
    assert copied.status_code == 400, copied.text  # the copied refresh token, without the key
