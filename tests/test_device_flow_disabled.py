"""Device flow turned off (issue 13 item 4): kt-devserver `--no-device-flow` omits the device
grant from discovery and refuses it with unauthorized_client (RFC 8628 §3.2 / RFC 6749 §5.2);
`kt auth login --device` then says why and, on a terminal, falls back to paste-back. The device
page (when on) names the client, when it asked, and that a code from someone else must never
be entered."""

from __future__ import annotations

import json
import re
import signal

import httpx2
import pytest

from kt_devserver import demo
from kt_login.errors import DeviceFlowUnavailable
from kt_login.signin.device import start_device_sign_in
from kt_login.signin.oidc import SignInRequest
from tests.fixtures.oauth_client import Browser
from tests.kt_process import base_env, kt, start_device_login
from tests.terminal import Terminal

PROMPT = "Paste here and press Enter: "


@pytest.fixture
def no_device(devserver_factory):
    return devserver_factory("--no-device-flow")


def test_the_server_omits_and_refuses_the_device_grant(no_device):
    meta = httpx2.get(no_device.url + "/.well-known/openid-configuration").json()
    assert "device_authorization_endpoint" not in meta
    assert "urn:ietf:params:oauth:grant-type:device_code" not in meta["grant_types_supported"]
    refused = httpx2.post(
        no_device.url + "/oauth/device_authorization", data={"client_id": "kt-cli"}
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "unauthorized_client"


def test_without_a_terminal_kt_says_why(tmp_path, no_device):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=no_device.url)
    result = kt("auth", "login", "--device", "--insecure-storage", "--json", env=env)
    assert result.code == 7, result.stderr
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "kt.device_flow_unavailable"
    assert "does not offer device sign-in" in error["message"]
    assert "kt auth login --browser" in error["hint"]


def test_on_a_terminal_kt_falls_back_to_paste_back(tmp_path, no_device):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=no_device.url)
    term = Terminal(["auth", "login", "--device", "--insecure-storage"], env, columns=400)
    seen = term.expect(PROMPT)
    assert "Device sign-in cannot be used" in seen and "does not offer device sign-in" in seen
    (url,) = re.findall(re.escape(no_device.url) + r"/oauth/authorize\S+", seen)
    browser = Browser(no_device)  # a browser on another machine
    try:
        page = browser.sign_in(browser.http.get(url), demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
        answer = browser.approve(page).headers["location"]
    finally:
        browser.close()
    assert answer.startswith(no_device.url + "/oauth/remote-callback?")
    term.type(answer)
    assert term.finish() == 0, term.seen
    assert kt("auth", "whoami", env=env).code == 0


def test_ctrl_c_at_the_fallback_prompt(tmp_path, no_device):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=no_device.url)
    term = Terminal(["auth", "login", "--device", "--insecure-storage"], env)
    term.expect(PROMPT)
    term.proc.send_signal(signal.SIGINT)
    assert term.finish() == 130
    assert "Traceback" not in term.seen


def test_a_device_grant_refused_to_the_client_is_device_flow_unavailable():
    """Metadata that lists the grant, an endpoint that answers unauthorized_client."""
    issuer = "https://as.test"

    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/.well-known/"):
            return httpx2.Response(
                200,
                json={
                    "issuer": issuer,
                    "authorization_endpoint": issuer + "/authorize",
                    "token_endpoint": issuer + "/token",
                    "device_authorization_endpoint": issuer + "/device",
                },
            )
        return httpx2.Response(
            400, json={"error": "unauthorized_client", "error_description": "turned off"}
        )

    with httpx2.Client(transport=httpx2.MockTransport(answer)) as http:
        with pytest.raises(DeviceFlowUnavailable, match="does not allow device sign-in") as e:
            start_device_sign_in(
                SignInRequest(issuer=issuer, client_id="kt-cli", api_url=issuer), http=http
            )
    assert "turned off" in e.value.message


def test_the_device_page_names_the_client_the_time_and_the_warning(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    proc, doc = start_device_login(env)
    try:
        with httpx2.Client(follow_redirects=True) as browser:
            page = browser.get(doc["verification_uri_complete"])
        assert page.status_code == 200
        assert 'id="client-name">Keeptrusts CLI (kt)<' in page.text
        assert re.search(r'id="requested-at">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, ', page.text)
        assert "Never enter a code that someone else gave you" in page.text
    finally:
        proc.kill()
        proc.communicate()
