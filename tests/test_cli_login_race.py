"""One login, three ways in, the first one wins (issue 13 item 1): `kt auth login --remote` (and
the automatic choice where no browser can be opened) shows the device code, the link whose
provider page shows an answer to paste back, and the loopback listener's one-time link, all at
once. The real `kt` on a pseudo-terminal against kt-devserver (and HostileAS where the device
poll must be held); the person is played over HTTP. Whichever way finishes first wins; then the
prompt has ended, the listener is closed, the device poll has stopped (no poll after the win;
a poll's sleep is cut short, so kt exits at once even when the next poll is far off: the poll
runs in a thread kt waits for, so a poll left running would keep kt from exiting), and nothing
pending was written."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from kt_devserver import demo
from kt_login.signin.oidc import SignInRequest
from kt_login.signin.race import Doors, race_sign_in
from tests.adversarial.hostile_as import HostileAS
from tests.fixtures.device_person import Person, kind
from tests.fixtures.devserver import DevServer
from tests.fixtures.oauth_client import Browser
from tests.kt_process import (
    REPO,
    base_env,
    free_port,
    kt,
    listener_closed,
    signed_in,
)
from tests.terminal import Terminal

PROMPT = "Paste here and press Enter: "
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# kt exits within this of a win although its next device poll is PARKED seconds away.
PROMPTLY = 10.0
PARKED = 60


@dataclass
class Race:
    term: Terminal
    user_code: str | None
    remote_url: str | None
    link: str


def start_race(env: dict[str, str], *args: str) -> Race:
    term = Terminal(
        ["auth", "login", *args, "--insecure-storage", "--no-qr", "--timeout", "60"],
        env,
        columns=400,
    )
    seen = term.expect(PROMPT)
    code = re.search(r"enter the code:\s+(\S+)", seen)
    remote = re.search(r"  (http\S+/authorize\S+)", seen)
    (link,) = re.findall(r"  (http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]{43})\s", seen)
    return Race(term, code[1] if code else None, remote[1] if remote else None, link)


def nothing_pending(env: dict[str, str]) -> bool:
    pending = Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "pending"
    return not pending.exists() or not any(pending.iterdir())


def device_codes(server: DevServer) -> list[tuple[str, float | None, float | None]]:
    """(status, last_poll_at, used_at) of every device code the server issued."""
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        return db.execute("SELECT status, last_poll_at, used_at FROM oauth_device_codes").fetchall()


def decide(server: DevServer, user_code: str | None, decision: str = "approve") -> str:
    """alice on her phone: the device pages, the code entered, signed in, then `decision`;
    the kind of the last page ('approved', 'denied', 'refused')."""
    assert user_code is not None
    with Person(server) as phone:
        return kind(phone.decide(user_code, decision))


def browser_answer(server: DevServer, url: str) -> str:
    """alice's browser, anywhere: the authorization request, signed in and approved; where the
    provider redirects it (the remote page's address, or kt's listener's callback)."""
    browser = Browser(server)
    try:
        page = browser.sign_in(browser.http.get(url), demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
        answer = browser.approve(page)
        assert answer.status_code in (302, 303), answer.text
        return str(answer.headers["location"])
    finally:
        browser.close()


def one_time_target(link: str) -> str:
    """Where the listener's one-time link sends a browser (fetched once, not followed)."""
    response = httpx2.get(link, headers={"Sec-Fetch-Mode": "navigate"})
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


@pytest.fixture
def server(devserver_factory) -> DevServer:
    return devserver_factory("--device-interval", "1")


@pytest.fixture
def env(tmp_path: Path, server: DevServer) -> dict[str, str]:
    return base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)


# --- kt-devserver: each way in wins once ------------------------------------------------------


def test_the_pasted_answer_wins_and_the_device_code_is_left_unused(env, server):
    race = start_race(env, "--remote")
    assert race.user_code and race.remote_url and race.link
    assert "%2Foauth%2Fremote-callback&" in race.remote_url
    answer = browser_answer(server, race.remote_url)
    assert answer.startswith(server.url + "/oauth/remote-callback?")
    page = httpx2.get(answer)
    assert answer in page.text.replace("&amp;", "&")  # the page shows it to copy
    race.term.type(answer)
    assert race.term.finish() == 0, race.term.seen
    assert "Logged in to" in race.term.seen
    assert listener_closed(race.link)
    assert signed_in(env) and nothing_pending(env)
    ((status, _, used_at),) = device_codes(server)
    assert status == "pending" and used_at is None  # never approved, never exchanged


def test_the_device_code_wins_and_the_prompt_and_listener_end(env, server):
    race = start_race(env, "--remote")
    assert decide(server, race.user_code) == "approved"
    assert race.term.finish() == 0, race.term.seen
    after = race.term.seen.split(PROMPT, 1)[1]
    assert after.startswith("\r\n") and "Logged in to" in after  # the prompt ended on its own line
    assert listener_closed(race.link)
    assert signed_in(env) and nothing_pending(env)
    who = kt("auth", "whoami", "--json", env=env)
    assert who.json()["user"]["email"] == demo.ALICE_EMAIL
    ((status, _, used_at),) = device_codes(server)
    assert status == "approved" and used_at is not None


def test_the_loopback_wins_and_the_device_code_is_never_approved(env, server):
    race = start_race(env, "--remote")
    target = one_time_target(race.link)  # a browser on this machine (or through a forward)
    callback = browser_answer(server, target)
    assert callback.startswith(f"http://127.0.0.1:{urlsplit(race.link).port}/callback?")
    page = httpx2.get(callback, headers={"Sec-Fetch-Mode": "navigate"})
    assert page.status_code == 200
    assert race.term.finish() == 0, race.term.seen
    assert "Logged in to" in race.term.seen
    assert listener_closed(race.link) and signed_in(env) and nothing_pending(env)
    ((status, _, used_at),) = device_codes(server)
    assert status == "pending" and used_at is None
    # The code kt stopped polling: approving it now signs nobody in on this machine.
    before = kt("auth", "status", "--json", env=env).stdout
    assert decide(server, race.user_code) == "approved"
    assert device_codes(server)[0][2] is None  # approved, but nobody ever redeems it
    assert kt("auth", "status", "--json", env=env).stdout == before


def test_ctrl_c_in_the_middle_cancels_every_way_in(env, server):
    race = start_race(env, "--remote")
    race.term.proc.send_signal(signal.SIGINT)
    assert race.term.finish() == 130, race.term.seen
    assert "interrupted" in race.term.seen and "Traceback" not in race.term.seen
    assert listener_closed(race.link)
    assert not signed_in(env) and nothing_pending(env)


def test_the_automatic_choice_without_a_browser_races_too(env, server):
    """No DISPLAY, no BROWSER (a server, a container): the device code and the links."""
    race = start_race(env)
    assert "Using device sign-in: " in race.term.seen
    assert race.user_code and race.remote_url and race.link
    assert decide(server, race.user_code) == "approved"
    assert race.term.finish() == 0, race.term.seen
    assert listener_closed(race.link) and signed_in(env)


def test_a_denied_device_code_ends_the_sign_in(env, server):
    race = start_race(env, "--remote")
    assert decide(server, race.user_code, "deny") == "denied"
    assert race.term.finish() == 3, race.term.seen
    assert "Traceback" not in race.term.seen
    assert listener_closed(race.link) and not signed_in(env)


def test_a_device_code_the_organisation_refuses_leaves_the_links_open(env, server):
    """The person's organisation turned device sign-in off (issue 13 item 4): the approval is
    refused, kt says so at the prompt, and the link still signs in."""
    org = subprocess.run(
        [sys.executable, "-m", "kt_devserver", "--db", str(server.db_path), "org",
         demo.ORGANIZATION_NAME, "--no-device-flow"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert org.returncode == 0, org.stderr
    race = start_race(env, "--remote")
    assert decide(server, race.user_code) == "refused"
    race.term.expect("the device code can no longer be used")
    race.term.expect(PROMPT, times=2)  # asked again, on a line of its own
    assert race.remote_url is not None
    race.term.type(browser_answer(server, race.remote_url))
    assert race.term.finish() == 0, race.term.seen
    assert "does not allow device sign-in" in race.term.seen
    assert listener_closed(race.link) and signed_in(env)


# --- HostileAS: a device poll held far off, and the order of what the provider saw ------------


@pytest.fixture
def parked() -> Iterator[HostileAS]:
    """A provider whose device code stays pending and whose next poll is PARKED s away."""
    server = HostileAS().start()
    server.behaviour.metadata = {"keeptrusts_remote_redirect_uri": server.issuer + "/remote-page"}
    server.behaviour.device_answer = (400, {"error": "authorization_pending"})
    server.behaviour.device_reply = {"interval": PARKED}
    yield server
    server.stop()


@pytest.fixture
def stub_env(tmp_path: Path) -> dict[str, str]:
    return base_env(tmp_path, KEEPTRUSTS_API_URL="https://api.invalid")


def _no_redirect(url: str) -> str:
    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), Stop)
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(url, timeout=10)
    caught.value.close()
    return str(caught.value.headers["Location"])


def test_a_paste_win_cuts_the_device_poll_s_wait_short(stub_env, parked):
    race = start_race(
        stub_env, "--remote", "--issuer", parked.issuer, "--client-id", parked.client_id
    )
    assert race.user_code == "BCDF-GHJK" and race.remote_url
    answer = _no_redirect(race.remote_url)  # the provider's page, showing this to copy
    typed = time.monotonic()
    race.term.type(answer)
    assert race.term.finish() == 0, race.term.seen
    assert time.monotonic() - typed < PROMPTLY  # not a poll interval of PARKED s
    (exchange,) = parked.token_calls("authorization_code")
    assert exchange.form["redirect_uri"] == parked.issuer + "/remote-page"
    assert not parked.token_calls(DEVICE_GRANT)  # the poll's sleep ended, no poll followed
    assert listener_closed(race.link) and signed_in(stub_env)


def test_ctrl_c_ends_at_once_with_a_poll_far_off(stub_env, parked):
    race = start_race(
        stub_env, "--remote", "--issuer", parked.issuer, "--client-id", parked.client_id
    )
    sent = time.monotonic()
    race.term.proc.send_signal(signal.SIGINT)
    assert race.term.finish() == 130, race.term.seen
    assert time.monotonic() - sent < PROMPTLY
    assert not parked.token_calls(DEVICE_GRANT)
    assert listener_closed(race.link) and not signed_in(stub_env)


# --- in-process: no thread and no listener left once the race returns -------------------------


def _race_in_process(issuer: HostileAS, answer_with: str) -> tuple[Doors, list[str]]:
    """race_sign_in against the stub: `answer_with` "remote" pastes the provider page's answer
    as soon as the doors are shown; "device" pastes nothing (the stub approves at the first
    poll). Returns the doors shown and the names of the threads alive afterwards."""
    shown: list[Doors] = []
    before = {t.ident for t in threading.enumerate()}
    login = SignInRequest(
        issuer=issuer.issuer, client_id=issuer.client_id, api_url=issuer.issuer, timeout=30
    )

    def paste(offer):  # type: ignore[no-untyped-def]
        import asyncio

        loop = asyncio.get_running_loop()
        if answer_with == "remote":
            doors = shown[0]
            assert doors.remote_url is not None
            answer = _no_redirect(doors.remote_url)
            loop.call_soon(offer, answer)
        return lambda: None

    with httpx2.Client(trust_env=False) as http:
        signed = race_sign_in(
            login,
            http=http,
            show=shown.append,
            paste=paste,
            on_device_stopped=lambda why: None,
        )
    assert signed.tokens.access_token
    return shown[0], [t.name for t in threading.enumerate() if t.ident not in before]


def test_in_process_nothing_is_left_running_after_a_paste_win(parked):
    doors, threads = _race_in_process(parked, "remote")
    assert threads == []  # the device poll's thread among them, though its next poll was far off
    assert listener_closed(doors.link)
    assert not parked.token_calls(DEVICE_GRANT)


def test_in_process_nothing_is_left_running_after_a_device_win():
    issuer = HostileAS().start()  # approves the device code at the first poll (interval 1)
    try:
        issuer.behaviour.metadata = {"keeptrusts_remote_redirect_uri": issuer.issuer + "/page"}
        doors, threads = _race_in_process(issuer, "device")
        assert threads == []
        assert listener_closed(doors.link)
        assert len(issuer.token_calls(DEVICE_GRANT)) == 1
        assert not issuer.token_calls("authorization_code")
        assert parse_qs(urlsplit(doors.remote_url or "").query)["redirect_uri"] == [
            issuer.issuer + "/page"
        ]
    finally:
        issuer.stop()


def test_over_ssh_with_the_profile_s_port_the_tunnel_command_is_shown(env, server):
    port = free_port()
    assert kt("config", "set", "port", str(port), env=env).code == 0
    ssh = {"SSH_CONNECTION": "203.0.113.7 50022 198.51.100.4 2222", "USER": "alice"}
    race = start_race({**env, **ssh}, "--remote")
    assert urlsplit(race.link).port == port
    assert f"  run: ssh -L {port}:127.0.0.1:{port} -p 2222 alice@198.51.100.4\r\n" in race.term.seen
    race.term.proc.send_signal(signal.SIGINT)
    assert race.term.finish() == 130
    assert listener_closed(race.link)


def test_with_pushed_requests_both_links_are_short_and_the_loopback_wins(
    tmp_path, devserver_factory
):
    """A provider with a PAR endpoint (RFC 9126): each request is pushed on its own."""
    par = devserver_factory("--par", "--device-interval", "1")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=par.url)
    race = start_race(env, "--remote")
    assert race.remote_url is not None and "request_uri=" in race.remote_url
    target = one_time_target(race.link)
    assert "request_uri=" in target and target != race.remote_url
    callback = browser_answer(par, target)
    assert httpx2.get(callback, headers={"Sec-Fetch-Mode": "navigate"}).status_code == 200
    assert race.term.finish() == 0, race.term.seen
    assert listener_closed(race.link) and signed_in(env)


def test_a_device_grant_approved_as_another_way_in_won_is_revoked():
    """The device poll is at the provider when the pasted answer wins: its reply (approved) comes
    after the race was decided, so kt revokes the tokens it carried instead of leaving a live
    grant nobody holds; the pasted answer's sign-in goes on."""
    import asyncio

    issuer = HostileAS().start()  # approves the device code at the first poll
    try:
        b = issuer.behaviour
        b.metadata = {"keeptrusts_remote_redirect_uri": issuer.issuer + "/page"}
        b.token_hold = threading.Event()  # every token request waits for it
        ended = threading.Event()
        shown: list[Doors] = []

        def paste(offer):  # type: ignore[no-untyped-def]
            loop = asyncio.get_running_loop()
            answer = _no_redirect(shown[0].remote_url or "")

            def person() -> None:
                assert b.token_arrived.wait(30)  # the device poll is at the provider, held
                loop.call_soon_threadsafe(offer, answer)
                assert ended.wait(30)  # the race was decided: now the provider answers
                assert b.token_hold is not None
                b.token_hold.set()

            threading.Thread(target=person, daemon=True).start()
            return ended.set

        login = SignInRequest(
            issuer=issuer.issuer, client_id=issuer.client_id, api_url=issuer.issuer, timeout=30
        )
        with httpx2.Client(trust_env=False) as http:
            signed = race_sign_in(
                login, http=http, show=shown.append, paste=paste, on_device_stopped=print
            )
        (device,) = issuer.token_calls(DEVICE_GRANT)
        (exchange,) = issuer.token_calls("authorization_code")
        assert exchange.form["redirect_uri"] == issuer.issuer + "/page"  # the paste won
        revoked = [call.form["token"] for call in issuer.calls("POST", "/revoke")]
        assert len(revoked) == 2 and signed.tokens.refresh_token not in revoked
        assert all(call.at < exchange.at for call in issuer.calls("POST", "/revoke"))
        assert device.at < exchange.at
    finally:
        issuer.stop()
