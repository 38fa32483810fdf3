"""What every HTTP exchange shares: the size cap of each kind of reply, the one strict reading of a
server's JSON and of the durations in it, and the one translation of an httpx2 transport failure
into a NetworkError that names the reason and the server.

The flows' drivers and the API client both use it, so a refused connection reads the same
whichever part of kt made the request.
"""

from __future__ import annotations

import json
import math
import os
import socket
import ssl
from types import MappingProxyType
from typing import Any, Final, Literal

import httpx2

from ..errors import NetworkError, ServerError
from ..text import clean

_KIB = 1024
_MIB = 1024 * _KIB

Document = Literal["metadata", "jwks", "token", "userinfo", "api"]

# The largest reply kt accepts for each kind of document (SECURITY.md NT-05). A reply is read in
# chunks and abandoned past the largest of them, never held whole; each parser then holds its
# document to its own cap.
MAX_BYTES: Final = MappingProxyType[Document, int](
    {
        "metadata": 256 * _KIB,  # RFC 8414 / OpenID provider metadata
        "jwks": 256 * _KIB,  # a provider's key set
        "token": 1 * _MIB,  # token endpoint and device authorization replies
        "userinfo": 1 * _MIB,
        "api": 1 * _MIB,  # the Keeptrusts API
    }
)
MAX_REPLY: Final = max(MAX_BYTES.values())

# The longest lifetime kt believes a server means for a token or session (ten years).
MAX_LIFETIME: Final = 10 * 365 * 86400.0

# What to do next, by the reason an exchange failed (network_error).
TIMEOUT_HINT = "check your network, or the server's status, and try again"
CONNECT_HINT = "check your network and the server's address"
_HINTS: Final = MappingProxyType(
    {
        "connection refused": "is the server running, and is the address (host and port) right?",
        "timed out": TIMEOUT_HINT,
        "name not found": "check the host name in the URL, and your network's DNS",
        "TLS handshake failed": "check the URL: is the server at that address an https one?",
        "connection closed": "the server ended the connection; try again",
        "TLS certificate not trusted": "check that the URL is right and that the server's "
        "certificate is valid for it",
    }
)
_TLS_UNTRUSTED = "TLS certificate not trusted"


def where(url: httpx2.URL) -> str:
    """The server a request went to, as people read it: scheme://host[:port]."""
    return f"{url.scheme}://{url.netloc.decode()}"


def provider_at(url: httpx2.URL) -> str:
    """How a flow's network error names its server (every flow talks to an identity provider)."""
    return f"the identity provider at {where(url)}"


def network_error(
    exc: httpx2.TransportError, server: str, *, hint: str | None = None
) -> NetworkError:
    """The one wording of a failed exchange with `server` (a URL, or "the … at URL"), on every
    path (the API client, every flow, sync or async): `cannot reach SERVER (REASON)`, the reason
    in words (connection refused, timed out, name not found, TLS certificate not trusted: …),
    never an exception's class name; the hint says what to do about that reason unless the
    caller knows better."""
    reason = _reason(exc)
    if hint is None:
        key = _TLS_UNTRUSTED if reason.startswith(_TLS_UNTRUSTED) else reason
        hint = _HINTS.get(key, CONNECT_HINT)
    return NetworkError(f"cannot reach {server} ({reason})", hint=hint)


def _causes(exc: BaseException) -> list[BaseException]:
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 8:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    return causes


def _reason(exc: httpx2.TransportError) -> str:
    """Why an exchange failed, in words; the async transport wraps the OS error ("All connection
    attempts failed"), so the chain of causes is read too."""
    if isinstance(exc, httpx2.TimeoutException):
        return "timed out"
    causes = _causes(exc)
    text = " ".join(str(c) for c in causes).lower()
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = clean(cause.verify_message or "").strip().rstrip(".")
            return f"{_TLS_UNTRUSTED}: {detail[:80]}" if detail else _TLS_UNTRUSTED
    if "certificate verify failed" in text:
        return _TLS_UNTRUSTED
    if any(isinstance(c, ssl.SSLError) for c in causes) or "ssl" in text or "tls" in text:
        return "TLS handshake failed"
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
        return "connection refused"
    if any(isinstance(c, socket.gaierror) for c in causes) or (
        "name or service" in text or "nodename" in text or "getaddrinfo" in text
    ):
        return "name not found"
    if any(isinstance(c, ConnectionResetError | BrokenPipeError) for c in causes):
        return "connection closed"
    if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError | httpx2.WriteError):
        return "connection closed"
    if isinstance(exc, httpx2.ProxyError):
        return "the proxy failed"
    if any(isinstance(c, OSError) and c.errno is not None for c in causes):
        errno_error = next(c for c in causes if isinstance(c, OSError) and c.errno is not None)
        return clean(os.strerror(errno_error.errno or 0)).lower() or "network error"
    return "network error"


def too_large(server: str) -> ServerError:
    return ServerError(f"{server} sent a reply that is too large")


def undecodable(server: str) -> ServerError:
    """A body whose Content-Encoding does not decode (a broken or hostile server)."""
    return ServerError(f"{server} sent a reply that cannot be decoded")


class _Gathered:
    """A reply's body, gathered chunk by chunk and abandoned past MAX_REPLY (NT-05)."""

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > MAX_REPLY:
            raise too_large(where(self._response.request.url))
        self._chunks.append(chunk)

    def keep(self) -> bytes:
        # As httpx2's own read() does, so `content`, `json()` and a later read see the body.
        self._response._content = body = b"".join(self._chunks)
        return body


def read_reply(response: httpx2.Response) -> bytes:
    """The decoded body of a streamed reply, read chunk by chunk and abandoned past MAX_REPLY:
    the one way kt reads a reply (the flows' drivers, the API client, the refresh-on-401). Never
    held whole before the cap, so a huge or endless reply costs at most MAX_REPLY of memory."""
    body = _Gathered(response)
    for chunk in response.iter_bytes():
        body.add(chunk)
    return body.keep()


async def aread_reply(response: httpx2.Response) -> bytes:
    """`read_reply` for a reply an `httpx2.AsyncClient` streamed."""
    body = _Gathered(response)
    async for chunk in response.aiter_bytes():
        body.add(chunk)
    return body.keep()


def check_size(body: bytes, document: Document, what: str) -> bytes:
    """`body` unchanged, or ServerError when it is larger than a `document` may be."""
    if len(body) > MAX_BYTES[document]:
        raise ServerError(f"the {what} is too large")
    return body


def json_document(body: bytes | str) -> Any:
    """A server's JSON, read strictly (SECURITY.md NU-01): `NaN`, `Infinity` and numbers too large
    for a float are not JSON (RFC 8259 §6), and nesting too deep to read is refused too. Anything
    else than a JSON text raises ValueError, so each reader has one failure to map."""
    try:
        return json.loads(body, parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _not_a_number(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def seconds(value: object, what: str, *, most: float) -> float | None:
    """A duration a server sent (an interval or lifetime, NU-01): None when absent or not a
    positive number (unknown, as ID-08 tolerates); ServerError when it is a number beyond `most`,
    which no sane server means and which would overflow the clock arithmetic after it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    if value > most:
        text = str(value)
        shown = text if len(text) <= 15 else text[:12] + "…"
        raise ServerError(f"the {what} is out of range ({shown} s; at most {most:g} s)")
    return float(value)
