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

import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2

from ..errors import KtError
from .transport import (
    aread_reply,
    network_error,
    provider_at,
    read_reply,
    undecodable,
)

T = TypeVar("T")


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
                response = send(client, effect)
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
    sleep: Callable[[float], Awaitable[None]] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    on_wait: Callable[[Wait], None] | None = None,
) -> T:
    """`drive` over an `httpx2.AsyncClient`: the same flows, the same answers, the same errors."""
    if sleep is None:  # asyncio only here: the sync paths (whoami, refresh) never import it
        import asyncio

        sleep = asyncio.sleep
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


@contextmanager
def _transport_errors(request: httpx2.Request, server: str | None) -> Iterator[None]:
    try:
        yield
    except httpx2.TransportError as exc:
        raise network_error(exc, server or provider_at(request.url)) from None
    except httpx2.DecodingError:
        raise undecodable(server or provider_at(request.url)) from None


def send(
    client: httpx2.Client,
    request: httpx2.Request,
    *,
    auth: httpx2.Auth | None = None,
    server: str | None = None,
) -> httpx2.Response:
    """`request` sent once over `client` (with `auth`, if any), its reply read by the one capped
    reader (`transport.read_reply`); a failed exchange is the NetworkError naming `server` (by
    default "the identity provider at scheme://host", as flows send only to one)."""
    with _transport_errors(request, server):
        response = client.send(
            request,
            auth=auth if auth is not None else httpx2.USE_CLIENT_DEFAULT,
            follow_redirects=False,
            stream=True,
        )
        try:
            read_reply(response)
        finally:
            response.close()
    return response


async def _asend(client: httpx2.AsyncClient, request: httpx2.Request) -> httpx2.Response:
    with _transport_errors(request, None):
        response = await client.send(request, follow_redirects=False, stream=True)
        try:
            await aread_reply(response)
        finally:
            await response.aclose()
    return response
