"""Paste-back in Chromium (issue 13 item 1): the browser cannot send the sign-in back to kt's
loopback listener, and the person pastes what it shows into kt's prompt (the real `kt` on a
pseudo-terminal against kt-devserver). And --remote's race: the loopback link or the device code,
whichever Chromium finishes, wins."""

from __future__ import annotations

import re
import socket

from tests.kt_process import kt
from tests.terminal import Terminal

PROMPT = "Paste here and press Enter: "


def sign_in_and_approve(page):
    page.fill("input[name=email]", "alice@example.com")
    page.fill("input[name=password]", "alice-password")
    page.click("button[type=submit]")
    page.click("button[name=decision][value=approve]")


def test_remote_the_page_shows_the_answer_and_it_is_pasted(env, page, devserver):
    term = Terminal(["auth", "login", "--remote", "--insecure-storage"], env, columns=400)
    seen = term.expect(PROMPT)
    (url,) = re.findall(re.escape(devserver.url) + r"/oauth/authorize\S+", seen)
    assert "%2Foauth%2Fremote-callback&" in url  # the provider's page, not kt's loopback
    page.goto(url)
    sign_in_and_approve(page)
    answer = page.locator("#remote-answer").input_value()
    assert answer.startswith(devserver.url + "/oauth/remote-callback?")
    term.type(answer)
    assert term.finish() == 0, term.seen
    assert "Logged in to" in term.seen
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    assert who.json()["user"]["email"] == "alice@example.com"


def test_browser_whose_redirect_never_reaches_kt_pastes_the_address(env, page):
    term = Terminal(["auth", "login", "--browser", "--no-browser", "--insecure-storage"], env)
    seen = term.expect(PROMPT)
    (link,) = re.findall(r"http://127\.0\.0\.1:\d+/\S+", seen)
    # The browser may open the link, but the redirect back to kt's listener is blocked (as a
    # browser's local-network protection or a closed port forward does): only the address stays.
    page.route(re.compile(r"http://127\.0\.0\.1:\d+/callback\?.*"), lambda route: route.abort())
    page.goto(link)
    page.fill("input[name=email]", "alice@example.com")
    page.fill("input[name=password]", "alice-password")
    page.click("button[type=submit]")
    with page.expect_request(lambda r: "/callback?" in r.url) as stopped:
        page.click("button[name=decision][value=approve]", no_wait_after=True)
    term.type(stopped.value.url)  # copied from the address bar
    assert term.finish() == 0, term.seen
    assert kt("auth", "whoami", env=env).code == 0


# --- the race of --remote (issue 13 item 1): device code, pasted answer and loopback at once --


def _race(env):
    term = Terminal(
        ["auth", "login", "--remote", "--insecure-storage", "--no-qr"], env, columns=400
    )
    seen = term.expect(PROMPT)
    (code,) = re.findall(r"enter the code:\s+(\S+)", seen)
    (link,) = re.findall(r"  (http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]{43})\s", seen)
    return term, code, link


def _closed(link):
    port = int(link.split(":")[2].split("/")[0])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_race_the_loopback_link_in_chromium_wins(env, page, devserver):
    """A browser that reaches kt's listener (here, or through a port forward) signs in; the
    prompt ends on its own line and the device code is never used."""
    term, _, link = _race(env)
    page.goto(link)
    sign_in_and_approve(page)
    page.wait_for_selector("text=Sign-in received")  # kt's own page, from its listener
    assert term.finish() == 0, term.seen
    after = term.seen.split(PROMPT, 1)[1]
    assert after.startswith("\r\n") and "Logged in to" in after
    assert _closed(link)
    assert kt("auth", "whoami", env=env).code == 0


def test_race_the_device_code_approved_in_chromium_wins(env, page, devserver):
    """Chromium as the person's phone: the code entered on the device page; kt's prompt and
    listener end with it."""
    term, code, link = _race(env)
    page.goto(devserver.url + "/device")
    page.fill("input[name=user_code]", code)
    page.click("button[type=submit]")
    page.click("button[name=decision][value=continue]")
    sign_in_and_approve(page)
    page.wait_for_selector("text=You can return to your device")
    assert term.finish() == 0, term.seen
    assert "Logged in to" in term.seen.split(PROMPT, 1)[1]
    assert _closed(link)
    assert kt("auth", "whoami", env=env).code == 0
