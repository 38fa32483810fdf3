"""callback_server over real loopback sockets: binding, the one-shot gate, pages, limits, logs."""

from __future__ import annotations

import ast
import asyncio
import errno
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import callback_server
from callback_server import (
    CallbackError,
    CallbackResult,
    CallbackServer,
    CallbackTimeout,
    LinkReused,
    Pages,
    PortInUse,
    _server,
    parse_redirect,
    receive,
)
from callback_server._result import judge
from tests.kt_process import free_port, in_time_wait

REPO = Path(__file__).resolve().parent.parent
STATE = "st4te-Xq9vR2mP7kL1nB8cZ3wD5f"
SECURITY_HEADERS = {
    "content-security-policy": callback_server.CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


# --- helpers -------------------------------------------------------------------------------------


class Reply:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
        }
        self.text = self.body.decode()


def port_of(srv: CallbackServer) -> int:
    port = urlsplit(srv.redirect_uri).port
    assert port is not None
    return port


async def send_raw(port: int, data: bytes, host: str = "127.0.0.1") -> Reply:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        return Reply(await reader.read())
    finally:
        writer.close()


async def request(
    srv: CallbackServer,
    target: str,
    *,
    method: str = "GET",
    host: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    authority = urlsplit(srv.redirect_uri).netloc
    lines = [f"{method} {target} HTTP/1.1"]
    if host != "":
        lines.append(f"Host: {authority if host is None else host}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["Connection: close", "", ""]
    literal = urlsplit(srv.redirect_uri).hostname or ""
    return await send_raw(port_of(srv), "\r\n".join(lines).encode(), literal)


def callback(code: str = "good", state: str = STATE, path: str = "/callback", **more: str) -> str:
    return f"{path}?{urlencode({'code': code, 'state': state, **more})}"


async def finish(srv: CallbackServer, code: str = "good") -> CallbackResult:
    """Send the valid callback and collect the result: proves earlier requests left it pending."""
    reply = await request(srv, callback(code))
    assert reply.status == 200
    result = await srv.wait()
    assert result.code == code
    return result


def refused(port: int, host: str = "127.0.0.1") -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.settimeout(1)
        try:
            probe.connect((host, port))
        except ConnectionRefusedError:
            return True
        return False


def listening_sockets(port: int) -> list[socket.socket]:
    """This process's sockets bound to `port` (Linux /proc), as duplicates the caller closes."""
    found, seen = [], set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            inode = os.readlink(f"/proc/self/fd/{fd}")
            if not inode.startswith("socket:") or inode in seen:
                continue
            seen.add(inode)  # the duplicates made here appear in the listing too
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.getsockname()[1] == port:
            found.append(sock)
        else:
            sock.close()
    return found


def tasks_left() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


@pytest.fixture
async def srv() -> AsyncIterator[CallbackServer]:
    server = CallbackServer(state=STATE, timeout=30)
    await server.start()
    yield server
    await server.close()


# --- the public surface ------------------------------------------------------------------------


def test_exported_names():
    assert sorted(callback_server.__all__) == [
        "CONTENT_SECURITY_POLICY",
        "CallbackError",
        "CallbackResult",
        "CallbackServer",
        "CallbackTimeout",
        "LinkReused",
        "NotThisRedirect",
        "PAGE_STYLE",
        "Pages",
        "PortInUse",
        "parse_pasted",
        "parse_redirect",
        "receive",
    ]
    assert issubclass(CallbackTimeout, CallbackError)
    assert issubclass(LinkReused, CallbackError)
    assert issubclass(PortInUse, CallbackError)
    assert issubclass(callback_server.NotThisRedirect, CallbackError)


def test_import_does_not_load_aiohttp_or_jinja2():
    import subprocess
    import sys

    code = "import sys, callback_server; print(sorted(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "'aiohttp'" not in out and "'jinja2'" not in out


def test_serving_loads_neither_kt_login_nor_jinja2():
    """Usable alone: a whole sign-in through the package brings in nothing of kt_login."""
    import subprocess
    import sys

    code = """
import sys, threading, urllib.request
from callback_server import receive

def on_ready(uri):
    hit = lambda: urllib.request.urlopen(uri + "?code=c&state=s").read()
    threading.Thread(target=hit).start()

assert receive("s", on_ready=on_ready, timeout=10).code == "c"
print(sorted(m for m in sys.modules if m.split(".")[0] in ("kt_login", "jinja2")))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_result_repr_masks_code_and_state():
    result = CallbackResult("c0de-SECRET", STATE, "https://as.example", None, None)
    assert "c0de-SECRET" not in repr(result) and STATE not in repr(result)
    assert "https://as.example" in repr(result)


@pytest.mark.parametrize(
    "kwargs",
    [{"state": ""}, {"path": "callback"}, {"path": "/cb?x=1"}, {"port": -1}, {"timeout": 0}],
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        CallbackServer(**{"state": STATE, **kwargs})


# --- CB-01 .. CB-03: where and how it listens ---------------------------------------------------


async def test_cb01_binds_ipv4_loopback_literal_only(srv):
    uri = urlsplit(srv.redirect_uri)
    assert uri.scheme == "http" and uri.hostname == "127.0.0.1" and uri.path == "/callback"
    socks = listening_sockets(port_of(srv))
    try:
        assert socks and all(s.getsockname()[0] == "127.0.0.1" for s in socks)
    finally:
        for s in socks:
            s.close()
    await finish(srv)


async def test_cb01_falls_back_to_ipv6_loopback_when_ipv4_is_unavailable(monkeypatch):
    real = _server._listen_on

    def no_ipv4(family, host, port):
        if family == socket.AF_INET:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        return real(family, host, port)

    monkeypatch.setattr(_server, "_listen_on", no_ipv4)
    try:
        server = CallbackServer(state=STATE)
        uri = await server.start()
    except CallbackError:
        pytest.skip("no IPv6 loopback here")
    port = port_of(server)
    assert uri == f"http://[::1]:{port}/callback"
    assert (await request(server, "/callback", host=f"127.0.0.1:{port}")).status == 421
    await finish(server)
    assert refused(port, "::1")


def test_cb01_regression_guard_no_tcpsite_or_wildcard_host():
    """TCPSite(host=None) binds every interface (SECURITY.md §0.1): the package must not use it."""
    for path in (REPO / "callback_server").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                assert name not in {"TCPSite", "create_server", "run_app"}, path
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in {"0.0.0.0", "::"}, path
    # `localhost` names a redirect host; it is written once, and never handed to bind (the
    # sockets of a localhost server are bound to the literals: test_localhost_listens_on_...).
    constants = [
        (path.name, node)
        for path in (REPO / "callback_server").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value == "localhost"
    ]
    assert [name for name, _ in constants] == ["_server.py"]
    assert _server.LOCALHOST == "localhost"


async def test_cb02_ephemeral_ports_two_servers_at_once():
    async with (
        CallbackServer(state=STATE) as one,
        CallbackServer(state=STATE + "2") as two,
    ):
        assert port_of(one) != port_of(two)
        assert (await request(two, callback("two", STATE + "2"))).status == 200
        assert (await request(one, callback("one"))).status == 200
        assert (await one.wait()).code == "one"
        assert (await two.wait()).code == "two"


async def test_cb02_fixed_port_is_honoured():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    async with CallbackServer(state=STATE, port=free) as server:
        assert server.redirect_uri == f"http://127.0.0.1:{free}/callback"
        await finish(server)


async def test_cb03_exclusive_bind(srv):
    port = port_of(srv)
    (sock,) = listening_sockets(port)
    with sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    with socket.socket() as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with pytest.raises(OSError) as caught:
            intruder.bind(("127.0.0.1", port))
        assert caught.value.errno == errno.EADDRINUSE


async def test_cb03_busy_fixed_port_is_a_one_line_error_naming_it():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = CallbackServer(state=STATE, port=port)
        with pytest.raises(CallbackError) as caught:
            await server.start()
    message = str(caught.value)
    assert str(port) in message and "in use" in message and "\n" not in message
    assert not tasks_left()
    async with server:  # the port is free again: the same server can try once more
        await finish(server)


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's /proc/net/tcp")
async def test_cb03_a_fixed_port_binds_again_while_the_last_connection_is_in_time_wait():
    """Issue 10 case 10: the previous sign-in's connection, closed by the server first, lingers
    in TIME-WAIT; a plain bind is refused, the listener's (SO_REUSEADDR) is not."""
    port = free_port()
    async with CallbackServer(state=STATE, port=port) as first:
        await finish(first)  # the server answers and closes the connection first
    assert in_time_wait(port)
    with socket.socket() as plain, pytest.raises(OSError) as caught:
        plain.bind(("127.0.0.1", port))
    assert caught.value.errno == errno.EADDRINUSE  # the TIME-WAIT is real
    async with CallbackServer(state=STATE, port=port) as again:
        assert again.redirect_uri == f"http://127.0.0.1:{port}/callback"
        await finish(again)


async def test_cb03_a_fixed_port_still_refuses_a_second_live_listener():
    port = free_port()
    async with CallbackServer(state=STATE, port=port) as server:
        (sock,) = listening_sockets(port)
        with sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        with pytest.raises(PortInUse) as caught:
            await CallbackServer(state=STATE, port=port).start()
        assert (caught.value.host, caught.value.port) == ("127.0.0.1", port)
        for options, host in (
            ((socket.SO_REUSEADDR,), "127.0.0.1"),
            ((socket.SO_REUSEADDR, socket.SO_REUSEPORT), "127.0.0.1"),
            ((socket.SO_REUSEADDR,), "0.0.0.0"),  # noqa: S104 - the intruder's wildcard bind
        ):
            with socket.socket() as intruder:
                for option in options:
                    intruder.setsockopt(socket.SOL_SOCKET, option, 1)
                with pytest.raises(OSError) as refused_bind:
                    intruder.bind((host, port))
                assert refused_bind.value.errno == errno.EADDRINUSE, (options, host)
        await finish(server)


# --- issue 13 item 2: the redirect host (127.0.0.1, [::1], localhost on both families) --------


async def send_from(family_host: str, port: int, target: str, host_header: str) -> Reply:
    request_bytes = f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n"
    return await send_raw(port, request_bytes.encode(), family_host)


def bound_addresses(port: int) -> list[str]:
    socks = listening_sockets(port)
    try:
        for sock in socks:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        return sorted(s.getsockname()[0] for s in socks)
    finally:
        for s in socks:
            s.close()


async def test_localhost_listens_on_both_loopback_literals_on_one_port():
    async with CallbackServer(state=STATE, host="localhost", timeout=30) as server:
        port = port_of(server)
        assert server.redirect_uri == f"http://localhost:{port}/callback"
        assert bound_addresses(port) == ["127.0.0.1", "::1"]  # never the name, never a wildcard
        for sock in listening_sockets(port):
            with sock:  # an OS-chosen port: exclusive on both families (CB-03)
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
        # Each family answers, pinned to localhost:PORT (CB-06): its own literal is misdirected.
        for literal, own in (("127.0.0.1", f"127.0.0.1:{port}"), ("::1", f"[::1]:{port}")):
            assert (await send_from(literal, port, "/", f"localhost:{port}")).status == 404
            assert (await send_from(literal, port, callback(), own)).status == 421
            assert (
                await send_from(literal, port, callback(), f"evil.example:{port}")
            ).status == 421
        # The browser's redirect comes over ::1 and completes the sign-in.
        reply = await send_from("::1", port, callback("over-v6"), f"localhost:{port}")
        assert reply.status == 200
        assert (await server.wait()).code == "over-v6"
    assert refused(port) and refused(port, "::1")
    assert not tasks_left()


async def test_localhost_answers_over_ipv4_too():
    async with CallbackServer(state=STATE, host="localhost", timeout=30) as server:
        port = port_of(server)
        reply = await send_from("127.0.0.1", port, callback("over-v4"), f"localhost:{port}")
        assert reply.status == 200
        assert (await server.wait()).code == "over-v4"
    assert refused(port) and refused(port, "::1")


async def test_localhost_one_time_link_names_localhost_and_works_over_ipv6():
    async with CallbackServer(state=STATE, host="localhost", timeout=30) as server:
        port = port_of(server)
        link = urlsplit(server.one_time_link(AUTHORIZE))
        assert link.netloc == f"localhost:{port}"
        reply = await send_from("::1", port, link.path, f"localhost:{port}")
        assert (reply.status, reply.headers["location"]) == (302, AUTHORIZE)
        await finish(server)


async def test_localhost_on_a_fixed_port_binds_both_and_refuses_intruders_on_each():
    port = free_port()
    async with CallbackServer(state=STATE, host="localhost", port=port) as server:
        assert server.redirect_uri == f"http://localhost:{port}/callback"
        assert bound_addresses(port) == ["127.0.0.1", "::1"]
        for sock in listening_sockets(port):
            with sock:  # SO_REUSEADDR for TIME-WAIT only on a fixed port, as for 127.0.0.1
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        for family, literal in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family) as intruder:
                intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                with pytest.raises(OSError) as caught:
                    intruder.bind((literal, port))
                assert caught.value.errno == errno.EADDRINUSE, literal
        await finish(server)


async def test_localhost_fixed_port_taken_on_ipv6_is_port_in_use_naming_it():
    with socket.socket(socket.AF_INET6) as squatter:
        squatter.bind(("::1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUse) as caught:
            await CallbackServer(state=STATE, host="localhost", port=port).start()
    assert (caught.value.host, caught.value.port) == ("::1", port)
    assert refused(port)  # the 127.0.0.1 half was closed again
    assert not tasks_left()


async def test_localhost_any_port_moves_on_when_ipv6_has_it_taken(monkeypatch):
    real, taken = _server._listen_on, []

    def ipv6_taken_once(family, host, port, **options):
        if family == socket.AF_INET6 and not taken:
            taken.append(port)
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return real(family, host, port, **options)

    monkeypatch.setattr(_server, "_listen_on", ipv6_taken_once)
    async with CallbackServer(state=STATE, host="localhost") as server:
        port = port_of(server)
        assert taken and port != taken[0]
        assert bound_addresses(port) == ["127.0.0.1", "::1"]
        await finish(server)


def no_ipv6(monkeypatch):
    real = _server._listen_on

    def without_ipv6(family, host, port, **options):
        if family == socket.AF_INET6:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        return real(family, host, port, **options)

    monkeypatch.setattr(_server, "_listen_on", without_ipv6)


async def test_localhost_without_ipv6_serves_ipv4_alone_and_logs_it(monkeypatch, caplog):
    no_ipv6(monkeypatch)
    caplog.set_level(logging.DEBUG, logger="callback_server")
    async with CallbackServer(state=STATE, host="localhost") as server:
        port = port_of(server)
        assert server.redirect_uri == f"http://localhost:{port}/callback"
        assert bound_addresses(port) == ["127.0.0.1"]
        assert "no IPv6 loopback (::1) here" in caplog.text
        await finish(server)


async def test_ipv6_only_host_binds_ipv6_and_pins_its_literal():
    async with CallbackServer(state=STATE, host="::1", timeout=30) as server:
        port = port_of(server)
        assert server.redirect_uri == f"http://[::1]:{port}/callback"
        assert bound_addresses(port) == ["::1"]
        assert refused(port)  # nothing on 127.0.0.1
        assert (await send_from("::1", port, callback(), f"localhost:{port}")).status == 421
        assert (await send_from("::1", port, callback(), f"127.0.0.1:{port}")).status == 421
        await finish(server)


async def test_ipv6_only_host_without_ipv6_is_a_clear_error(monkeypatch):
    no_ipv6(monkeypatch)
    with pytest.raises(CallbackError) as caught:
        await CallbackServer(state=STATE, host="::1").start()
    assert str(caught.value) == "cannot listen on ::1: this machine has no IPv6 loopback"
    assert not tasks_left()


def test_unknown_redirect_host_is_refused():
    for host in ("0.0.0.0", "::", "[::1]", "example.com", ""):  # noqa: S104 - refused values
        with pytest.raises(ValueError, match="host must be one of"):
            CallbackServer(state=STATE, host=host)


# --- CB-04: the listener lives only as long as the wait ----------------------------------------


async def test_cb04_closed_after_success_with_no_tasks_left(srv):
    port = port_of(srv)
    await finish(srv)
    assert refused(port)
    assert not tasks_left()


async def test_cb04_closed_after_error_response(srv):
    port = port_of(srv)
    assert (await request(srv, f"/callback?error=access_denied&state={STATE}")).status == 200
    result = await srv.wait()
    assert (result.code, result.error) == (None, "access_denied")
    assert refused(port)


async def test_cb04_closed_after_timeout():
    server = CallbackServer(state=STATE, timeout=0.05)
    await server.start()
    with pytest.raises(CallbackTimeout, match="0.05 s"):
        await server.wait()
    assert refused(port_of(server))
    assert not tasks_left()


async def test_cb04_closed_when_the_wait_is_cancelled(srv):
    task = asyncio.create_task(srv.wait())
    # A request answered proves the wait is under way before it is cancelled.
    assert (await request(srv, "/favicon.ico")).status == 404
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert refused(port_of(srv))
    assert not tasks_left()


async def test_cb04_closed_when_the_body_raises():
    with pytest.raises(RuntimeError, match="browser"):
        async with CallbackServer(state=STATE) as server:
            port = port_of(server)
            raise RuntimeError("browser failed")
    assert refused(port)


async def test_cb04_close_is_idempotent_and_wait_after_close_fails(srv):
    await srv.close()
    await srv.close()
    with pytest.raises(CallbackError):
        await srv.wait()


async def test_cb04_wait_again_after_a_cancelled_wait_fails_cleanly(srv):
    task = asyncio.create_task(srv.wait())
    assert (await request(srv, "/favicon.ico")).status == 404
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(CallbackError, match="closed"):
        await srv.wait()


async def test_cb04_wait_before_start_is_a_programming_error():
    with pytest.raises(RuntimeError):
        await CallbackServer(state=STATE).wait()
    with pytest.raises(RuntimeError):
        _ = CallbackServer(state=STATE).redirect_uri


def test_cb04_receive_returns_the_result_and_closes():
    seen: list[str] = []

    def on_ready(redirect_uri: str) -> None:
        seen.append(redirect_uri)
        url = f"{redirect_uri}?{urlencode({'code': 'abc', 'state': STATE, 'iss': 'https://as'})}"
        # A real HTTP client on another thread plays the browser.
        threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=5).read()).start()

    result = receive(STATE, on_ready=on_ready, timeout=10)
    assert (result.code, result.state, result.iss, result.error) == (
        "abc",
        STATE,
        "https://as",
        None,
    )
    assert refused(urlsplit(seen[0]).port or 0)


def test_cb04_receive_closes_then_reraises_on_ready_errors():
    ports: list[int] = []

    def on_ready(redirect_uri: str) -> None:
        ports.append(urlsplit(redirect_uri).port or 0)
        raise OSError("no browser")

    with pytest.raises(OSError, match="no browser"):
        receive(STATE, on_ready=on_ready)
    assert refused(ports[0])


def test_cb04_receive_timeout():
    with pytest.raises(CallbackTimeout):
        receive(STATE, on_ready=lambda uri: None, timeout=0.05)


# --- CB-05 .. CB-07, CB-12, EH-01: what counts as the callback ---------------------------------


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("POST", callback("bad"), 405),
        ("HEAD", callback("bad"), 405),
        ("PUT", callback("bad"), 405),
        ("GET", "/" + callback("bad")[len("/callback") :], 404),
        ("GET", callback("bad", path="/callback/x"), 404),
        ("GET", callback("bad", path="/callback/"), 404),
        ("GET", callback("bad", path="/Callback"), 404),
        ("GET", callback("bad", path="/call%62ack"), 404),
        ("GET", "/favicon.ico", 404),
    ],
)
async def test_cb05_only_get_on_the_exact_path(srv, method, target, status):
    reply = await request(srv, target, method=method)
    assert reply.status == status
    if status == 405:
        assert reply.headers["allow"] == "GET"
    await finish(srv)


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:{port}",
        "localhost:{port}",
        "127.0.0.1",
        "127.0.0.1:{other}",
        "[::1]:{port}",
        "",
    ],
)
async def test_cb06_host_header_is_pinned(srv, host):
    port = port_of(srv)
    reply = await request(srv, callback("bad"), host=host.format(port=port, other=port + 1))
    # HTTP/1.1 without Host is already refused by aiohttp's parser.
    assert reply.status == (400 if host == "" else 421)
    await finish(srv)


async def test_cb07_wrong_state_neither_completes_nor_consumes(srv):
    for target in (
        callback("bad", "wrong"),
        "/callback?error=access_denied&state=wrong",
        "/callback?error=access_denied",
        "/callback?code=bad",
        callback("bad", STATE[:-1]),
        callback("bad", STATE + "x"),
        callback("bad", "é" * 5),
    ):
        reply = await request(srv, target)
        assert reply.status == 400
        assert "not a valid sign-in response" in reply.text.lower()
    await finish(srv)


async def test_cb07_only_one_result(srv):
    assert (await request(srv, callback("first"))).status == 200
    # The listener may already be closing; if it answers, it is the static page, not a result.
    try:
        second = await request(srv, callback("second"))
    except ConnectionError:
        second = None
    assert second is None or second.status == 400
    assert (await srv.wait()).code == "first"


async def test_cb07_concurrent_valid_callbacks_give_one_result(srv):
    replies = await asyncio.gather(*(request(srv, callback(f"c{i}")) for i in range(5)))
    assert sorted(r.status for r in replies) == [200, 400, 400, 400, 400]
    winner = next(i for i, r in enumerate(replies) if r.status == 200)
    assert (await srv.wait()).code == f"c{winner}"


@pytest.mark.parametrize(
    "query",
    [
        "code=a&code=b&state={s}",
        "code=a&state={s}&state={s}",
        "code=a&state={s}&iss=x&iss=y",
        "error=a&error=b&state={s}",
        "code=a&error=access_denied&state={s}",
        "state={s}",
        "code=&state={s}",
    ],
)
async def test_eh01_duplicates_and_ambiguity_are_rejected(srv, query):
    assert (await request(srv, "/callback?" + query.format(s=STATE))).status == 400
    await finish(srv)


@pytest.mark.parametrize("mode", ["no-cors", "cors", "same-origin", "websocket"])
async def test_cb12_non_navigation_fetches_are_rejected(srv, mode):
    reply = await request(srv, callback("bad"), headers={"Sec-Fetch-Mode": mode})
    assert reply.status == 403
    reply = await request(srv, callback(), headers={"Sec-Fetch-Mode": "navigate"})
    assert reply.status == 200
    assert (await srv.wait()).code == "good"


async def test_configurable_path_and_extra_parameters_ignored():
    async with CallbackServer(state=STATE, path="/oauth2/cb") as server:
        assert server.redirect_uri.endswith("/oauth2/cb")
        assert (await request(server, callback("bad"))).status == 404
        target = callback("ok", path="/oauth2/cb", session_state="x", iss="https://as.example")
        assert (await request(server, target)).status == 200
        result = await server.wait()
    assert (result.code, result.iss, result.error) == ("ok", "https://as.example", None)


async def test_values_are_percent_decoded(srv):
    target = "/callback?code=a%2Bb%26c+d&state=" + quote(STATE) + "&iss=https%3A%2F%2Fas.example"
    assert (await request(srv, target)).status == 200
    result = await srv.wait()
    assert (result.code, result.iss) == ("a+b&c d", "https://as.example")


# --- CB-08: pages and headers -------------------------------------------------------------------


async def test_cb08_error_page_echoes_nothing(srv):
    evil = "<script>alert(1)</script><img src=x onerror=alert(1)>"
    target = "/callback?" + urlencode(
        {"state": STATE, "error": "x<b>ERR</b>", "error_description": evil}
    )
    reply = await request(srv, target)
    assert reply.status == 200
    for needle in ("<script", "onerror", "ERR", "alert", STATE):
        assert needle not in reply.text
    assert SECURITY_HEADERS.items() <= reply.headers.items()
    assert reply.headers["content-type"].startswith("text/html")
    result = await srv.wait()
    assert (result.error, result.error_description, result.code) == ("x<b>ERR</b>", evil, None)


async def test_cb08_success_page_sends_the_person_back_to_the_terminal(srv):
    reply = await request(srv, callback("c0de"))
    assert "close this tab" in reply.text and "terminal" in reply.text
    assert "c0de" not in reply.text and STATE not in reply.text
    await srv.wait()


@pytest.mark.parametrize(
    "lines",
    [
        ["GET {cb} HTTP/1.1", "Host: {host}"],  # 200
        ["GET /callback?state=no HTTP/1.1", "Host: {host}"],  # 400 page
        ["GET /x HTTP/1.1", "Host: {host}"],  # 404
        ["POST /callback HTTP/1.1", "Host: {host}", "Content-Length: 0"],  # 405
        ["GET {cb} HTTP/1.1", "Host: evil"],  # 421
        ["GET {cb} HTTP/1.1", "Host: {host}", "Sec-Fetch-Mode: cors"],  # 403
        ["G\x01T {cb} HTTP/1.1", "Host: {host}"],  # aiohttp's own 400s
        ["GET {cb} HTTP/1.1", "Host: {host}", "X-Big: " + "y" * 10_000],
        ["GET {cb} HTTP/1.1"],
    ],
)
async def test_cb08_security_headers_on_every_response(srv, lines):
    host = urlsplit(srv.redirect_uri).netloc
    head = "\r\n".join([*lines, "Connection: close", "", ""])
    data = head.replace("{cb}", callback("c0de-canary")).replace("{host}", host).encode()
    reply = await send_raw(port_of(srv), data)
    assert SECURITY_HEADERS.items() <= reply.headers.items(), reply.status
    assert b"c0de-canary" not in reply.body


async def test_pages_of_ones_own_are_served_with_the_same_headers():
    pages = Pages(success="<p>ok</p>", error="<p>no</p>", invalid="<p>what</p>")
    async with CallbackServer(state=STATE, pages=pages) as server:
        invalid = await request(server, callback("c0de", state="wrong"))
        assert (invalid.status, invalid.text) == (400, "<p>what</p>")
        success = await request(server, callback("c0de"))
        assert (success.status, success.text) == (200, "<p>ok</p>")
        assert SECURITY_HEADERS.items() <= success.headers.items()
        assert (await server.wait()).code == "c0de"
    async with CallbackServer(state=STATE, pages=pages) as server:
        denied = "/callback?" + urlencode({"state": STATE, "error": "access_denied"})
        error = await request(server, denied)
        assert (error.status, error.text) == (200, "<p>no</p>")
        await server.wait()


def test_cb08_built_in_pages_are_static_and_self_contained():
    for name in ("success", "error", "invalid", "used", "not_found"):
        page = getattr(Pages(), name).lower()
        # The one inline style is PAGE_STYLE's element, which the CSP allows by its hash.
        style = f"<style>{callback_server.PAGE_STYLE.lower()}</style>"
        assert page.count("<style") == 1 and style in page, name
        page = page.replace(style, "")
        for banned in ("<script", "<link", "<style", "style=", "href", "src=", "http", "{{", "{%"):
            assert banned not in page, (name, banned)
        assert "<title>" in page and "terminal" in page


# --- LU-01: the one-time link (issue 11 case 1) -------------------------------------------------

AUTHORIZE = "https://as.example/authorize?client_id=kt&state=" + STATE


def link_target(link: str) -> str:
    parts = urlsplit(link)
    assert parts.scheme == "http" and not parts.query and not parts.fragment
    return parts.path


async def test_lu01_the_link_redirects_once_with_the_listener_headers(srv):
    link = srv.one_time_link(AUTHORIZE)
    assert urlsplit(link).netloc == urlsplit(srv.redirect_uri).netloc
    assert STATE not in link and len(link_target(link)) == 1 + 43  # 256 bits, base64url
    first = await request(srv, link_target(link))
    assert first.status == 302 and first.headers["location"] == AUTHORIZE
    assert SECURITY_HEADERS.items() <= first.headers.items()
    await finish(srv)  # the callback is as before


async def test_lu01_a_second_fetch_gets_the_used_page_and_ends_the_wait(srv):
    link = link_target(srv.one_time_link(AUTHORIZE))
    assert (await request(srv, link)).status == 302
    second = await request(srv, link)
    assert second.status == 410 and "already used" in second.text
    assert "location" not in second.headers and STATE not in second.text
    assert SECURITY_HEADERS.items() <= second.headers.items()
    with pytest.raises(LinkReused) as caught:
        await srv.wait()
    assert "\n" not in str(caught.value)
    assert refused(port_of(srv))
    assert not tasks_left()


async def test_lu01_no_callback_counts_once_the_link_was_reused(srv):
    link = link_target(srv.one_time_link(AUTHORIZE))
    await request(srv, link)
    await request(srv, link)
    assert (await request(srv, callback("late"))).status == 400
    with pytest.raises(LinkReused):
        await srv.wait()


async def test_lu01_a_fetch_after_the_callback_leaves_the_result(srv):
    link = link_target(srv.one_time_link(AUTHORIZE))
    await request(srv, link)
    assert (await request(srv, callback("good"))).status == 200
    assert (await request(srv, link)).status == 410
    assert (await srv.wait()).code == "good"


async def test_the_link_can_renew_its_target_when_followed(srv):
    """A pushed authorization request (RFC 9126) expired by the time the link is followed is
    pushed again: `renew` runs once, off the event loop, and the 302 goes where it says."""
    calls: list[str] = []

    def renew() -> str:
        calls.append("renew")
        return AUTHORIZE + "&renewed=1"

    link = link_target(srv.one_time_link(AUTHORIZE, renew=renew))
    assert calls == []  # not before the link is followed
    first = await request(srv, link)
    assert (first.status, first.headers["location"]) == (302, AUTHORIZE + "&renewed=1")
    assert calls == ["renew"]
    assert (await request(srv, link)).status == 410  # still one use
    with pytest.raises(LinkReused):
        await srv.wait()
    assert calls == ["renew"]


@pytest.mark.parametrize(
    "failure", [RuntimeError("the provider refused the push"), "two\nlines"], ids=["raises", "bad"]
)
async def test_a_renewal_that_fails_ends_the_wait_with_its_error(srv, failure):
    def renew() -> str:
        if isinstance(failure, Exception):
            raise failure
        return failure

    link = link_target(srv.one_time_link(AUTHORIZE, renew=renew))
    reply = await request(srv, link)
    assert reply.status == 502 and "location" not in reply.headers
    assert "Sign-in not completed" in reply.text and STATE not in reply.text
    assert SECURITY_HEADERS.items() <= reply.headers.items()
    with pytest.raises(RuntimeError if isinstance(failure, Exception) else ValueError):
        await srv.wait()
    assert refused(port_of(srv))


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("POST", "LINK", 405),
        ("HEAD", "LINK", 405),
        ("GET", "LINK/", 404),
        ("GET", "LINKx", 404),
        ("GET", "/", 404),
    ],
)
async def test_lu01_only_a_get_on_the_exact_link_uses_it(srv, method, target, status):
    link = link_target(srv.one_time_link(AUTHORIZE))
    assert (await request(srv, target.replace("LINK", link), method=method)).status == status
    assert (await request(srv, link)).status == 302  # still the first use
    await finish(srv)


async def test_lu01_a_foreign_host_does_not_use_the_link(srv):
    link = link_target(srv.one_time_link(AUTHORIZE))
    assert (await request(srv, link, host=f"attacker.example:{port_of(srv)}")).status == 421
    assert (await request(srv, link)).status == 302


async def test_lu01_one_link_per_server_and_only_once_started(srv):
    with pytest.raises(RuntimeError):
        CallbackServer(state=STATE).one_time_link(AUTHORIZE)
    with pytest.raises(ValueError):
        srv.one_time_link(AUTHORIZE + "\r\nSet-Cookie: x=1")
    srv.one_time_link(AUTHORIZE)
    with pytest.raises(RuntimeError):
        srv.one_time_link(AUTHORIZE)


async def test_lu01_pages_of_ones_own_include_the_used_page():
    pages = Pages(used="<p>used</p>")
    async with CallbackServer(state=STATE, pages=pages) as server:
        link = link_target(server.one_time_link(AUTHORIZE))
        await request(server, link)
        assert (await request(server, link)).text == "<p>used</p>"
        with pytest.raises(LinkReused):
            await server.wait()


def test_lu01_receive_builds_the_request_for_the_redirect_uri_and_shows_the_link():
    built: list[str] = []
    shown: list[str] = []
    redirected: list[str] = []

    def authorization_url(redirect_uri: str) -> str:
        built.append(redirect_uri)
        return f"https://as.example/authorize?redirect_uri={quote(redirect_uri)}"

    def on_ready(link: str) -> None:
        shown.append(link)

        def browser() -> None:
            redirected.append(
                send_blocking(urlsplit(link).port or 0, get_bytes(link)).headers["location"]
            )
            urllib.request.urlopen(callback_url(built[0]), timeout=5).read()

        threading.Thread(target=browser).start()

    result = receive(STATE, authorization_url=authorization_url, on_ready=on_ready, timeout=10)
    assert result.code == "abc"
    assert redirected == [f"https://as.example/authorize?redirect_uri={quote(built[0])}"]
    (link,) = shown
    assert urlsplit(link).netloc == urlsplit(built[0]).netloc and STATE not in link


def get_bytes(url: str) -> bytes:
    parts = urlsplit(url)
    return (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
    )


def callback_url(redirect_uri: str) -> str:
    return f"{redirect_uri}?{urlencode({'code': 'abc', 'state': STATE})}"


# --- CB-09: nothing about requests reaches the logs --------------------------------------------


async def test_cb09_no_code_or_state_in_debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    asyncio.get_running_loop().set_debug(True)
    code, state = "CANARYc0de7f3a", "CANARYst4te9b1e"
    async with CallbackServer(state=state) as server:
        host = urlsplit(server.redirect_uri).netloc
        port = port_of(server)
        await request(server, callback(code, "wrong-" + state))
        await request(server, callback(code, state), method="POST")
        await send_raw(
            port, f"G\x01T /callback?code={code} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        )
        big = f"GET /callback?code={code}&state={state}&pad={'x' * 9000} HTTP/1.1\r\n\r\n"
        await send_raw(port, big.encode())
        assert (await request(server, callback(code, state))).status == 200
        assert (await server.wait()).code == code
    logged = caplog.text + "".join(
        logging.Formatter().formatException(r.exc_info) for r in caplog.records if r.exc_info
    )
    assert caplog.records  # the probe works: something was logged at DEBUG
    assert "CANARY" not in logged
    http_records = [r for r in caplog.records if r.name == "callback_server.http"]
    assert http_records and all(r.levelno == logging.DEBUG for r in http_records)


# --- CB-10: limits -----------------------------------------------------------------------------


def send_blocking(port: int, data: bytes) -> Reply:
    # A plain socket: asyncio's reader drops the buffered reply once the reset arrives.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may answer and close before reading everything
        return Reply(sock.recv(65536))


@pytest.mark.parametrize("where", ["query", "body"])
async def test_cb10_one_megabyte_request_is_rejected(srv, where):
    host = urlsplit(srv.redirect_uri).netloc
    pad = "x" * 1_000_000
    if where == "query":
        head = f"GET {callback('bad')}&pad={pad} HTTP/1.1\r\nHost: {host}\r\n\r\n"
        data = head.encode()
    else:
        head = f"POST {callback('bad')} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(pad)}"
        data = f"{head}\r\nConnection: close\r\n\r\n{pad}".encode()
    reply = await asyncio.to_thread(send_blocking, port_of(srv), data)
    assert 400 <= reply.status < 500
    assert SECURITY_HEADERS.items() <= reply.headers.items()
    await finish(srv)


async def test_cb10_completes_while_many_idle_sockets_are_open(srv):
    port = port_of(srv)
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(50)]
    for _, writer in idle[::2]:
        writer.write(b"GET /callback?code=slow")  # a request that never ends
    try:
        async with asyncio.timeout(2):
            await finish(srv)
    finally:
        for _, writer in idle:
            writer.close()
    assert refused(port)


# --- EH-05: fuzzing the query handling ---------------------------------------------------------

KEYS = st.sampled_from(["code", "state", "iss", "error", "error_description", "x", "", "state "])
VALUES = st.one_of(st.just(STATE), st.text(max_size=20), st.just(STATE + "\x00"))
RAW = st.text(alphabet=st.characters(codec="ascii"), max_size=60)


@st.composite
def queries(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(KEYS, VALUES), max_size=4))
    if draw(st.booleans()):  # start from a valid response half the time, then disturb it
        answer = draw(st.sampled_from(["code", "error"]))
        pairs = draw(st.permutations([("state", STATE), (answer, "v"), *pairs]))
    parts = [urlencode(pairs)] if pairs else []
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), draw(RAW))
    return "&".join(parts)


def valid_for(raw_query: str) -> bool:
    from urllib.parse import parse_qsl

    pairs = parse_qsl(raw_query, keep_blank_values=True)
    states = [v for k, v in pairs if k == "state"]
    return states == [STATE]


@settings(max_examples=500, deadline=None)
@given(queries())
def test_eh05_judge_never_crashes_or_accepts_without_the_state(raw_query):
    result = judge(raw_query, STATE)
    if result is not None:
        assert result.state == STATE and valid_for(raw_query)
        assert (result.code is None) != (result.error is None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries())
async def test_eh05_server_answers_random_queries_without_completing_wrongly(raw_query):
    async with CallbackServer(state=STATE, timeout=5) as server:
        sent = quote(raw_query, safe="&=%+;/?:@,$!*'()~")
        reply = await request(server, "/callback?" + sent)
        assert reply.status in (200, 400)
        if reply.status == 200:
            assert (await server.wait()).state == STATE and valid_for(sent)
        else:
            await finish(server)


# --- AZ-10: a pasted redirect URL is judged like the live one ----------------------------------


def test_az10_pasted_url_accepted_only_when_exactly_right():
    uri = "http://127.0.0.1:51234/callback"
    good = f"{uri}?code=abc&state={STATE}"
    assert parse_redirect(f"  {good}\n", redirect_uri=uri, state=STATE).code == "abc"
    for bad in (
        f"{uri}?code=abc&state=wrong",
        f"{uri}?code=abc&code=def&state={STATE}",
        f"http://127.0.0.1:51235/callback?code=abc&state={STATE}",
        f"http://localhost:51234/callback?code=abc&state={STATE}",
        f"https://127.0.0.1:51234/callback?code=abc&state={STATE}",
        f"http://127.0.0.1:51234/callback/x?code=abc&state={STATE}",
        f"http://127.0.0.1:51234@evil.example/callback?code=abc&state={STATE}",
        "http://[::1/callback",
        "",
    ):
        with pytest.raises(CallbackError) as caught:
            parse_redirect(bad, redirect_uri=uri, state=STATE)
        assert "abc" not in str(caught.value) and STATE not in str(caught.value)
