"""`kt auth login --browser --redirect-host localhost` in Chromium (issue 13 item 2): the
provider redirects to http://localhost:PORT/callback, and the browser reaches kt over ::1 (as a
browser or port forwarder that resolves `localhost` to ::1 does; here Chromium is told to), so
the sign-in completes only because kt listens on ::1 as well as 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS
from tests.kt_process import kt

# kt-devserver's client registered with only http://localhost/callback (oauth/clients.py)
LOCALHOST_CLIENT = "kt-cli-localhost"


@pytest.fixture(scope="module")
def chromium_v6() -> Iterator[object]:
    """Chromium that resolves `localhost` to ::1 only. This module's own instance (the shared
    `chromium` fixture cannot take launch arguments); one Playwright per module, as there."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP localhost [::1]"],
        )
        yield browser
        browser.close()


@pytest.fixture
def v6_page(chromium_v6):
    context = chromium_v6.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_chromium_here_reaches_localhost_over_ipv6_only(v6_page):
    """The premise: a page on 127.0.0.1 alone is not reached through `localhost`."""
    with socket.socket() as v4_only:
        v4_only.bind(("127.0.0.1", 0))
        v4_only.listen(4)
        port = v4_only.getsockname()[1]

        def answer() -> None:
            conn, _ = v4_only.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv4")

        threading.Thread(target=answer, daemon=True).start()
        with pytest.raises(Exception, match="ERR_CONNECTION_REFUSED"):
            v6_page.goto(f"http://localhost:{port}/")


def test_a_localhost_redirect_answered_over_ipv6_signs_in(env, kt_login, v6_page):
    run = kt_login(
        "--browser", "--redirect-host", "localhost", "--client-id", LOCALHOST_CLIENT,
        "--insecure-storage", "--json", env=env,
    )  # fmt: skip
    link = run.url()
    assert link.startswith("http://localhost:")
    v6_page.goto(link)
    v6_page.fill("input[name=email]", "alice@example.com")
    v6_page.fill("input[name=password]", "alice-password")
    v6_page.click("button[type=submit]")
    v6_page.click("button[name=decision][value=approve]")
    v6_page.wait_for_selector("text=close this")
    assert v6_page.url.startswith("http://localhost:")
    code, out, err = run.finish()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["user"]["email"] == "alice@example.com" and doc["method"] == "browser"
    assert kt("auth", "whoami", env=env).code == 0
