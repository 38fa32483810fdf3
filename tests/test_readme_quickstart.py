"""The README's quick start, run as written: the commands are read from README.md, not copied here.

`scripts/demo` runs literally in a copy of the repository (tracked and not-ignored files, as in the
working tree) with its own HOME, no KEEPTRUSTS_* settings, no D-Bus (so no real keyring is touched)
and its own `.venv` (installed once for the module; reruns find it current); the kt-devserver it
leaves running is stopped afterwards. The demo's port is 8765 unless KT_DEMO_PORT says otherwise;
the copy is given a free port through KT_DEMO_PORT, never 8765 itself, so two suites on one
machine (or a demo a developer left running) do not meet. A kt-devserver already on the port is
reused; anything else there is left alone and the demo's server takes a free port, which a
look-alike server that answers /healthz like kt-devserver checks. `scripts/test` is this suite
itself, so it is checked, not run (scripts/setup, which it runs first, has
tests/test_setup_script.py).
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fixtures.devserver import DevServer
from tests.kt_process import REPO, free_port

DEMO_TIMEOUT = 600


def quick_start_commands(readme: str) -> list[str]:
    """The command lines of the first ```sh block under "## Quick start" (comments kept)."""
    section = re.search(r"^## Quick start[ \t]*\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section, 'README.md has no "## Quick start" section'
    block = re.search(r"^```(?:sh|bash|shell)[ \t]*\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, 'README.md\'s "## Quick start" has no ```sh block'
    return [line for line in block.group(1).splitlines() if line.strip()]


def program(line: str) -> str:
    return shlex.split(line, comments=True)[0]


@pytest.fixture(scope="module")
def commands() -> list[str]:
    return quick_start_commands((REPO / "README.md").read_text(encoding="utf-8"))


def test_quick_start_is_demo_then_test(commands):
    assert [program(c) for c in commands] == ["scripts/demo", "scripts/test"], commands


def test_the_readme_names_the_demo_s_default_port(commands):
    """The copy runs on a free port; the port the README promises is scripts/demo's default."""
    default = re.search(r'port="\$\{KT_DEMO_PORT:-(\d+)\}"', (REPO / "scripts/demo").read_text())
    assert default, "scripts/demo has no KT_DEMO_PORT default"
    assert f"127.0.0.1:{default.group(1)}" in commands[0], commands[0]


def test_parser_reads_only_the_quick_start_block():
    readme = "# x\n\n```sh\nnot-this\n```\n\n## Quick start\n\ntext\n\n```sh\na  # c\n\nb\n```\n"
    readme += "\n```sh\nlater\n```\n## Next\n"
    assert quick_start_commands(readme) == ["a  # c", "b"]


def test_second_command_is_the_suite_that_ci_runs(commands):
    """`scripts/test` is this very suite: check it rather than recurse into it."""
    script = REPO / program(commands[1])
    assert script.is_file() and os.access(script, os.X_OK), script
    assert "pytest" in script.read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    ci_commands = [line.strip() for line in ci.splitlines() if not line.lstrip().startswith("#")]
    assert program(commands[1]) in ci_commands, ".ci/run does not run the README's test command"
    assert "scripts/check-wheel" in ci_commands, ".ci/run does not run scripts/check-wheel"
    assert ci_commands.index("scripts/check-wheel") > ci_commands.index(program(commands[1]))


def copy_repo(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if not src.is_file() or rel.startswith(".hypothesis/"):  # deleted; a local cache
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


def stop_demo_server(copy: Path) -> None:
    """SIGTERM to the server scripts/demo left running; waits on its exit (a pidfd), not on time."""
    pid_file = copy / ".demo" / "devserver.pid"
    if not pid_file.exists():
        return
    try:
        pidfd = os.pidfd_open(int(pid_file.read_text().strip()))
    except ProcessLookupError:
        return
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        exited, _, _ = select.select([pidfd], [], [], 10)  # readable once the process has exited
        if not exited:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)


@dataclass
class Demo:
    copy: Path
    home: Path
    env: dict[str, str]

    def run(self, line: str, **extra_env: str) -> tuple[subprocess.CompletedProcess[str], str]:
        proc = subprocess.run(
            ["bash", "-c", line],
            cwd=self.copy,
            env={**self.env, **extra_env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT,
        )
        return proc, f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[Demo]:
    """A copy of the repository to run scripts/demo in, with its own HOME and environment."""
    root = tmp_path_factory.mktemp("quickstart")
    copy = root / "kt-login"
    copy_repo(copy)
    home = root / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KEEPTRUSTS_", "XDG_", "PYTHON", "VIRTUAL_ENV", "KT_", "DBUS_"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        # no session bus: the demo must not write to the developer's keyring
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={home}/no-bus",
    )
    yield Demo(copy, home, env)
    stop_demo_server(copy)


STOP_HINT = "stop it with: kill $(cat .demo/devserver.pid)"


def logged_in_url(stdout: str) -> str:
    found = re.search(
        r"^Logged in to (http://127\.0\.0\.1:(\d+)) as alice@example\.com", stdout, re.M
    )
    assert found, stdout
    return found.group(1)


@pytest.mark.timeout(2 * DEMO_TIMEOUT + 60)
def test_demo_runs_as_written_and_a_rerun_reuses_its_server(commands, demo):
    line = commands[0]
    assert program(line) == "scripts/demo"
    port = str(free_port())
    try:
        proc, output = demo.run(line, KT_DEMO_PORT=port)
        assert proc.returncode == 0, output
        url = logged_in_url(proc.stdout)
        assert url == f"http://127.0.0.1:{port}", output
        everything = proc.stdout + proc.stderr
        assert f"kt-devserver listening on {url}  (pid " in everything, output
        assert STOP_HINT in everything, output
        assert "installing kt-login into .venv" in proc.stderr, output
        # everything the demo keeps is inside the copy, under .demo/
        assert (demo.copy / ".demo" / "config").is_dir(), output
        assert not (demo.home / ".config" / "keeptrusts").exists()

        # bob's MFA code: the printed command reads the demo's own database
        db = demo.copy / ".demo" / "devserver.db"
        totp_line = f'.venv/bin/kt-devserver totp bob@example.com --db "{db}"'
        assert totp_line in proc.stderr, output
        code = demo.run(totp_line)[0]
        assert re.fullmatch(r"\d{6}\n", code.stdout), code.stdout + code.stderr

        # the rerun: no pip, the same server, and it says so and how to stop it
        again, output = demo.run(line, KT_DEMO_PORT=port)
        assert again.returncode == 0, output
        assert logged_in_url(again.stdout) == url, output
        assert "installing kt-login" not in again.stderr, output
        assert f"Reusing the demo's kt-devserver on {url}" in again.stdout, output
        assert STOP_HINT in again.stdout, output
        assert "kt-devserver listening" not in again.stdout + again.stderr, output
    finally:
        stop_demo_server(demo.copy)


@pytest.mark.timeout(DEMO_TIMEOUT + 60)
def test_demo_reuses_a_kt_devserver_already_on_its_port(commands, demo, devserver: DevServer):
    """As after the README's first command was run earlier: that server is used, not replaced."""
    stop_demo_server(demo.copy)  # the previous test's, if any
    port = devserver.url.rsplit(":", 1)[1]
    proc, output = demo.run(commands[0], KT_DEMO_PORT=port)
    assert proc.returncode == 0, output
    assert logged_in_url(proc.stdout) == devserver.url, output
    assert f"Reusing the kt-devserver already running on {devserver.url}" in proc.stdout, output
    assert "kt-devserver listening" not in proc.stdout + proc.stderr, output
    assert not (demo.copy / ".demo" / "devserver.pid").exists(), output  # nothing of its own


class LookAlike(BaseHTTPRequestHandler):
    """Not a kt-devserver, though its /healthz answers the same; records what it was asked."""

    requests: list[tuple[str, str]] = []

    def _answer(self) -> None:
        self.requests.append((self.command, self.path))
        body = json.dumps({"status": "ok"} if self.path == "/healthz" else {}).encode()
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.timeout(DEMO_TIMEOUT + 60)
def test_demo_leaves_another_server_on_its_port_alone_and_takes_a_free_one(commands, demo):
    server = ThreadingHTTPServer(("127.0.0.1", 0), LookAlike)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    held = server.server_address[1]
    LookAlike.requests = []
    stop_demo_server(demo.copy)  # the previous test's, if any: a fresh start
    try:
        proc, output = demo.run(commands[0], KT_DEMO_PORT=str(held))
    finally:
        server.shutdown()
        server.server_close()
        stop_demo_server(demo.copy)
    assert proc.returncode == 0, output
    assert (
        f"Port {held} on 127.0.0.1 is held by something that is not a kt-devserver" in proc.stdout
    ), output
    url = logged_in_url(proc.stdout)
    assert url != f"http://127.0.0.1:{held}", output
    assert f"kt-devserver listening on {url}  (pid " in proc.stdout, output
    assert f'KEEPTRUSTS_API_URL="{url}"' in proc.stderr, output
    # the look-alike was only looked at, never signed in to
    assert all(method == "GET" for method, _ in LookAlike.requests), LookAlike.requests


def test_demo_refuses_a_port_that_is_not_a_number(demo):
    proc, output = demo.run("scripts/demo", KT_DEMO_PORT="http")
    assert proc.returncode == 2, output
    assert "KT_DEMO_PORT must be a port number (1-65535), not 'http'" in proc.stderr, output
