"""'Press Enter to open HOST in your browser' (issue 12): `kt auth login --browser` on a terminal
shows the one-time link and opens the browser only after Enter; --yes opens at once, and nothing
without a terminal ever prompts. The real `kt` on a pseudo-terminal against the stub provider
(HostileAS, whose /authorize redirects straight back to kt's listener), with the recording
stand-in browser of the adversarial tests as $BROWSER: its log says whether, and what, kt opened."""

from __future__ import annotations

import os
import pty
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.adversarial.hostile_as import HostileAS
from tests.kt_process import (
    base_env,
    kt,
    signed_in,
)
from tests.terminal import DEADLINE, Terminal

OPENER = Path(__file__).resolve().parent / "adversarial" / "browser.py"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/\S+")


@pytest.fixture
def issuer() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


@pytest.fixture
def opened(tmp_path: Path) -> Path:
    """The stand-in browser's log: one line per URL kt opened."""
    return tmp_path / "opener.log"


@pytest.fixture
def env(tmp_path: Path, opened: Path) -> dict[str, str]:
    return base_env(
        tmp_path,
        KEEPTRUSTS_API_URL="https://api.invalid",
        BROWSER=f"{sys.executable} {OPENER} %s",
        KT_ADV_OPENER_LOG=str(opened),
    )


def login_args(issuer: HostileAS, *extra: str) -> list[str]:
    return [
        "auth", "login", "--browser", "--issuer", issuer.issuer, "--client-id",
        issuer.client_id, "--insecure-storage", "--timeout", "60", *extra,
    ]  # fmt: skip


def prompt_for(issuer: HostileAS) -> str:
    return f"Press Enter to open {urlsplit(issuer.issuer).netloc} in your browser"


def opened_urls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def refused(link: str) -> bool:
    try:
        socket.create_connection(("127.0.0.1", urlsplit(link).port or 0), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_link_is_shown_and_nothing_opens_before_enter(env, issuer, opened):
    term = Terminal(login_args(issuer), env, columns=200)
    seen = term.expect(prompt_for(issuer))
    link = LINK.search(seen)
    assert link, seen  # printed, to copy
    assert opened_urls(opened) == []
    assert not issuer.calls("GET", "/authorize")  # the link was not followed by anyone
    term.type("")
    assert term.finish() == 0, term.seen
    assert opened_urls(opened) == [link[0]]  # the listener's one-time link, nothing else
    assert "Opened your browser." in term.seen and "Signed in" in term.seen
    assert signed_in(env)


def test_yes_opens_at_once(env, issuer, opened):
    term = Terminal(login_args(issuer, "--yes"), env, columns=200)
    assert term.finish() == 0, term.seen
    assert "Press Enter" not in term.seen
    assert len(opened_urls(opened)) == 1
    assert signed_in(env)


def test_without_a_terminal_it_never_asks(env, issuer, opened):
    result = kt(*login_args(issuer), env=env)
    assert result.code == 0, result.stderr
    assert "Press Enter" not in result.stderr
    assert len(opened_urls(opened)) == 1


def test_with_stdout_redirected_it_does_not_ask(env, issuer, opened, tmp_path):
    """Input and errors on a terminal, the output to a file: no prompt, the browser opens."""
    master, slave = pty.openpty()
    with (tmp_path / "out.txt").open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kt_login", *login_args(issuer)],
            env=env, stdin=slave, stdout=out, stderr=slave, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        try:
            code = proc.wait(timeout=DEADLINE)
        finally:
            seen = b""
            try:
                while chunk := os.read(master, 4096):
                    seen += chunk
            except OSError:
                pass
            os.close(master)
    assert code == 0, seen
    assert b"Press Enter" not in seen
    assert len(opened_urls(opened)) == 1


def test_ctrl_c_at_the_prompt_ends_cleanly(env, issuer, opened):
    term = Terminal(login_args(issuer), env, columns=200)
    link = LINK.search(term.expect(prompt_for(issuer)))
    assert link
    term.proc.send_signal(signal.SIGINT)  # Ctrl-C (the pty is not kt's controlling terminal)
    assert term.finish() == 130, term.seen
    assert "interrupted" in term.seen and "Traceback" not in term.seen
    assert opened_urls(opened) == []
    assert refused(link[0])  # the listener is closed
    assert not signed_in(env)
    assert not issuer.token_calls()


def test_end_of_input_at_the_prompt_opens_nothing_and_the_link_still_works(env, issuer, opened):
    term = Terminal(login_args(issuer), env, columns=200)
    link = LINK.search(term.expect(prompt_for(issuer)))
    assert link
    os.write(term.master, b"\x04")  # Ctrl-D: do not open
    term.expect("Not opening a browser")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(link[0], headers={"Sec-Fetch-Mode": "navigate"})
    opener.open(request, timeout=10).read()  # the person opens it by hand
    assert term.finish() == 0, term.seen
    assert opened_urls(opened) == []
    assert signed_in(env)
