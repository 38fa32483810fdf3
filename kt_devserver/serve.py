"""Running the app: bind, announce readiness on stdout, stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web

from kt_devserver.state import BASE_URL, STATE

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS


def bind_host(host: str) -> str:
    # "localhost" can resolve to both 127.0.0.1 and ::1, which with port 0 would mean two
    # sockets on two different ports; bind the one IPv4 literal instead.
    return "127.0.0.1" if host == "localhost" else host


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(app: web.Application, *, host: str, port: int) -> None:
    # Handlers go in first: a signal sent right after the readiness line must still stop cleanly.
    stop = _stop_on_signals()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        url = url_for(host, runner.addresses[0][1])
        if BASE_URL in app:
            # The OAuth issuer: --public-url when given, else byte for byte the readiness URL.
            app[BASE_URL].value = app[STATE].settings.public_url or url
        print(f"kt-devserver listening on {url}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
    return stop


def run(app: web.Application, *, host: str, port: int) -> None:
    try:
        asyncio.run(serve(app, host=bind_host(host), port=port))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown, or one before the loop ran
        sys.exit(0)
