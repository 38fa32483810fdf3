"""The loopback listener's pages look like kt-devserver's and stay inert (issue 12): every page a
real CallbackServer serves has the devserver's style sheet and card layout, a CSP that allows
that one style element by its hash and nothing else (no script, nothing fetched), and no
external URL. In Chromium, the style applies (the same computed look as kt-devserver's pages)
and the CSP reports no violation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import queue
import re
import threading
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest

from callback_server import PAGE_STYLE, CallbackServer, LinkReused, receive
from kt_devserver.oauth import pages as devserver_pages

STATE = "st4te-" + "p" * 32
AUTHORIZE = "https://as.example/authorize?client_id=kt&state=" + STATE
STYLE = re.compile(r"<style>(.*?)</style>", re.S)


class Reply:
    def __init__(self, raw: bytes) -> None:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }
        self.text = body.decode()


async def get(server: CallbackServer, target: str) -> Reply:
    parts = urlsplit(server.redirect_uri)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        return Reply(await reader.read())
    finally:
        writer.close()


def callback(**query: str) -> str:
    return "/callback?" + urlencode(query)


async def every_page() -> dict[str, Reply]:
    """Each page, as a real listener serves it to a browser."""
    replies: dict[str, Reply] = {}
    async with CallbackServer(state=STATE) as server:
        replies["invalid"] = await get(server, callback(code="c", state="not-this-one"))
        replies["not_found"] = await get(server, "/")
        replies["success"] = await get(server, callback(code="c", state=STATE))
        await server.wait()
    async with CallbackServer(state=STATE) as server:
        replies["error"] = await get(server, callback(error="access_denied", state=STATE))
        await server.wait()
    async with CallbackServer(state=STATE) as server:
        link = urlsplit(server.one_time_link(AUTHORIZE)).path
        assert (await get(server, link)).status == 302
        replies["used"] = await get(server, link)
        with pytest.raises(LinkReused):
            await server.wait()
    return replies


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name.lower()] = values
    return directives


def hash_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def devserver_style() -> str:
    page = devserver_pages.error_page(400, "invalid_request", "for the look").text
    assert page is not None
    found = STYLE.search(page)
    assert found, page
    return found[1]


async def test_every_page_has_the_devserver_look_and_a_csp_that_allows_only_its_style():
    replies = await every_page()
    assert {name: r.status for name, r in replies.items()} == {
        "invalid": 400,
        "not_found": 404,
        "success": 200,
        "error": 200,
        "used": 410,
    }
    shared = devserver_style()
    for name, reply in replies.items():
        assert reply.headers["content-type"] == "text/html; charset=utf-8", name
        page = reply.text
        styles = STYLE.findall(page)
        # the look: kt-devserver's own style sheet (its base part), the card, a heading
        assert styles == [PAGE_STYLE] and PAGE_STYLE in shared, name
        assert "<main>" in page and "<h1>" in page and 'class="muted"' in page, name
        # nothing fetched, nothing run, nowhere to go
        lowered = page.lower()
        for banned in ("<script", "<link", "<img", "src=", "href", "url(", "@import"):
            assert banned not in lowered, (name, banned)
        assert not re.search(r"<[^>]*\son\w+\s*=", lowered), name  # no event handler
        assert not re.search(r"https?:|//", page), name
        directives = csp_directives(reply.headers["content-security-policy"])
        assert directives == {
            "default-src": ["'none'"],  # and so no script, image, font, frame or connection
            "style-src": [hash_source(styles[0])],  # this page's one style element, no other
            "base-uri": ["'none'"],
            "form-action": ["'none'"],
            "frame-ancestors": ["'none'"],
        }, name


async def test_error_pages_use_the_devserver_error_style():
    replies = await every_page()
    for name in ("error", "invalid", "used"):
        assert '<p class="error">' in replies[name].text, name
    assert '<p class="error">' not in replies["success"].text
    assert ".error {" in PAGE_STYLE


# --- in a real browser -------------------------------------------------------------------------


LOOK = """() => {
  const css = (el, props) => Object.fromEntries(props.map(p => [p, getComputedStyle(el)[p]]));
  return {
    body: css(document.body, ["fontFamily", "backgroundColor", "color", "margin"]),
    main: css(document.querySelector("main"),
              ["maxWidth", "backgroundColor", "padding", "borderRadius", "boxShadow"]),
    h1: css(document.querySelector("h1"), ["fontSize", "marginTop"]),
    muted: css(document.querySelector(".muted"), ["color", "fontSize"]),
  };
}"""


@pytest.fixture
def live_listener() -> Iterator[str]:
    """A listener waiting in a thread, as kt's is: its redirect_uri."""
    ready: queue.Queue[str] = queue.Queue()
    thread = threading.Thread(
        target=lambda: receive(STATE, on_ready=ready.put, timeout=60), daemon=True
    )
    thread.start()
    yield ready.get(timeout=30)
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_in_chromium_the_style_applies_like_the_devservers_and_nothing_is_blocked(
    page, live_listener, devserver
):
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    page.goto(devserver.url + "/oauth/authorize")  # no request: kt-devserver's error page
    assert page.locator("h1").count() == 1
    devserver_look = page.evaluate(LOOK)
    violations.clear()  # only the listener's pages are judged here

    page.goto(live_listener + "?" + urlencode({"code": "c0de", "state": STATE}))
    assert page.title() == "Sign-in received"
    look = page.evaluate(LOOK)
    assert look == devserver_look
    assert look["body"]["backgroundColor"] == "rgb(244, 245, 247)"  # styled, not the default
    assert not [v for v in violations if "Content Security Policy" in v], violations
