"""Process-level cases that need the real `kt`: TLS verification (NT-02), concurrent logins kept
apart (EH-08, CB-02), and a scrubbed environment for the browser launcher (HY-07)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from tests.kt_process import Result, self_signed_certificate

from .conftest import Box


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    """An https server with a self-signed certificate that records what reaches it."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    seen: list[str] = []
    ready = threading.Event()
    state: dict[str, object] = {}

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({})

    def serve() -> None:
        loop = asyncio.new_event_loop()
        state["loop"] = loop
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", anything)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        loop.run_until_complete(site.start())
        state["port"] = runner.addresses[0][1]
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield int(state["port"]), seen  # type: ignore[call-overload]
    loop = state["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_NT_02_self_signed_issuer_is_refused(box: Box, tls_server: tuple[int, list[str]]) -> None:
    port, seen = tls_server
    before = box.snapshot()
    result = box.kt(
        "auth", "login", "--browser", "--issuer", f"https://127.0.0.1:{port}",
        "--client-id", "kt-cli", "--insecure-storage", "--json",
    )  # fmt: skip
    assert result.code == 5, result.stderr
    assert "Traceback" not in result.stderr
    assert "\n" not in result.error()["message"]
    assert not seen  # no request got through the failed handshake
    assert not box.opener_calls
    assert box.snapshot() == before


def test_EH_08_CB_02_two_concurrent_logins_stay_apart(box: Box, tmp_path: Path) -> None:
    """Two `kt auth login --browser` at once (two users' config dirs): each gets its own port,
    state, nonce and verifier, and both complete."""
    other = Box(tmp_path / "other", box.server)
    other.home.mkdir()
    args = [
        sys.executable, "-m", "kt_login", "auth", "login", "--browser",
        "--issuer", box.server.issuer, "--client-id", "kt-cli", "--insecure-storage", "--json",
        "--timeout", "20",
    ]  # fmt: skip
    procs = [
        subprocess.Popen(args, env=b.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for b in (box, other)
    ]
    results = [Result(p.wait(60), *p.communicate()) for p in procs]
    for r in results:
        assert r.code == 0, r.stderr
    # Each browser got its own listener's one-time link (LU-01), and each link led to its own
    # authorization request.
    links = [urlsplit(b.opener_calls[0]) for b in (box, other)]
    assert links[0].netloc != links[1].netloc and links[0].path != links[1].path
    asked = [call.query for call in box.server.calls("GET", "/authorize")]
    assert len(asked) == 2
    for name in ("redirect_uri", "state", "nonce", "code_challenge"):
        assert asked[0][name] != asked[1][name], name
    assert {urlsplit(q["redirect_uri"]).netloc for q in asked} == {link.netloc for link in links}
    verifiers = {r.form["code_verifier"] for r in box.server.token_calls("authorization_code")}
    assert len(verifiers) == 2


def test_HY_07_browser_launcher_does_not_inherit_the_api_token(box: Box) -> None:
    box.env["KEEPTRUSTS_API_TOKEN"] = "kt_CANARY_env_token"
    result = box.login()
    assert box.opener_calls, result.stderr  # the launcher ran…
    assert not Path(str(box.opener_log) + ".env-token").exists()  # …without the token
    assert "CANARY" not in result.stdout + result.stderr
