"""The OAuth protocol as data: each flow is a generator that yields `httpx2.Request`s and is sent
the `httpx2.Response`s, like httpx's `Auth.auth_flow`. Flows do no I/O; `drive` is the one loop
that does, so tests can step a flow by hand and every network error is mapped in one place.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

import httpx2

from ..errors import NetworkError, ServerError

T = TypeVar("T")
# Larger than any document kt parses (metadata and key sets 256 KiB, token replies 1 MiB); a
# provider's reply is read in chunks and abandoned past it, never held whole (NT-05).
MAX_REPLY_BYTES = 4 * 1024 * 1024
_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})
Flow = Generator[httpx2.Request, httpx2.Response, T]


def drive(flow: Flow[T], client: httpx2.Client) -> T:
    """Run `flow` to completion over `client`. Requests are sent once: never retried here."""
    try:
        request = next(flow)
        while True:
            response = _send(client, request)
            request = flow.send(response)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        flow.close()


def _send(client: httpx2.Client, request: httpx2.Request) -> httpx2.Response:
    where = f"{request.url.scheme}://{request.url.netloc.decode()}"
    try:
        response = client.send(request, follow_redirects=False, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise ServerError(f"{where} sent a reply that is too large")
                chunks.append(chunk)
        finally:
            response.close()
    except httpx2.TimeoutException:
        raise NetworkError(f"{where} did not answer in time") from None
    except httpx2.TransportError as exc:
        raise NetworkError(f"cannot reach {where} ({type(exc).__name__})") from None
    # The body is already decoded: keep the headers but not the framing of the original.
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _FRAMING]
    return httpx2.Response(
        response.status_code, headers=headers, content=b"".join(chunks), request=request
    )
