"""The authorization server's pages in a real headless Chromium (system /usr/bin/chromium through
Playwright): the documented selectors work, and the browser follows the consent form's redirect to
the loopback callback under the pages' CSP (`form-action 'self' http://127.0.0.1:* …`).

A tiny loopback HTTP listener plays the client's callback; the test waits on its event, never
sleeps. Skipped when Chromium or Playwright is missing.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from kt_devserver import demo, totp
from tests.fixtures.oauth_client import CLIENT_ID, authorization

CALLBACK_TIMEOUT = 20.0


class Callback:
    """A loopback listener standing in for kt's callback server."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.hit = threading.Event()
        self.path = ""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path != "/callback":  # e.g. Chromium's /favicon.ico
                    self.send_error(404)
                    return
                outer.path = self.path
                body = b"<!doctype html><title>done</title><p>You can close this tab.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.hit.set()

            def log_message(self, *args: Any) -> None:
                pass

        server_class = HTTPServer
        if ":" in host:

            class IPv6Server(HTTPServer):
                address_family = socket.AF_INET6

            server_class = IPv6Server
        self.server = server_class((host, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        shown = f"[{host}]" if ":" in host else host
        self.redirect_uri = f"http://{shown}:{self.server.server_address[1]}/callback"

    def query(self) -> dict[str, str]:
        assert self.hit.wait(CALLBACK_TIMEOUT), "the browser never reached the callback"
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.csp_errors = []
    page.on(
        "console",
        lambda msg: page.csp_errors.append(msg.text) if "Content Security" in msg.text else None,
    )
    yield page
    context.close()


@pytest.fixture(params=["127.0.0.1", "::1"])
def callback(request: pytest.FixtureRequest) -> Iterator[Callback]:
    cb = Callback(request.param)
    yield cb
    cb.close()


def _start(page: Any, devserver: Any, callback: Callback, **overrides: str) -> Any:
    auth = authorization(redirect_uri=callback.redirect_uri, **overrides)
    page.goto(devserver.url + "/oauth/authorize?" + urlencode(auth.params))
    return auth


def _sign_in(page: Any, email: str, password: str) -> None:
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_chromium_signs_in_and_follows_the_redirect(devserver, page, callback):
    auth = _start(page, devserver, callback)
    _sign_in(page, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
    page.click("button[name=decision][value=approve]")
    query = callback.query()
    assert query["state"] == auth.params["state"] and query["iss"] == devserver.url
    page.wait_for_selector("text=You can close this tab.")
    assert page.csp_errors == []
    token = httpx2.post(
        devserver.url + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": callback.redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": auth.pkce.verifier,
        },
    )
    assert token.status_code == 200, token.text


def test_chromium_bob_with_totp(devserver, page, callback):
    _start(page, devserver, callback)
    _sign_in(page, demo.BOB_EMAIL, demo.BOB_PASSWORD)
    page.fill("input[name=code]", "000000" if totp.code(demo.BOB_TOTP_SECRET) != "000000" else "1")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Wrong code.")
    page.fill("input[name=code]", totp.code(demo.BOB_TOTP_SECRET))
    page.click("button[type=submit]")
    page.click("button[name=decision][value=approve]")
    assert "code" in callback.query()
    assert page.csp_errors == []


def test_chromium_deny(devserver, page, callback):
    auth = _start(page, devserver, callback)
    _sign_in(page, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
    page.click("button[name=decision][value=deny]")
    query = callback.query()
    assert query["error"] == "access_denied" and query["state"] == auth.params["state"]
    assert query["iss"] == devserver.url
