"""What every HTTP exchange shares: the size cap of each kind of reply, and the one translation of
an httpx2 transport failure into a NetworkError that names the reason and the server.

The flows' drivers and the API client both use it, so a refused connection reads the same
whichever part of kt made the request.
"""

from __future__ import annotations

import socket
import ssl
from types import MappingProxyType
from typing import Final, Literal

import httpx2

from ..errors import NetworkError, ServerError

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

TIMEOUT_HINT = "check your network, or the server's status, and try again"
CONNECT_HINT = "check your network and the server's address"


def where(url: httpx2.URL) -> str:
    """The server a request went to, as people read it: scheme://host[:port]."""
    return f"{url.scheme}://{url.netloc.decode()}"


def network_error(
    exc: httpx2.TransportError, server: str, *, hint: str = CONNECT_HINT
) -> NetworkError:
    """The NetworkError for a failed exchange with `server` (a URL or "the … at URL")."""
    if isinstance(exc, httpx2.TimeoutException):
        return NetworkError(f"{server} did not answer in time", hint=TIMEOUT_HINT)
    return NetworkError(f"cannot reach {server} ({_reason(exc)})", hint=hint)


def _reason(exc: httpx2.TransportError) -> str:
    if not isinstance(exc, httpx2.ConnectError):
        return type(exc).__name__
    # The async transport wraps the OS error ("All connection attempts failed"): read the chain.
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 8:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(c) for c in causes).lower()
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
        return "connection refused"
    if any(isinstance(c, socket.gaierror) for c in causes) or (
        "name or service" in text or "nodename" in text or "getaddrinfo" in text
    ):
        return "host not found"
    if any(isinstance(c, ssl.SSLError) for c in causes) or "certificate" in text or "ssl" in text:
        return "TLS verification failed"
    return "cannot connect"


def too_large(server: str) -> ServerError:
    return ServerError(f"{server} sent a reply that is too large")


def undecodable(server: str) -> ServerError:
    """A body whose Content-Encoding does not decode (a broken or hostile server)."""
    return ServerError(f"{server} sent a reply that cannot be decoded")


def check_size(body: bytes, document: Document, what: str) -> bytes:
    """`body` unchanged, or ServerError when it is larger than a `document` may be."""
    if len(body) > MAX_BYTES[document]:
        raise ServerError(f"the {what} is too large")
    return body
