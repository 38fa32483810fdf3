"""The attacker on the same machine, and files that are not what they seem (issue 11, cases 3, 4,
8 and 9; docs/security.md LF-01..LF-04).

Each test plants the file as an attacker (or an accident) would, runs the real `kt` process
against a real kt-devserver, and checks the defence: the exit code, a one-line message naming the
path, a hint that is the command fixing it (the test runs it), nothing sent, nothing stored or
changed, and no hang (every run has a subprocess timeout well below the test's).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.fixtures.devserver import DevServer
from tests.kt_process import Result, base_env, kt

ALICE = ("alice@example.com", "alice-password")
QUICK = 20  # seconds: every run here finishes in a few; a hang fails the run, not the suite


class Machine:
    """One user's home and config dir, with kt pointed at a real kt-devserver."""

    def __init__(self, home: Path, server: DevServer) -> None:
        self.home = home
        self.server = server
        self.config = home / "config"
        self.env = base_env(home, KEEPTRUSTS_API_URL=server.url)

    def kt(self, *args: str, input: str | None = None) -> Result:
        return kt(*args, env=self.env, input=input, timeout=QUICK)

    def login(self, *extra: str) -> Result:
        return self.kt(
            "auth",
            "login",
            "--email",
            ALICE[0],
            "--password-stdin",
            "--insecure-storage",
            "--json",
            *extra,
            input=ALICE[1] + "\n",
        )

    @property
    def credentials(self) -> Path:
        return self.config / "credentials" / "default.json"

    @property
    def index(self) -> Path:
        return self.config / "sessions.json"

    def snapshot(self) -> dict[str, tuple[int, bytes | str | None]]:
        """Every entry under the config dir: its mode and content (a link's target, nothing for
        what is not a file, so a FIFO is never opened)."""
        out: dict[str, tuple[int, bytes | str | None]] = {}
        if not self.config.exists():
            return out
        for path in sorted(self.config.rglob("*")):
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[str(path)] = (st.st_mode, os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                out[str(path)] = (st.st_mode, path.read_bytes())
            else:
                out[str(path)] = (st.st_mode, None)
        return out

    def server_sessions(self) -> int:
        with closing(sqlite3.connect(f"file:{self.server.db_path}?mode=ro", uri=True)) as db:
            (n,) = db.execute("SELECT count(*) FROM sessions").fetchone()
        return int(n)


@pytest.fixture
def machine(tmp_path: Path, devserver: DevServer) -> Machine:
    return Machine(tmp_path, devserver)


@pytest.fixture
def signed_in(machine: Machine) -> Machine:
    """A machine with a good file session for the default profile."""
    result = machine.login()
    assert result.code == 0, result.stderr
    assert machine.credentials.is_file() and machine.index.is_file()
    return machine


@pytest.fixture
def attacker() -> Iterator[socket.socket]:
    """A loopback port an attacker listens on; the kernel queues any connection kt makes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def attacker_url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def reached(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def refusal(result: Result, code: int, path: Path) -> tuple[str, str]:
    """The one-line error of a --json run: (message, hint); it names `path`."""
    assert result.code == code, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    lines = result.stderr.strip().splitlines()
    error = json.loads(lines[-1])["error"]
    message, hint = error["message"], error.get("hint", "")
    assert "\n" not in message and str(path) in message, message
    return message, hint


def human_refusal(result: Result, code: int, path: Path) -> tuple[str, str]:
    """The same for a run without --json: `Error: <one line>` and then the hint line."""
    assert result.code == code, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("Warning:")]
    assert len(lines) == 2 and lines[0].startswith("Error: "), result.stderr
    assert str(path) in lines[0]
    return lines[0], lines[1]


def run_hint(hint: str) -> None:
    """Run the command a hint printed, as the user would paste it (no shell needed)."""
    assert hint.startswith("run: "), hint
    subprocess.run(shlex.split(hint.removeprefix("run: ")), check=True, timeout=QUICK)


# --------------------------------------------------------------------------- LF-01: config modes


def _config_file(machine: Machine, api_url: str) -> Path:
    machine.config.mkdir(mode=0o700, exist_ok=True)
    path = machine.config / "config.toml"
    path.write_text(f'[profiles.default]\napi_url = "{api_url}"\n')
    path.chmod(0o600)
    return path


def _other_uid() -> int:
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    return 4242


MODES = {
    "file-0666": lambda c, f: f.chmod(0o666),
    "file-group-writable-0620": lambda c, f: f.chmod(0o620),
    "file-world-writable-0602": lambda c, f: f.chmod(0o602),
    "dir-0777": lambda c, f: c.chmod(0o777),
    "dir-group-writable-0770": lambda c, f: c.chmod(0o770),
    "dir-sticky-1777": lambda c, f: c.chmod(0o1777),
    "file-of-another-user": lambda c, f: os.chown(f, _other_uid(), -1),
    "dir-of-another-user": lambda c, f: os.chown(c, _other_uid(), -1),
}


@pytest.mark.parametrize("case", MODES)
def test_LF_01_a_config_others_may_change_is_refused_before_anything_is_sent(
    machine: Machine, attacker: socket.socket, case: str
) -> None:
    # The attacker's config sends the next password login to their port.
    del machine.env["KEEPTRUSTS_API_URL"]
    path = _config_file(machine, attacker_url(attacker))
    MODES[case](machine.config, path)
    refused = path if case.startswith("file") else machine.config
    before = machine.snapshot()
    for args in (["auth", "login", "--email", ALICE[0], "--password-stdin"], ["auth", "status"]):
        result = machine.kt(*args, "--json", input=ALICE[1] + "\n")
        message, hint = refusal(result, 2, refused)
        assert result.error()["code"] == "kt.config"
        if "another user" in message:
            assert hint.endswith(f"chown {_me()} {refused}"), hint
        else:
            assert hint == f"run: chmod go-w {refused}", hint
    assert not reached(attacker), "the password went to the attacker's port"
    assert ALICE[1] not in result.stdout + result.stderr
    assert machine.snapshot() == before
    assert machine.server_sessions() == 0


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def test_LF_01_the_default_config_dir_is_held_to_the_same_rule(
    machine: Machine, attacker: socket.socket
) -> None:
    del machine.env["KEEPTRUSTS_CONFIG_DIR"], machine.env["KEEPTRUSTS_API_URL"]
    default_dir = Path(machine.env["XDG_CONFIG_HOME"]) / "keeptrusts"
    default_dir.mkdir(parents=True)
    (default_dir / "config.toml").write_text(
        f'[profiles.default]\napi_url = "{attacker_url(attacker)}"\n'
    )
    default_dir.chmod(0o777)
    result = machine.kt("auth", "login", "--email", ALICE[0], "--password-stdin", "--json")
    _, hint = refusal(result, 2, default_dir)
    assert hint == f"run: chmod go-w {default_dir}"
    assert not reached(attacker)


def test_LF_01_the_printed_fix_makes_the_config_trusted(machine: Machine) -> None:
    path = _config_file(machine, machine.server.url)
    path.chmod(0o666)
    machine.config.chmod(0o777)
    del machine.env["KEEPTRUSTS_API_URL"]
    for refused in (machine.config, path):  # one refusal at a time, each with its own fix
        line, hint = human_refusal(machine.kt("auth", "status"), 2, refused)
        assert "may change it" in line
        run_hint(hint)
    result = machine.login()
    assert result.code == 0, result.stderr
    assert result.json()["api_url"] == machine.server.url  # the config's api_url, now trusted


def test_LF_01_root_may_own_the_config_and_a_narrower_mode_is_fine(machine: Machine) -> None:
    path = _config_file(machine, machine.server.url)
    path.chmod(0o644)  # readable by others: no secret belongs in it, and none can change it
    machine.config.chmod(0o755)
    if os.getuid() == 0:
        os.chown(path, 0, 0)
    del machine.env["KEEPTRUSTS_API_URL"]
    assert machine.login().code == 0


@pytest.mark.parametrize("what", ["credentials", "locks"])
def test_LF_01_a_store_dir_others_may_change_is_refused(signed_in: Machine, what: str) -> None:
    directory = signed_in.config / what
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o777)
    before = signed_in.snapshot()
    sessions = signed_in.server_sessions()
    result = signed_in.login()
    _, hint = refusal(result, 1, directory)
    assert hint == f"run: chmod go-w {directory}"
    assert signed_in.snapshot() == before
    assert signed_in.server_sessions() == sessions  # refused before the password was sent
    run_hint(hint)
    assert signed_in.login().code == 0
    if what == "credentials":  # written by every file login: narrowed once no one could write
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_LF_01_a_sessions_index_others_may_change_is_refused(signed_in: Machine) -> None:
    signed_in.index.chmod(0o666)
    before = signed_in.snapshot()
    result = signed_in.kt("auth", "logout", "--all", "--json")
    _, hint = refusal(result, 1, signed_in.index)
    assert hint == f"run: chmod go-w {signed_in.index}"
    assert signed_in.snapshot() == before


# --------------------------------------------------------------------------- LF-02: file types

COMMANDS = {
    "login": ["auth", "login", "--email", ALICE[0], "--password-stdin", "--insecure-storage"],
    "logout-all": ["auth", "logout", "--all"],
    "status": ["auth", "status"],
    "whoami": ["auth", "whoami"],
}
PLANTS = ("fifo", "dev-zero", "directory", "huge")


def _plant(machine: Machine, where: str, what: str) -> Path:
    path = {
        "sessions.json": machine.index,
        "config.toml": machine.config / "config.toml",
        "credentials": machine.credentials,
    }[where]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    if what == "fifo":
        os.mkfifo(path, 0o600)
    elif what == "dev-zero":
        path.symlink_to("/dev/zero")
    elif what == "directory":
        path.mkdir(mode=0o700)
    elif what == "huge":
        with path.open("wb") as fh:
            fh.truncate(64 << 20)  # sparse: no disk, but 64 MiB to read
        path.chmod(0o600)
    return path


def _refused_at_once(machine: Machine, path: Path, what: str, command: str, code: int) -> None:
    before = machine.snapshot()
    sessions = machine.server_sessions()
    started = time.monotonic()
    result = machine.kt(*COMMANDS[command], "--json", input=ALICE[1] + "\n")
    elapsed = time.monotonic() - started
    message, hint = refusal(result, code, path)
    assert "MemoryError" not in result.stderr
    kinds = {
        "fifo": "a FIFO",
        "dev-zero": "a symbolic link",
        "directory": "a directory",
        "huge": "larger than",
    }
    assert kinds[what] in message, message
    assert hint == (f"run: mv {path} {path}.moved" if what == "directory" else f"run: rm {path}")
    assert elapsed < 10, f"{elapsed:.1f} s: kt waited on or read the planted file"
    assert machine.snapshot() == before
    assert machine.server_sessions() == sessions  # a refused login sent nothing


@pytest.mark.parametrize("what", PLANTS)
@pytest.mark.parametrize("command", COMMANDS)
def test_LF_02_a_config_toml_that_is_not_a_file_is_refused(
    signed_in: Machine, what: str, command: str
) -> None:
    path = _plant(signed_in, "config.toml", what)
    _refused_at_once(signed_in, path, what, command, 2)


@pytest.mark.parametrize("what", PLANTS)
@pytest.mark.parametrize("command", ["login", "logout-all", "status"])
def test_LF_02_a_sessions_index_that_is_not_a_file_is_refused(
    signed_in: Machine, what: str, command: str
) -> None:
    if command == "status":
        signed_in.credentials.unlink()  # no file session: status asks the index about the keyring
    path = _plant(signed_in, "sessions.json", what)
    _refused_at_once(signed_in, path, what, command, 1)


@pytest.mark.parametrize("what", PLANTS)
@pytest.mark.parametrize("command", ["status", "whoami"])
def test_LF_02_a_session_file_that_is_not_a_file_is_refused(
    signed_in: Machine, what: str, command: str
) -> None:
    path = _plant(signed_in, "credentials", what)
    _refused_at_once(signed_in, path, what, command, 1)


@pytest.mark.parametrize("what", ["fifo", "dev-zero", "directory"])
def test_LF_02_login_does_not_write_over_a_session_path_that_is_not_a_file(
    signed_in: Machine, what: str
) -> None:
    path = _plant(signed_in, "credentials", what)
    _refused_at_once(signed_in, path, what, "login", 1)


def test_LF_02_logout_moves_nothing_aside_on_its_own_but_says_how(signed_in: Machine) -> None:
    path = _plant(signed_in, "credentials", "directory")
    (path / "keep").write_text("something of the user's")
    result = signed_in.kt("auth", "logout", "--all", "--json")
    _, hint = refusal(result, 1, path)
    assert hint == f"run: mv {path} {path}.moved"
    run_hint(hint)
    assert (Path(f"{path}.moved") / "keep").exists()
    assert signed_in.kt("auth", "logout", "--all").code == 0


def test_LF_02_logout_removes_a_planted_fifo_without_opening_it(signed_in: Machine) -> None:
    path = _plant(signed_in, "credentials", "fifo")
    result = signed_in.kt("auth", "logout", "--all", "--json")
    assert result.code == 0, result.stderr
    assert str(path) in result.stderr and "could not revoke" in result.stderr
    assert not path.exists() and not path.is_symlink()


@pytest.mark.parametrize("where", ["sessions.json", "config.toml", "credentials"])
def test_LF_02_after_the_printed_fix_kt_works_again(signed_in: Machine, where: str) -> None:
    path = _plant(signed_in, where, "fifo")
    result = signed_in.kt(*COMMANDS["login"], input=ALICE[1] + "\n")
    _, hint = human_refusal(result, 2 if where == "config.toml" else 1, path)
    run_hint(hint)
    result = signed_in.login()
    assert result.code == 0, result.stderr
    assert signed_in.kt("auth", "whoami").code == 0


# --------------------------------------------------------------------------- LF-03: locks


@pytest.mark.parametrize("lock", ["default.lock", ".sessions-index.lock"])
def test_LF_03_a_link_at_a_lock_file_is_refused_before_the_login(
    machine: Machine, tmp_path: Path, lock: str
) -> None:
    locks = machine.config / "locks"
    locks.mkdir(parents=True, mode=0o700)
    machine.config.chmod(0o700)
    target = tmp_path / "victim"
    target.write_bytes(b"precious\n")
    target.chmod(0o640)
    (locks / lock).symlink_to(target)
    result = machine.login()
    message, hint = refusal(result, 1, locks / lock)
    assert "symbolic link" in message
    assert hint == f"run: rm {locks / lock}"
    assert not machine.credentials.exists() and machine.server_sessions() == 0
    assert target.read_bytes() == b"precious\n" and stat.S_IMODE(target.stat().st_mode) == 0o640
    run_hint(hint)
    assert target.exists()  # the fix removes the link, not what it points to
    assert machine.login().code == 0


def test_LF_03_a_link_at_the_refresh_lock_is_a_clear_error_not_unexpected(
    signed_in: Machine, tmp_path: Path
) -> None:
    data = json.loads(signed_in.credentials.read_bytes())
    data["expires_at"] = time.time() - 60  # the next command must refresh, under the lock
    signed_in.credentials.write_text(json.dumps(data))
    lock = signed_in.config / "locks" / "default.lock"
    lock.unlink(missing_ok=True)
    target = tmp_path / "victim"
    target.write_bytes(b"precious\n")
    lock.symlink_to(target)
    before = signed_in.snapshot()
    result = signed_in.kt("auth", "whoami", "--json")
    _, hint = refusal(result, 1, lock)
    assert hint == f"run: rm {lock}"
    assert target.read_bytes() == b"precious\n"
    assert signed_in.snapshot() == before  # not refreshed: the refresh token is not spent
    run_hint(hint)
    assert signed_in.kt("auth", "whoami").code == 0


# --------------------------------------------------------------------------- LF-04: hints


UNREADABLE = {
    "empty": b"",
    "truncated": b'{"api_url": "http',
    "not-json": b"\x00\xff garbage",
    "json-array": b"[]",
    "missing-fields": b'{"api_url": "http://127.0.0.1:1"}',
}


@pytest.mark.parametrize("content", UNREADABLE)
def test_LF_04_login_replaces_an_unreadable_session_and_says_so(
    signed_in: Machine, content: str
) -> None:
    signed_in.credentials.write_bytes(UNREADABLE[content])
    result = signed_in.login()
    assert result.code == 0, result.stderr
    notice = [line for line in result.stderr.splitlines() if "cannot be read" in line]
    assert len(notice) == 1, result.stderr  # --json: the warning is one JSON line on stderr
    warning = json.loads(notice[0])["warning"]
    assert warning["code"] == "kt.warning"
    assert "profile 'default'" in warning["message"]
    assert warning["message"].endswith("this login replaces it")
    assert signed_in.kt("auth", "whoami").code == 0
    assert stat.S_IMODE(signed_in.credentials.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", UNREADABLE)
def test_LF_04_the_hint_for_an_unreadable_session_works(signed_in: Machine, content: str) -> None:
    signed_in.credentials.write_bytes(UNREADABLE[content])
    result = signed_in.kt("auth", "whoami")
    _, hint = human_refusal(result, 1, Path("stored session"))  # no path: it is the content
    assert hint == "run: kt auth login"
    _run_login_hint(signed_in, hint)
    assert signed_in.kt("auth", "whoami").code == 0


def test_LF_04_the_hint_names_the_profile_it_is_for(machine: Machine) -> None:
    work = ("--profile", "work")
    assert machine.login(*work).code == 0
    (machine.config / "credentials" / "work.json").write_bytes(b"")
    result = machine.kt("auth", "whoami", *work)
    _, hint = human_refusal(result, 1, Path("stored session"))
    assert hint == "run: kt auth login --profile work"  # not the default profile's login
    _run_login_hint(machine, hint)
    assert machine.kt("auth", "whoami", *work).code == 0


def _run_login_hint(machine: Machine, hint: str) -> None:
    """The hint as printed, with what a script adds to sign in without a terminal."""
    command = shlex.split(hint.removeprefix("run: "))
    assert command[:3] == ["kt", "auth", "login"]
    again = machine.kt(*command[1:], "--email", ALICE[0], "--password-stdin", input=ALICE[1])
    assert again.code == 0, again.stderr


REFUSED = {
    "world-readable": lambda m, t: m.credentials.chmod(0o644),
    "group-readable": lambda m, t: m.credentials.chmod(0o640),
    "symlink": lambda m, t: _link_elsewhere(m, t),
    "fifo": lambda m, t: (m.credentials.unlink(), os.mkfifo(m.credentials, 0o600)),
    "of-another-user": lambda m, t: os.chown(m.credentials, _other_uid(), -1),
}


def _link_elsewhere(machine: Machine, tmp_path: Path) -> None:
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_bytes(machine.credentials.read_bytes())
    elsewhere.chmod(0o600)
    machine.credentials.unlink()
    machine.credentials.symlink_to(elsewhere)


@pytest.mark.parametrize("case", REFUSED)
def test_LF_04_a_refused_session_file_gets_a_fix_not_a_loop(
    signed_in: Machine, tmp_path: Path, case: str
) -> None:
    REFUSED[case](signed_in, tmp_path)
    before = signed_in.snapshot()
    elsewhere = tmp_path / "planted.json"
    planted = elsewhere.read_bytes() if elsewhere.exists() else None
    sessions = signed_in.server_sessions()
    for command in (["auth", "whoami"], COMMANDS["login"]):
        result = signed_in.kt(*command, input=ALICE[1] + "\n")
        _, hint = human_refusal(result, 1, signed_in.credentials)
        assert "kt auth login" not in hint  # login would refuse the same file: no loop
    assert signed_in.snapshot() == before  # not repaired, not written through
    assert signed_in.server_sessions() == sessions  # the password was not sent
    run_hint(hint)
    result = signed_in.login()
    assert result.code == 0, result.stderr
    assert signed_in.kt("auth", "whoami").code == 0
    if planted is not None:
        assert elsewhere.read_bytes() == planted  # the link's target was never written
