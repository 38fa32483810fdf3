"""The README's quick start, run as written: the commands are read from README.md, not copied here.

`scripts/demo` runs literally in a copy of the repository (tracked and not-ignored files, as in the
working tree) with its own HOME, no KEEPTRUSTS_* settings, no D-Bus (so no real keyring is touched)
and its own `.venv`; the kt-devserver it leaves running is stopped afterwards. It needs the fixed
port 8765: a kt-devserver already there (the README's first command, run earlier) is reused as
scripts/demo itself does; anything else on the port fails the test with a message.
`scripts/test` is this suite itself, so it is checked, not run.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.kt_process import REPO

DEMO_PORT = 8765
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


def port_state(port: int) -> str:
    """ "free", "demo" (a kt-devserver already answers there, which scripts/demo reuses, as after
    following the README's first command), or a failure for anything else holding the port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return "free"
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    try:
        import httpx2

        if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}:
            return "demo"
    except Exception:  # noqa: BLE001 - anything else on the port is the failure below
        pass
    pytest.fail(
        f"port {port} on 127.0.0.1 is in use by something other than kt-devserver, and the "
        "README's scripts/demo needs it; free the port and run this test again"
    )


def stop_demo_server(copy: Path) -> None:
    pid_file = copy / ".demo" / "devserver.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(DEMO_TIMEOUT + 60)
def test_demo_runs_as_written(commands, tmp_path):
    line = commands[0]
    assert program(line) == "scripts/demo"
    state = port_state(DEMO_PORT)
    copy = tmp_path / "kt-login"
    copy_repo(copy)
    home = tmp_path / "home"
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
    try:
        proc = subprocess.run(
            ["bash", "-c", line],
            cwd=copy,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT,
        )
    finally:
        stop_demo_server(copy)
    output = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, output
    assert "Logged in to http://127.0.0.1:8765 as alice@example.com" in proc.stdout, output
    if state == "free":  # otherwise the demo reused the running server, as documented
        assert "kt-devserver listening on http://127.0.0.1:8765" in proc.stdout + proc.stderr, (
            output
        )
    # everything the demo keeps is inside the copy, under .demo/
    assert (copy / ".demo" / "config").is_dir(), output
    assert not (home / ".config" / "keeptrusts").exists()
