"""The attacker's view of the loopback callback listener, from outside, over real sockets.

A live `receive()` runs in a thread (its redirect_uri arrives through a queue from `on_ready`,
its one result through another); the tests talk raw HTTP/1.1 to it the way a hostile page, a
local process or a port scanner would. The last case re-runs CB-08/HY-04 end to end through the
real `kt` against the hostile provider.
"""

from __future__ import annotations

import errno
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest

from callback_server import CONTENT_SECURITY_POLICY, CallbackResult, receive

from .conftest import Box
from .hostile_as import DELETE

STATE = "state-" + "s" * 40
WAIT = 30.0  # a generous bound for anything to happen on a loaded machine
HOSTILE_DESCRIPTION = "<script>alert(1)</script>\x1b]0;pwned\x07\x1b[2J"
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


@dataclass
class Live:
    port: int
    results: queue.Queue[CallbackResult | BaseException]
    thread: threading.Thread

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def result(self) -> CallbackResult:
        got = self.results.get(timeout=WAIT)
        if isinstance(got, BaseException):
            raise got
        return got

    def pending(self) -> bool:
        return self.results.empty() and self.thread.is_alive()


@contextmanager
def live_listener(timeout: float = 60.0) -> Iterator[Live]:
    """A `receive()` waiting in a thread; yields once it listens."""
    uris: queue.Queue[str] = queue.Queue()
    results: queue.Queue[CallbackResult | BaseException] = queue.Queue()

    def run() -> None:
        try:
            results.put(receive(STATE, on_ready=uris.put, timeout=timeout))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            results.put(exc)

    thread = threading.Thread(target=run, name="callback-listener", daemon=True)
    thread.start()
    uri = uris.get(timeout=WAIT)
    port = urlsplit(uri).port
    assert port is not None and urlsplit(uri).hostname == "127.0.0.1"
    live = Live(port, results, thread)
    try:
        yield live
    finally:
        if thread.is_alive() and results.empty():
            # end the wait with a valid response so the thread does not outlive the test
            try:
                get(live, f"/callback?code=cleanup&state={STATE}")
            except OSError:
                pass
        thread.join(WAIT)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def parse(raw: bytes) -> Reply:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(status, headers, body)


def request_bytes(target: str, host: str) -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Mode: navigate\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def get(live: Live, target: str, host: str | None = None) -> Reply:
    with socket.create_connection(("127.0.0.1", live.port), timeout=WAIT) as sock:
        sock.sendall(request_bytes(target, host or live.host))
        return parse(read_all(sock))


def assert_refused(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        with pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", port))


def test_CB_10_valid_callback_completes_despite_200_idle_connections() -> None:
    idle: list[socket.socket] = []
    try:
        with live_listener() as live:
            for i in range(200):
                sock = socket.create_connection(("127.0.0.1", live.port), timeout=WAIT)
                idle.append(sock)
                if i % 2:
                    sock.sendall(b"GET /callback?code=partial&sta")  # never finished
            assert live.pending()
            reply = get(live, f"/callback?code=good&state={STATE}")
            assert reply.status == 200
            result = live.result()  # within WAIT seconds
            assert result.code == "good" and result.error is None
            live.thread.join(WAIT)
            assert not live.thread.is_alive()
            assert_refused(live.port)  # CB-04: closed once the wait returned
    finally:
        for sock in idle:
            sock.close()


def test_CB_07_only_the_right_state_completes_and_only_once() -> None:
    with live_listener() as live:
        assert get(live, "/callback?code=wrong&state=not-the-state").status == 400
        assert live.pending()
        assert get(live, "/callback?error=access_denied").status == 400
        assert live.pending()
        # the same valid code twice, on two connections opened before either is sent
        first = socket.create_connection(("127.0.0.1", live.port), timeout=WAIT)
        second = socket.create_connection(("127.0.0.1", live.port), timeout=WAIT)
        try:
            first.sendall(request_bytes(f"/callback?code=good&state={STATE}", live.host))
            second.sendall(request_bytes(f"/callback?code=good&state={STATE}", live.host))
            replies = [read_all(first), read_all(second)]
        finally:
            first.close()
            second.close()
        statuses = [parse(raw).status if raw else None for raw in replies]
        assert statuses.count(200) == 1, statuses
        result = live.result()
        assert (result.code, result.error) == ("good", None)
        live.thread.join(WAIT)
        assert live.results.empty()  # never a second result
        assert_refused(live.port)  # a later replay reaches nothing


def test_CB_06_foreign_host_header_is_refused_and_flow_stays_pending() -> None:
    with live_listener() as live:
        evil_host = f"attacker.example:{live.port}"
        reply = get(live, f"/callback?code=evil&state={STATE}", host=evil_host)
        assert reply.status in (403, 421)
        assert b"evil" not in reply.body
        assert live.pending()
        assert get(live, f"/callback?code=good&state={STATE}").status == 200
        assert live.result().code == "good"


BIND_PROBE = """
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
except OSError as exc:
    print(errno.errorcode.get(exc.errno, exc.errno))
else:
    print("BOUND")
"""


def test_CB_03_another_process_cannot_take_the_port_even_with_reuse_options() -> None:
    with live_listener() as live:
        probe = subprocess.run(
            [sys.executable, "-c", BIND_PROBE, str(live.port)],
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert probe.stdout.strip() == errno.errorcode[errno.EADDRINUSE], probe
        assert live.pending()
        assert get(live, f"/callback?code=good&state={STATE}").status == 200
        assert live.result().code == "good"


def test_CB_08_HY_04_hostile_error_description_page() -> None:
    with live_listener() as live:
        target = (
            f"/callback?state={STATE}&error=access_denied"
            f"&error_description={quote(HOSTILE_DESCRIPTION, safe='')}"
        )
        reply = get(live, target)
        result = live.result()
    assert reply.status == 200
    assert result.error == "access_denied" and result.code is None
    body = reply.body.lower()
    assert b"<script" not in body and b"onerror" not in body
    assert b"\x1b" not in reply.body and b"\x07" not in reply.body
    assert b"pwned" not in body
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers.get(name) == value, (name, reply.headers)


def test_CB_08_HY_04_hostile_error_description_through_real_kt(box: Box) -> None:
    box.server.behaviour.callback = {
        "code": DELETE,
        "error": "access_denied",
        "error_description": HOSTILE_DESCRIPTION,
    }
    before = box.snapshot()
    result = box.login()
    assert result.code == 3, result.stderr
    assert result.error()["code"] == "oauth.access_denied", result.stderr
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "<script" not in result.stderr.lower()
    assert "Traceback" not in result.stderr
    assert not box.server.token_calls()
    assert box.snapshot() == before
