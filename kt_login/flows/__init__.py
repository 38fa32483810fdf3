"""The OAuth protocol as data: each flow is a generator that yields effects — an `httpx2.Request`
to send, or a `Wait` — and is sent what came of them, like httpx's `Auth.auth_flow`. Flows do no
I/O; `drive` (sync) and `adrive` (async) are the only loops that do, so tests can step a flow by
hand and every network error is mapped in one place (`transport.network_error`).

What a driver sends back into the flow:

    httpx2.Request  →  the httpx2.Response, its body read (at most transport.MAX_REPLY bytes)
                       or, when no reply came, the NetworkError (or ServerError) thrown in at
                       the `yield`: a flow that does not catch it ends with it
    Wait            →  after the pause, the flow's elapsed time: seconds since the driver
                       started it, by a monotonic clock (so a flow keeps deadlines without one)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2

from ..errors import KtError
from .transport import MAX_REPLY, network_error, too_large, undecodable, where

T = TypeVar("T")
_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True)
class Wait:
    """Pause `seconds` before the flow goes on. `remaining` is how much longer the flow is
    prepared to keep waiting in all (for a countdown); None when it has no deadline."""

    seconds: float
    remaining: float | None = None


Effect = httpx2.Request | Wait
# A flow that only sends requests, and one that may also wait between them.
Flow = Generator[httpx2.Request, httpx2.Response, T]
WaitingFlow = Generator[Effect, httpx2.Response | float, T]


def drive(
    flow: Flow[T] | WaitingFlow[T],
    client: httpx2.Client,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    on_wait: Callable[[Wait], None] | None = None,
) -> T:
    """Run `flow` to completion over `client`. Requests are sent once: never retried here."""
    steps: Generator[Effect, Any, T] = flow
    started = monotonic()
    try:
        effect = next(steps)
        while True:
            if isinstance(effect, Wait):
                if on_wait is not None:
                    on_wait(effect)
                sleep(effect.seconds)
                effect = steps.send(monotonic() - started)
                continue
            try:
                response = _send(client, effect)
            except KtError as exc:
                effect = steps.throw(exc)
            else:
                effect = steps.send(response)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        steps.close()


async def adrive(
    flow: Flow[T] | WaitingFlow[T],
    client: httpx2.AsyncClient,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    on_wait: Callable[[Wait], None] | None = None,
) -> T:
    """`drive` over an `httpx2.AsyncClient`: the same flows, the same answers, the same errors."""
    steps: Generator[Effect, Any, T] = flow
    started = monotonic()
    try:
        effect = next(steps)
        while True:
            if isinstance(effect, Wait):
                if on_wait is not None:
                    on_wait(effect)
                await sleep(effect.seconds)
                effect = steps.send(monotonic() - started)
                continue
            try:
                response = await _asend(client, effect)
            except KtError as exc:
                effect = steps.throw(exc)
            else:
                effect = steps.send(response)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        steps.close()


class _Body:
    """A reply's body, gathered chunk by chunk and abandoned past MAX_REPLY (NT-05)."""

    def __init__(self, request: httpx2.Request) -> None:
        self._request = request
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > MAX_REPLY:
            raise too_large(where(self._request.url))
        self._chunks.append(chunk)

    def response(self, streamed: httpx2.Response) -> httpx2.Response:
        # The body is already decoded: keep the headers but not the framing of the original.
        headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _FRAMING]
        return httpx2.Response(
            streamed.status_code,
            headers=headers,
            content=b"".join(self._chunks),
            request=self._request,
        )


@contextmanager
def _transport_errors(request: httpx2.Request) -> Iterator[None]:
    try:
        yield
    except httpx2.TransportError as exc:
        raise network_error(exc, where(request.url)) from None
    except httpx2.DecodingError:
        raise undecodable(where(request.url)) from None


def _send(client: httpx2.Client, request: httpx2.Request) -> httpx2.Response:
    body = _Body(request)
    with _transport_errors(request):
        response = client.send(request, follow_redirects=False, stream=True)
        try:
            for chunk in response.iter_bytes():
                body.add(chunk)
        finally:
            response.close()
    return body.response(response)


async def _asend(client: httpx2.AsyncClient, request: httpx2.Request) -> httpx2.Response:
    body = _Body(request)
    with _transport_errors(request):
        response = await client.send(request, follow_redirects=False, stream=True)
        try:
            async for chunk in response.aiter_bytes():
                body.add(chunk)
        finally:
            await response.aclose()
    return body.response(response)
