"""The npm `oidc-provider` (e2e/oidc_provider/provider.mjs) as a process: started with its
settings in the environment, ready when it prints its issuer, stopped by closing its stdin.
Shared by e2e/test_generic_oidc.py, e2e/test_browser_par.py and e2e/test_sso.py (no test module
imports another), with `sign_in_and_consent`, its development sign-in pages driven in Chromium."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.kt_process import REPO

PROVIDER_DIR = REPO / "e2e" / "oidc_provider"
READY_PREFIX = "oidc-provider listening on "
READY_TIMEOUT = 20.0


class OidcProvider:
    def __init__(self, issuer: str, proc: subprocess.Popen[str], log: Path) -> None:
        self.issuer = issuer
        self.proc = proc
        self.log = log  # its stderr

    def metadata(self) -> dict[str, object]:
        r = httpx2.get(self.issuer + "/.well-known/openid-configuration")
        r.raise_for_status()
        doc = r.json()
        assert isinstance(doc, dict)
        return doc


def start_provider(log: Path, **settings: str) -> OidcProvider:
    """provider.mjs with `settings` as its environment (SCOPES, DEVICE_ID_TOKEN)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("no node on PATH: run scripts/setup (it installs Node 22 into .venv) first")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("oidc-provider is not installed: run: (cd e2e/oidc_provider && npm ci)")
    with log.open("w") as err:
        proc = subprocess.Popen(
            [node, str(PROVIDER_DIR / "provider.mjs")],
            cwd=PROVIDER_DIR,
            env={**os.environ, **settings},
            stdin=subprocess.PIPE,  # the provider exits when this closes
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)
        proc.stdout.close()  # the provider has exited; this thread was its only reader

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            stop_provider(proc)
            pytest.fail(
                f"oidc-provider did not become ready within {READY_TIMEOUT:.0f} s;\n"
                f"stdout: {''.join(seen)}\nstderr: {log.read_text()}"
            )
        seen.append(line)
        if line.startswith(READY_PREFIX):
            return OidcProvider(line[len(READY_PREFIX) :].strip(), proc, log)


def sign_in_and_consent(page: Any, url: str, login: str) -> None:
    """oidc-provider's development pages in Chromium: any password signs the login name in."""
    page.goto(url)
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_selector("input[name=login]", state="detached")  # on to the consent page
    page.click("button[type=submit]")


def stop_provider(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
