"""The loopback listener (RFC 8252 §7.3, §8.3); aiohttp is imported when it starts."""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import secrets
import socket
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._pages import CONTENT_SECURITY_POLICY, DEFAULT_PAGES, Pages
from ._result import (
    CallbackError,
    CallbackResult,
    CallbackTimeout,
    LinkReused,
    PortInUse,
    judge,
    parse_pasted,
)

if TYPE_CHECKING:
    from aiohttp import web

_log = logging.getLogger("callback_server")
# aiohttp's own messages go here: a filter strips the request bytes quoted by parse errors (CB-09).
_http_log = logging.getLogger("callback_server.http")

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_MAX_LINE = 8190  # request line and each header; authorization codes fit easily
_MAX_HEADERS = 64
_SHUTDOWN_TIMEOUT = 2.0
# The hosts a redirect_uri may name. `localhost` is never bound as a name (it could resolve to
# another interface, RFC 8252 §8.3): it means both loopback literals, on one port.
LOCALHOST = "localhost"
REDIRECT_HOSTS = ("127.0.0.1", "::1", LOCALHOST)
# Attempts at an OS-chosen port free on both 127.0.0.1 and ::1 (for `localhost`).
_DUAL_STACK_TRIES = 8


class _WithholdRequestBytes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            from aiohttp.http_exceptions import HttpProcessingError

            exc = record.exc_info[1]
            record.msg, record.args = "%s (%s; details withheld)", (record.msg, type(exc).__name__)
            record.exc_info = record.exc_text = record.stack_info = None
            if isinstance(exc, HttpProcessingError):
                # A malformed request is the client's problem, not an error of this program.
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_http_log.addFilter(_WithholdRequestBytes())


class CallbackServer:
    """Listens on 127.0.0.1 (or ::1) for one authorization response carrying `state`.

    `host` is what the redirect_uri names: "127.0.0.1" (the default; ::1 when IPv4 loopback is
    unavailable), "::1" (only ::1), or "localhost" (the same port on 127.0.0.1 and on ::1, or
    127.0.0.1 alone where there is no IPv6 loopback). `timeout` bounds `wait()`. To abort a
    wait, cancel the task running it; the listener closes.
    `pages` are the HTML answers to the browser (see `Pages`). `one_time_link()` adds a start
    address that redirects to the authorization request once.
    """

    def __init__(
        self,
        *,
        state: str,
        path: str = "/callback",
        port: int = 0,
        timeout: float = 300.0,
        pages: Pages = DEFAULT_PAGES,
        host: str = "127.0.0.1",
    ) -> None:
        if not state:
            raise ValueError("state must not be empty")
        if not path.startswith("/") or "?" in path or "#" in path:
            raise ValueError("path must start with '/' and carry no query or fragment")
        if not 0 <= port <= 65535:
            raise ValueError("port must be between 0 and 65535")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if host not in REDIRECT_HOSTS:
            raise ValueError(f"host must be one of {', '.join(REDIRECT_HOSTS)}")
        self._state, self._path, self._port, self._timeout = state, path, port, timeout
        self._host = host
        self._runner: web.BaseRunner | None = None
        self._redirect_uri: str | None = None
        self._host_header = ""
        self._pages = {
            "success": pages.success.encode(),
            "error": pages.error.encode(),
            "invalid": pages.invalid.encode(),
            "used": pages.used.encode(),
            "not_found": pages.not_found.encode(),
        }
        self._done: asyncio.Future[CallbackResult] | None = None
        self._claimed = False
        self._link_path: str | None = None
        self._link_target = ""
        self._link_renew: Callable[[], str] | None = None
        self._link_fetched = False

    @property
    def redirect_uri(self) -> str:
        if self._redirect_uri is None:
            raise RuntimeError("the callback server has not been started")
        return self._redirect_uri

    async def start(self) -> str:
        """Bind and start accepting connections; returns the redirect_uri to send to the AS."""
        if self._done is not None:
            raise RuntimeError("a CallbackServer can be started only once")
        from aiohttp import web

        socks, host = _listen(self._host, self._port)
        try:
            port = socks[0].getsockname()[1]
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            server = _server_class()(
                self._handle,
                access_log=None,
                logger=_http_log,
                max_line_size=_MAX_LINE,
                max_field_size=_MAX_LINE,
                max_headers=_MAX_HEADERS,
                keepalive_timeout=5.0,
            )
            runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_TIMEOUT)
            await runner.setup()
        except BaseException:
            for sock in socks:
                sock.close()
            raise
        self._runner = runner
        self._host_header = authority
        self._redirect_uri = f"http://{authority}{self._path}"
        self._done = asyncio.get_running_loop().create_future()
        try:
            for sock in socks:  # one site per address family, the same handler and Host pin
                await web.SockSite(runner, sock).start()
        except BaseException:
            await self.close()
            raise
        return self._redirect_uri

    def one_time_link(self, target: str, *, renew: Callable[[], str] | None = None) -> str:
        """A loopback URL, `http://127.0.0.1:PORT/<random path>` (the redirect_uri's host), to
        open instead of `target`.

        The first GET on it is answered with a 302 to `target` (the authorization request); any
        later GET gets the `used` page and makes `wait()` raise `LinkReused`, unless a valid
        callback was already taken. The path is 256 random bits, so a launcher's command line
        shows only an address that stops working once the browser has fetched it.

        `renew`, if given, is called (in a worker thread) when the link is first followed, and
        the 302 goes to what it returns: a pushed authorization request (RFC 9126) made again
        when the first has expired by then. If it raises, the browser gets the `error` page and
        `wait()` raises what it raised.
        """
        if self._done is None:
            raise RuntimeError("call start() before one_time_link()")
        if self._link_path is not None:
            raise RuntimeError("a CallbackServer has only one one-time link")
        _check_target(target)
        self._link_path = "/" + secrets.token_urlsafe(32)
        self._link_target = target
        self._link_renew = renew
        return f"http://{self._host_header}{self._link_path}"

    async def wait(self) -> CallbackResult:
        """The first valid callback. The listener is closed before this returns or raises."""
        if self._done is None:
            raise RuntimeError("call start() before wait()")
        try:
            if self._runner is None and not self._done.done():
                raise CallbackError("the callback listener is closed")
            async with asyncio.timeout(self._timeout):
                # Shielded: a cancelled wait leaves the slot as it was, not cancelled.
                return await asyncio.shield(self._done)
        except TimeoutError:
            raise CallbackTimeout(
                f"no sign-in response arrived within {self._timeout:g} s"
            ) from None
        finally:
            await self.close()

    def offer_pasted(self, text: str) -> str | None:
        """An answer a person pasted (the browser was on another machine), judged exactly like a
        callback (`pasted_query`, then the same state check): it completes the wait, and no
        callback can any more, unless a result was taken first. None when it was taken, else
        why not (a fixed line that never quotes the paste); the wait goes on then. Call it on
        the server's event loop."""
        if self._done is None:
            raise RuntimeError("call start() before offer_pasted()")
        if self._claimed:
            return "this sign-in already has its answer; a second one is never taken"
        try:
            result = parse_pasted(text, redirect_uri=self.redirect_uri, state=self._state)
        except CallbackError as exc:
            return str(exc)
        self._claimed = True
        self._done.set_result(result)
        return None

    async def close(self) -> None:
        """Stop listening and drop open connections. Safe to call more than once."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> CallbackServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        # Pinning Host defeats DNS rebinding (CB-06); checked before anything else is looked at.
        if request.headers.getall("Host", []) != [self._host_header]:
            return _plain(421, "Misdirected request.")
        link = self._link_path
        if link is not None and hmac.compare_digest(
            request.rel_url.raw_path.encode(), link.encode()
        ):
            return await self._follow_link(request)
        if request.rel_url.raw_path != self._path:
            return self._page(404, "not_found")
        if request.method != "GET":
            response = _plain(405, "Method not allowed.")
            response.headers["Allow"] = "GET"
            return response
        mode = request.headers.get("Sec-Fetch-Mode")
        if mode is not None and mode != "navigate":
            return _plain(403, "Forbidden.")
        result = None if self._claimed else judge(request.rel_url.raw_query_string, self._state)
        if result is None:
            _log.debug("callback rejected: not a valid response for the pending sign-in")
            return self._page(400, "invalid")
        self._claimed = True  # no await since the check above: one result only
        response = self._page(200, "success" if result.error is None else "error")
        response.force_close()
        try:
            # Sent before the result is handed over, so that closing the listener cannot cut it off.
            await response.prepare(request)
            await response.write_eof()
        finally:
            assert self._done is not None
            self._done.set_result(result)
        return response

    async def _follow_link(self, request: web.BaseRequest) -> web.StreamResponse:
        from aiohttp import web

        if request.method != "GET":
            response = _plain(405, "Method not allowed.")
            response.headers["Allow"] = "GET"
            return response
        if not self._link_fetched:
            self._link_fetched = True
            target = self._link_target
            if self._link_renew is not None:
                try:
                    target = _check_target(
                        await asyncio.get_running_loop().run_in_executor(None, self._link_renew)
                    )
                except Exception as exc:  # noqa: BLE001 - the wait ends with it
                    return self._end_with(exc)
            return web.Response(status=302, headers={**SECURITY_HEADERS, "Location": target})
        _log.debug("the one-time sign-in link was fetched again")
        response = self._page(410, "used")
        if self._claimed:
            return response  # a valid callback came first: the wait has its result
        self._claimed = True  # no callback can complete the wait any more
        response.force_close()
        try:
            # Sent before the wait ends, so that closing the listener cannot cut it off.
            await response.prepare(request)
            await response.write_eof()
        finally:
            assert self._done is not None
            self._done.set_exception(
                LinkReused("the one-time sign-in link was opened more than once")
            )
        return response

    def _end_with(self, exc: Exception) -> web.Response:
        """The `error` page; the wait ends with `exc`, unless a callback came first."""
        assert self._done is not None
        if not self._claimed and not self._done.done():
            self._claimed = True
            self._done.set_exception(exc)
        return self._page(502, "error")

    def _page(self, status: int, name: str) -> web.Response:
        from aiohttp import web

        return web.Response(
            status=status,
            body=self._pages[name],
            content_type="text/html",
            charset="utf-8",
            headers=SECURITY_HEADERS,
        )


def receive(
    state: str,
    *,
    on_ready: Callable[[str], None],
    port: int = 0,
    path: str = "/callback",
    timeout: float = 300.0,
    pages: Pages = DEFAULT_PAGES,
    authorization_url: Callable[[str], str] | None = None,
    accept_pasted: Callable[[Callable[[str], str | None]], Callable[[], None]] | None = None,
    host: str = "127.0.0.1",
    renew: Callable[[], str] | None = None,
) -> CallbackResult:
    """Receive one callback in a fresh event loop; see the package docstring.

    Without `authorization_url`, `on_ready` gets the redirect_uri. With it, `authorization_url`
    gets the redirect_uri and returns the authorization request's URL, and `on_ready` gets the
    one-time link to it (`CallbackServer.one_time_link`, with `renew`) to open or show instead.

    `accept_pasted(offer)`, called on the loop after `on_ready`, starts taking pasted answers
    (a prompt) and returns what stops it; `offer` is `CallbackServer.offer_pasted`. The first
    answer wins, pasted or called back; the stop runs before `receive` returns or raises."""

    async def run() -> CallbackResult:
        server = CallbackServer(
            state=state, path=path, port=port, timeout=timeout, pages=pages, host=host
        )
        async with server:
            if authorization_url is None:
                on_ready(server.redirect_uri)
            else:
                target = authorization_url(server.redirect_uri)
                on_ready(server.one_time_link(target, renew=renew))
            if accept_pasted is None:
                return await server.wait()
            stop = accept_pasted(server.offer_pasted)
            try:
                return await server.wait()
            finally:
                stop()

    return asyncio.run(run())


def _check_target(target: str) -> str:
    if not target or any(c in target for c in "\r\n\0"):
        raise ValueError("the link's target must be one line")
    return target


def _plain(status: int, text: str) -> web.Response:
    from aiohttp import web

    return web.Response(status=status, text=text + "\n", headers=SECURITY_HEADERS)


def _listen(host: str, port: int) -> tuple[list[socket.socket], str]:
    """The listening sockets for a redirect_uri naming `host`, and the host it names."""
    if host == LOCALHOST:
        return _listen_dual_stack(port), LOCALHOST
    if host == "::1":
        return [_listen_or_fail(socket.AF_INET6, "::1", port)], "::1"
    try:
        return [_listen_on(socket.AF_INET, "127.0.0.1", port)], "127.0.0.1"
    except OSError as exc:
        if exc.errno not in _NO_SUCH_ADDRESS:
            raise _bind_error(exc, "127.0.0.1", port) from None
    return [_listen_or_fail(socket.AF_INET6, "::1", port)], "::1"


_NO_SUCH_ADDRESS = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)


def _listen_dual_stack(port: int) -> list[socket.socket]:
    """`localhost`: one port on 127.0.0.1 and on ::1, as browsers and port forwarders resolve
    the name either way; 127.0.0.1 alone where this machine has no IPv6 loopback. An OS-chosen
    port is taken on 127.0.0.1 first; if ::1 has it taken, another one is tried."""
    for _ in range(_DUAL_STACK_TRIES):
        v4 = _listen_or_fail(socket.AF_INET, "127.0.0.1", port)
        chosen = v4.getsockname()[1]
        try:
            return [v4, _listen_on(socket.AF_INET6, "::1", chosen, fixed=port != 0)]
        except OSError as exc:
            if exc.errno in _NO_SUCH_ADDRESS:
                _log.debug("no IPv6 loopback (::1) here: localhost is served on 127.0.0.1 only")
                return [v4]
            v4.close()
            if port != 0 or exc.errno != errno.EADDRINUSE:
                raise _bind_error(exc, "::1", chosen) from None
    raise CallbackError("cannot find a port free on both 127.0.0.1 and ::1; try again")


def _listen_or_fail(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    try:
        return _listen_on(family, host, port)
    except OSError as exc:
        if exc.errno in _NO_SUCH_ADDRESS:
            raise CallbackError(
                f"cannot listen on {host}: this machine has no {_FAMILY_NAME[family]} loopback"
            ) from None
        raise _bind_error(exc, host, port) from None


_FAMILY_NAME = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}


def _listen_on(
    family: socket.AddressFamily, host: str, port: int, *, fixed: bool | None = None
) -> socket.socket:
    """`fixed`: whether the port was asked for (default: `port` is not 0); the ::1 half of an
    OS-chosen `localhost` port is bound to a number but was not asked for."""
    # Our own socket rather than TCPSite, which sets SO_REUSEADDR on every socket and can bind
    # every interface. An OS-chosen port never needs SO_REUSEADDR (RFC 8252 B.5: SHOULD NOT).
    # A fixed port does on Linux and macOS: the last sign-in's connections linger in TIME-WAIT
    # for a minute and would refuse the bind although nothing listens. There SO_REUSEADDR still
    # refuses a second live listener on the same address (without SO_REUSEPORT, never set). On
    # Windows it would let another socket take the port, so Windows has SO_EXCLUSIVEADDRUSE.
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if sys.platform == "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        elif port != 0 if fixed is None else fixed:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_error(exc: OSError, host: str, port: int) -> CallbackError:
    if exc.errno == errno.EADDRINUSE:
        return PortInUse(
            f"port {port} on {host} is already in use; pick another or use 0", host=host, port=port
        )
    if exc.errno == errno.EACCES:
        return CallbackError(f"not allowed to listen on port {port} on {host}; try port 0")
    return CallbackError(f"cannot listen on {host} port {port}: {exc.strerror or exc}")


def _server_class() -> type[web.Server]:
    from aiohttp import web

    class Handler(web.RequestHandler):
        def handle_error(
            self,
            request: web.BaseRequest,
            status: int = 500,
            exc: BaseException | None = None,
            message: str | None = None,
        ) -> web.StreamResponse:
            # aiohttp's own error pages quote the request bytes; send an empty body instead.
            response = super().handle_error(request, status, exc, None)
            response.headers.update(SECURITY_HEADERS)
            return response

    class Server(web.Server):
        def __init__(self, handler: Any, **kwargs: Any) -> None:
            super().__init__(handler, **kwargs)
            self._handler_kwargs = kwargs

        def __call__(self) -> web.RequestHandler:
            return Handler(self, loop=asyncio.get_running_loop(), **self._handler_kwargs)

    return Server
