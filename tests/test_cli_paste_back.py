"""Paste-back (issue 13 item 1): `kt auth login --browser` on a terminal also takes the answer
pasted from a browser on another machine, whose redirect to 127.0.0.1 never reached kt. The real
`kt` on a pseudo-terminal against the stub provider (HostileAS); the "other machine's browser"
follows the sign-in link up to the redirect to kt's listener and stops there, as a browser whose
loopback is not kt's does, leaving the address to paste."""

from __future__ import annotations

import os
import re
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.adversarial.hostile_as import DELETE, HostileAS
from tests.kt_process import (
    base_env,
    kt,
    listener_closed,
    signed_in,
)
from tests.terminal import Terminal

LINK = re.compile(r"http://127\.0\.0\.1:\d+/\S+")
PROMPT = "Paste here and press Enter: "


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _location(url: str) -> str:
    """Where a GET of `url` redirects (not followed), as a browser's address bar would show."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    request = urllib.request.Request(url, headers={"Sec-Fetch-Mode": "navigate"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(request, timeout=10)
    caught.value.close()
    assert caught.value.code in (302, 303), caught.value.code
    return caught.value.headers["Location"]


def remote_browser(link: str) -> str:
    """A browser elsewhere: the one-time link, the provider's redirect, and the address it ends
    on (kt's callback URL with code, state and iss), never reaching kt's listener."""
    return _location(_location(link))


def follow(url: str) -> None:
    """A browser on this machine reaching kt's listener."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Sec-Fetch-Mode": "navigate"})
    opener.open(request, timeout=10).read()


@pytest.fixture
def issuer() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return base_env(tmp_path, KEEPTRUSTS_API_URL="https://api.invalid")


def login(env: dict[str, str], issuer: HostileAS, *extra: str) -> tuple[Terminal, str]:
    term = Terminal(
        [
            "auth",
            "login",
            "--browser",
            "--no-browser",
            "--issuer",
            issuer.issuer,
            "--client-id",
            issuer.client_id,
            "--insecure-storage",
            "--timeout",
            "60",
            *extra,
        ],
        env,
        columns=200,
    )
    seen = term.expect(PROMPT)
    match = LINK.search(seen)
    assert match, seen
    return term, match[0]


def test_the_pasted_address_signs_in(env, issuer):
    term, link = login(env, issuer)
    assert "paste" in term.seen and "CODE#STATE" in term.seen
    term.type(remote_browser(link))
    assert term.finish() == 0, term.seen
    assert "Signed in" in term.seen
    assert len(issuer.token_calls("authorization_code")) == 1
    assert listener_closed(link)
    assert signed_in(env)


def test_a_wrong_state_is_refused_and_the_wait_goes_on(env, issuer):
    term, link = login(env, issuer)
    answer = remote_browser(link)
    query = parse_qs(urlsplit(answer).query)
    forged = answer.split("?")[0] + "?" + urlencode({**query, "state": "not-this-sign-in"}, True)
    term.type(forged)
    term.expect("does not belong to this sign-in")
    term.expect(PROMPT, times=2)
    assert not issuer.token_calls("authorization_code")  # nothing was sent for the forged one
    term.type(answer)
    assert term.finish() == 0, term.seen
    assert signed_in(env)


def test_an_answer_of_an_earlier_sign_in_is_refused(env, issuer):
    """A replay: the first sign-in's answer, taken by its callback, pasted into the next one on
    the same port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    term, link = login(env, issuer, "--port", port)
    first = remote_browser(link)
    follow(first)  # the callback wins the first sign-in
    assert term.finish() == 0, term.seen
    term, link = login(env, issuer, "--port", port)
    term.type(first)
    term.expect("does not belong to this sign-in")
    assert len(issuer.token_calls("authorization_code")) == 1  # the old code is never sent again
    term.proc.terminate()
    term.finish()


def test_a_code_alone_is_refused_and_code_with_state_is_taken(env, issuer):
    # A provider that does not promise iss (RFC 9207): its "copy this code" page has code+state.
    issuer.behaviour.metadata = {"authorization_response_iss_parameter_supported": DELETE}
    issuer.behaviour.callback = {"iss": DELETE}
    term, link = login(env, issuer)
    query = parse_qs(urlsplit(remote_browser(link)).query)
    code, state = query["code"][0], query["state"][0]
    term.type(code)
    term.expect("a code alone cannot be checked")
    term.type(f"{code}#{state}")
    assert term.finish() == 0, term.seen
    assert signed_in(env)


def test_a_foreign_issuer_is_refused(env, issuer):
    issuer.behaviour.callback = {"iss": "https://evil.example"}
    term, link = login(env, issuer)
    term.type(remote_browser(link))
    assert term.finish() == 7, term.seen  # EXIT_VALIDATION
    assert "another issuer" in term.seen and "Traceback" not in term.seen
    assert not issuer.token_calls("authorization_code")
    assert not signed_in(env)


def test_the_callback_wins_while_the_prompt_waits(env, issuer):
    term, link = login(env, issuer)
    follow(remote_browser(link))  # the browser was on this machine after all
    assert term.finish() == 0, term.seen
    after = term.seen.split(PROMPT, 1)[1]
    assert after.startswith("\r\n") and "Signed in" in after  # the prompt ended on its own line
    assert listener_closed(link)
    assert signed_in(env)


def test_ctrl_c_at_the_prompt(env, issuer):
    term, link = login(env, issuer)
    os.write(term.master, b"half a paste")  # typed, not entered
    # Ctrl-C: the terminal's SIGINT (the pty is not kt's controlling terminal, so sent as such)
    term.proc.send_signal(signal.SIGINT)
    assert term.finish() == 130, term.seen
    assert "interrupted" in term.seen and "Traceback" not in term.seen
    assert listener_closed(link)
    assert not signed_in(env)


# --- kt auth login --remote: the provider's own "copy this code" page as redirect URI --------


def remote_login(env: dict[str, str], issuer: HostileAS, *extra: str) -> tuple[Terminal, str]:
    term = Terminal(
        [
            "auth",
            "login",
            "--remote",
            "--issuer",
            issuer.issuer,
            "--client-id",
            issuer.client_id,
            "--insecure-storage",
            "--timeout",
            "60",
            *extra,
        ],
        env,
        columns=400,
    )
    seen = term.expect(PROMPT)
    match = re.search(re.escape(issuer.issuer) + r"/authorize\S+", seen)
    assert match, seen
    return term, match[0]


def with_remote_page(issuer: HostileAS) -> str:
    """The provider's "copy this code" page; its device code (raced beside the paste, issue 13
    item 1) stays unapproved throughout."""
    page = issuer.issuer + "/remote-page"
    issuer.behaviour.metadata = {"keeptrusts_remote_redirect_uri": page}
    issuer.behaviour.device_answer = (400, {"error": "authorization_pending"})
    return page


def test_remote_the_answer_from_the_providers_page_signs_in(env, issuer):
    page = with_remote_page(issuer)
    term, url = remote_login(env, issuer)
    assert parse_qs(urlsplit(url).query)["redirect_uri"] == [page]
    answer = _location(url)  # the provider's page, which shows this address to copy
    assert answer.startswith(page + "?")
    term.type("not an answer")
    term.expect("paste the whole address")
    term.type(answer)
    assert term.finish() == 0, term.seen
    assert "Signed in" in term.seen
    (exchange,) = issuer.token_calls("authorization_code")
    assert exchange.form["redirect_uri"] == page
    assert signed_in(env)


def test_remote_refuses_another_sign_ins_answer_and_a_foreign_issuer(env, issuer):
    with_remote_page(issuer)
    issuer.behaviour.callback = {"iss": "https://evil.example"}
    term, url = remote_login(env, issuer)
    answer = _location(url)
    query = parse_qs(urlsplit(answer).query)
    forged = answer.split("?")[0] + "?" + urlencode({**query, "state": "another"}, True)
    term.type(forged)
    term.expect("does not belong to this sign-in")
    term.type(answer)  # the right state, but the issuer of another provider
    assert term.finish() == 7, term.seen
    assert "another issuer" in term.seen
    assert not issuer.token_calls("authorization_code")
    assert not signed_in(env)


def test_remote_with_a_provider_without_such_a_page(env, issuer):
    term = Terminal(
        ["auth", "login", "--remote", "--issuer", issuer.issuer, "--insecure-storage"], env
    )
    assert term.finish() == 1, term.seen
    assert "no page that shows a sign-in's answer" in term.seen
    assert "kt auth login --browser --no-browser" in term.seen
    assert not issuer.calls("GET", "/authorize")


def test_remote_needs_a_terminal(env, issuer):
    with_remote_page(issuer)
    result = kt("auth", "login", "--remote", "--issuer", issuer.issuer, env=env)
    assert result.code == 2, result.stderr
    assert "needs a terminal" in result.stderr and "kt auth login --device" in result.stderr


def test_remote_ctrl_c_at_the_prompt(env, issuer):
    with_remote_page(issuer)
    term, _ = remote_login(env, issuer)
    term.proc.send_signal(signal.SIGINT)
    assert term.finish() == 130, term.seen
    assert "interrupted" in term.seen and "Traceback" not in term.seen
