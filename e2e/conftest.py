"""End-to-end fixtures: system Chromium through Playwright, and `kt` runs whose browser is it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kt_process import REPO

URL_TIMEOUT = 30.0

# The Node.js that scripts/setup installs for the e2e OpenID provider: .venv/bin/node, next to the
# interpreter running the tests (a node found elsewhere on PATH, such as Debian 12's 18, may be
# too old for it). Its own directory holds only node, npm, npx and corepack.
VENV_NODE = Path(sys.executable).parent / "node"


@pytest.fixture(scope="session", autouse=True)
def project_node() -> Iterator[Path | None]:
    """Put the project's node first on PATH for the e2e tests (shutil.which("node") finds it)."""
    if not VENV_NODE.exists():
        yield None
        return
    node = VENV_NODE.resolve()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}")
        yield node


class KtRun:
    """`kt …` running with a browser; `.url()` is what it asked the browser to open."""

    def __init__(self, argv: list[str], env: dict[str, str], fifo: Path) -> None:
        self.fifo = fifo
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kt_login", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def url(self) -> str:
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.fifo.read_text()), daemon=True)
        reader.start()
        reader.join(URL_TIMEOUT)
        if not box:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"kt never opened a browser; stderr: {err}")
        return box[0].strip()

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


@pytest.fixture
def kt_browser(tmp_path):
    """Start `kt ARGV…` whose browser hands the opened URL to the test."""
    fifo = tmp_path / "browser-url"
    os.mkfifo(fifo)
    runs: list[KtRun] = []
    python = shutil.which("python3") or sys.executable

    def start(*argv: str, env: dict[str, str]) -> KtRun:
        env = dict(env)
        env["BROWSER"] = f"{python} {REPO / 'e2e' / 'record_url.py'} %s"
        env["KT_E2E_URL_FIFO"] = str(fifo)
        run = KtRun(list(argv), env, fifo)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.communicate()


@pytest.fixture
def kt_login(kt_browser):
    """Start `kt auth login ARGS…` with a browser (see kt_browser)."""
    return lambda *args, env: kt_browser("auth", "login", *args, env=env)
