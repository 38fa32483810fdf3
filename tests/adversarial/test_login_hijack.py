"""Login hijack by another local user (issue 11 case 1, docs/security.md LU-01).

The attack: the browser launcher's command line (and environment) can be read from /proc by any
user of the machine. When it carried the whole authorization request, another user could finish
that request as themselves and have their code reach the victim's listener: state and PKCE pass,
and the victim is signed in to the attacker's account. Now kt opens the browser at a one-time
link on its loopback listener: the first fetch gets a 302 to the authorization request, a second
one the "already used" page, and kt stops the sign-in (exit 7, kt.sign_in_link_reused) storing
nothing.

The real `kt auth login --browser` against a real kt-devserver; `BROWSER` is a recording launcher
that hands the link to the test through a FIFO, and the test plays the browser (and the attacker)
with `tests.fixtures.oauth_client.Browser`, which fills kt-devserver's sign-in forms by hand.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from callback_server import CONTENT_SECURITY_POLICY
from kt_devserver import demo
from tests.fixtures.devserver import DevServer
from tests.fixtures.oauth_client import Browser, callback_of
from tests.kt_process import Result

WAIT = 30.0
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}

# The launcher: records its argv and environment (what any local user can read in /proc), hands
# the link to the test and returns at once, like a desktop browser launcher does.
OPENER = """
import json, os, sys
fifo, record, url = sys.argv[1:4]
with open(record, "w", encoding="utf-8") as f:
    json.dump({"argv": sys.argv, "env": dict(os.environ)}, f)
with open(fifo, "w", encoding="utf-8") as f:
    f.write(url + "\\n")
"""


@dataclass
class Login:
    """A running `kt auth login --browser`, the link it opened and what its launcher exposed."""

    proc: subprocess.Popen[str]
    link: str
    launcher: dict[str, object]  # {"argv": [...], "env": {...}} as the launcher saw them
    exposed: bytes  # kt's own /proc cmdline and environ while it waits

    def finish(self) -> Result:
        out, err = self.proc.communicate(timeout=WAIT)
        return Result(self.proc.returncode, out, err)


@pytest.fixture
def start_login(env: dict[str, str], tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> Login:
        fifo, record = tmp_path / "opener.fifo", tmp_path / "opener.json"
        os.mkfifo(fifo)
        script = tmp_path / "opener.py"
        script.write_text(OPENER)
        links: queue.Queue[str] = queue.Queue()

        def read_fifo() -> None:
            with open(fifo, encoding="utf-8") as f:  # blocks until the launcher opens it
                links.put(f.read().strip())

        threading.Thread(target=read_fifo, daemon=True).start()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kt_login", "auth", "login", "--browser",
             "--insecure-storage", "--timeout", "60", *extra],
            env=dict(env, BROWSER=f"{sys.executable} {script} {fifo} {record} %s"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(proc)
        try:
            link = links.get(timeout=WAIT)
        except queue.Empty:
            proc.kill()
            _, err = proc.communicate(timeout=WAIT)
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # free the reader
            raise AssertionError(f"kt never opened the browser: {err}") from None
        assert proc.poll() is None  # the launcher ran once the listener was up: kt is waiting
        exposed = b"\0".join(
            Path(f"/proc/{proc.pid}/{name}").read_bytes() for name in ("cmdline", "environ")
        )
        return Login(proc, link, json.loads(record.read_text()), exposed)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def follow_link(link: str) -> httpx2.Response:
    """One fetch of kt's one-time link, as a browser (or an attacker) makes it."""
    return httpx2.get(link, headers={"Sec-Fetch-Mode": "navigate"}, timeout=WAIT)


def authorization_params(response: httpx2.Response, devserver: DevServer) -> dict[str, str]:
    """The authorization request a first fetch of the link redirects to."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(devserver.url + "/oauth/authorize?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def assert_nothing_to_steer_with(login: Login, params: dict[str, str]) -> None:
    """Neither the launcher's argv/environment nor kt's own carry a value that would let
    someone else complete or steer the sign-in; the link is on kt's own listener."""
    link = urlsplit(login.link)
    redirect = urlsplit(params["redirect_uri"])
    assert (link.scheme, link.netloc, link.query) == ("http", redirect.netloc, "")
    assert len(link.path) > 40  # /<secrets.token_urlsafe(32)>
    launcher = json.dumps(login.launcher)
    assert login.link in login.launcher["argv"]  # type: ignore[operator]
    for name in ("state", "nonce", "code_challenge"):
        assert params[name] not in launcher, name
        assert params[name].encode() not in login.exposed, name
    for marker in ("code_challenge", "state=", "nonce=", "/oauth/authorize"):
        assert marker not in launcher, marker
        assert marker.encode() not in login.exposed, marker


def assert_hardened(response: httpx2.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


def sign_in(login: Login, devserver: DevServer) -> dict[str, str]:
    """The person's browser: the link once, alice signs in and approves, back to kt's listener.
    Returns the authorization request's parameters, after checking what was exposed."""
    first = follow_link(login.link)
    params = authorization_params(first, devserver)
    assert_hardened(first)
    assert_nothing_to_steer_with(login, params)
    browser = Browser(devserver)
    try:
        page = browser.http.get(first.headers["location"])
        page = browser.sign_in(page, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
        callback = callback_of(browser.approve(page), params["redirect_uri"])
    finally:
        browser.close()
    back = httpx2.get(callback.location, headers={"Sec-Fetch-Mode": "navigate"}, timeout=WAIT)
    assert back.status_code == 200, back.text
    return params


def stored(env: dict[str, str]) -> list[Path]:
    credentials = Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "credentials"
    return sorted(credentials.iterdir()) if credentials.exists() else []


def test_LU_01_a_second_fetch_of_the_link_stops_the_sign_in(
    start_login, devserver: DevServer, env: dict[str, str]
) -> None:
    """The attacker reads the link from the launcher's command line and fetches it first; the
    victim's browser then gets the "already used" page, kt stops with exit 7 and stores
    nothing, and the attacker's finished sign-in finds the listener closed."""
    login = start_login("--json")

    first = follow_link(login.link)  # the attacker
    params = authorization_params(first, devserver)
    assert_hardened(first)
    assert_nothing_to_steer_with(login, params)

    second = follow_link(login.link)  # the victim's browser
    assert second.status_code == 410
    assert "already used" in second.text and "someone else" in second.text
    assert "location" not in second.headers
    for name in ("state", "nonce", "code_challenge"):
        assert params[name] not in second.text
    assert_hardened(second)

    result = login.finish()
    assert result.code == 7, result.stderr
    error = result.error()
    assert error["code"] == "kt.sign_in_link_reused"
    assert "opened twice" in error["message"] and "someone else" in error["message"]
    assert "stored nothing" in error["message"]
    # the hint is the sign-in again, its settings kept (issue 12 defect 4, 9694216 and 8462014)
    assert error["hint"] == (
        "open its link only once: run: kt auth login --browser --insecure-storage --timeout 60"
    )
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert stored(env) == []

    # The attacker finishes the authorization request as themselves: their code has nowhere to go.
    attacker = Browser(devserver)
    try:
        page = attacker.http.get(first.headers["location"])
        page = attacker.sign_in(page, demo.BOB_EMAIL, demo.BOB_PASSWORD, demo.BOB_TOTP_SECRET)
        callback = callback_of(attacker.approve(page), params["redirect_uri"])
    finally:
        attacker.close()
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(callback.location, timeout=WAIT)
    assert stored(env) == []


def test_LU_01_a_normal_sign_in_goes_through_the_link_once(
    start_login, devserver: DevServer, env: dict[str, str]
) -> None:
    """The person's browser fetches the link once, signs in and comes back: kt is signed in, it
    printed only the one-time link, and the link is dead afterwards."""
    login = start_login()
    params = sign_in(login, devserver)
    result = login.finish()
    assert result.code == 0, result.stderr
    assert demo.ALICE_EMAIL in result.stdout
    assert f"visit this link (it works once):\n  {login.link}\n" in result.stderr
    for name in ("state", "nonce", "code_challenge"):
        assert params[name] not in result.stderr + result.stdout, name
    assert [p.name for p in stored(env)] == ["default.json"]
    with pytest.raises(httpx2.ConnectError):
        follow_link(login.link)  # the listener closed with the sign-in


def test_LU_01_with_json_the_progress_line_carries_the_link_only(
    start_login, devserver: DevServer
) -> None:
    """--json prints the one-time link (never the authorization request) in its JSON progress
    line on stderr, for a program that hands it to a person; the sign-in then goes through."""
    login = start_login("--json")
    assert login.proc.stderr is not None
    lines: list[dict[str, object]] = []
    while not lines or "sign_in_url" not in lines[-1]:
        line = login.proc.stderr.readline()
        assert line, f"kt ended before printing the sign-in link: {lines}"
        lines.append(json.loads(line))  # every line on stderr is JSON
    shown = lines[-1]
    redirect = urlsplit(str(shown["redirect_uri"]))
    assert shown["sign_in_url"] == login.link and shown["browser_opened"] is True
    assert redirect.netloc == urlsplit(login.link).netloc and shown["port"] == redirect.port
    assert "authorize" not in json.dumps(lines) and "state=" not in json.dumps(lines)
    sign_in(login, devserver)
    result = login.finish()
    assert result.code == 0, result.stderr
    assert result.json()["logged_in"] is True
    assert all(json.loads(line) for line in result.stderr.splitlines())
