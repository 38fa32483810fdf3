"""DNS-rebinding defence: answer only requests whose `Host` names an address the server is at.

A page on `attacker.example` whose name a rebinding DNS server points at 127.0.0.1 reaches this
server from the victim's browser, but its requests carry `Host: attacker.example`. Allowed are the
address the connection arrived at with the port (`127.0.0.1:8765`, `[::1]:8765`), `localhost`
with that port, and the host of `--public-url`; anything else, or no `Host`, gets 421.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from kt_devserver.errors import ApiError
from kt_devserver.state import state_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_public_url(url: str) -> str:
    """`url` without a trailing slash, if it is a plain `http(s)://host[:port]`; else ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry user info")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be scheme://host[:port] only, without path, query or fragment")
    parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    return f"{parts.scheme}://{parts.netloc}"


def public_hosts(public_url: str) -> frozenset[str]:
    """The `Host` values that name `public_url` (with and without its scheme's default port)."""
    parts = urlsplit(public_url)
    netloc = parts.netloc.lower()
    default = _DEFAULT_PORTS[parts.scheme]
    host = netloc.rsplit(":", 1)[0] if parts.port is not None else netloc
    if parts.port in (None, default):
        return frozenset({host, f"{host}:{default}"})
    return frozenset({netloc})


def _local_hosts(request: web.Request) -> frozenset[str]:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return frozenset()
    address, port = str(sockname[0]), int(sockname[1])
    literal = f"[{address}]" if ":" in address else address
    return frozenset({f"{literal}:{port}".lower(), f"localhost:{port}"})


def misdirected() -> ApiError:
    return ApiError(
        421,
        "auth.misdirected_request",
        "This server does not answer to that host name; use the address it listens on "
        "(or the one given with --public-url).",
    )


@web.middleware
async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    host = request.headers.get("Host", "").strip().lower()
    public_url = state_of(request).settings.public_url
    allowed = _local_hosts(request)
    if public_url is not None:
        allowed |= public_hosts(public_url)
    if host not in allowed:
        raise misdirected()
    return await handler(request)
