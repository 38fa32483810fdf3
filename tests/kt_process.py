"""Run the real `kt` entry point in a subprocess, the way a user's shell does."""

from __future__ import annotations

import json
import os
import platform
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
# kt-devserver's demo accounts (kt_devserver/demo.py)
ALICE = ("alice@example.com", "alice-password")
BOB = ("bob@example.com", "bob-password")
# what the fast commands must not import (tests/test_startup_imports.py, tests/test_completion.py)
HEAVY = ("aiohttp", "authlib", "jinja2")
# what `kt --help` and every group's --help listing must not import either
HTTP_STACK = ("httpx2", "keyring")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def error(self) -> dict[str, Any]:
        doc = json.loads(self.stderr.strip().splitlines()[-1])
        return doc["error"]


def free_port() -> int:
    """A loopback port nothing listened on a moment ago (the kernel's pick, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def in_time_wait(port: int) -> bool:
    """A TCP connection on 127.0.0.1:`port` in TIME-WAIT (Linux /proc/net/tcp, state 06): what
    is left of a connection the local end closed first, for about a minute."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in list(table)[1:]]
    return any(row[1] == local and row[3] == "06" for row in rows)


def leave_in_time_wait(port: int) -> None:
    """Leave a connection on 127.0.0.1:`port` in TIME-WAIT: a listener there accepts one and
    closes it first, as a sign-in's listener does; returns once /proc shows the TIME-WAIT."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # may be in TIME-WAIT
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            accepted.close()
            assert client.recv(1) == b""  # the listener's FIN arrived; ours follows on close
    for _ in range(1000):  # the kernel moves the closed end to TIME-WAIT as the FIN is taken
        if in_time_wait(port):
            return
        os.sched_yield()
    raise AssertionError(f"no TIME-WAIT on 127.0.0.1:{port}")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that nobody trusts and its key: `directory`/cert.pem, key.pem."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no inherited KEEPTRUSTS_* or keyring settings leak into a test."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "KEEPTRUSTS_CONFIG_DIR": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "xdg-config"),
        "PYTHONPATH": str(REPO),
        # no D-Bus unless a test brings one: keyring then picks its fail backend
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={home}/no-bus",
    }
    env.update(extra)
    return env


def kt(*args: str, env: dict[str, str], input: str | None = None, timeout: float = 60) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "kt_login", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start_kt(*args: str, env: dict[str, str], stdin: bool = False) -> subprocess.Popen[str]:
    """`kt ARGS` started and left running, stdout and stderr piped as text; stdin piped with
    stdin=True, else empty. The caller waits on what kt prints, then ends it."""
    return subprocess.Popen(
        [sys.executable, "-m", "kt_login", *args],
        env=env,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kt_at_once(runs: list[tuple[list[str], dict[str, str]]], timeout: float = 60) -> list[Result]:
    """Start one `kt ARGS` per (ARGS, ENV) in `runs` at once, then wait for all of them; the
    results in the same order. Any still running at the end is killed."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kt_login", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for args, env in runs
    ]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(Result(proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def start_device_login(
    env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """`kt auth login --device --insecure-storage --json EXTRA`, started; returned with the
    device code's JSON line (verification_uri, user_code, ...), which kt prints on stderr before
    it polls (a warning's JSON line may come first). The caller approves, then ends it."""
    proc = start_kt("auth", "login", "--device", "--insecure-storage", "--json", *extra, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("{") and "verification_uri" in (doc := json.loads(line)):
            return proc, doc
    proc.kill()
    raise AssertionError("kt printed no device code: " + proc.communicate()[1])


def password_login(
    env: dict[str, str],
    who: tuple[str, str] = ALICE,
    *extra: str,
    password: str | None = None,
    timeout: float = 60,
) -> Result:
    """`kt auth login --email … --password-stdin [extra]`, the password piped in."""
    return kt(
        "auth",
        "login",
        "--email",
        who[0],
        "--password-stdin",
        *extra,
        env=env,
        input=(who[1] if password is None else password) + "\n",
        timeout=timeout,
    )


def create_token(env: dict[str, str], name: str, profile: str, scope: str = "tokens:read") -> str:
    """`kt auth token create --name NAME --scope SCOPE --profile PROFILE`: the new secret."""
    r = kt(
        "auth", "token", "create", "--name", name, "--scope", scope, "--profile", profile, env=env
    )
    assert r.code == 0, r.stderr
    return r.stdout.strip()


def token_login(env: dict[str, str], token: str, profile: str) -> Result:
    """`kt auth login --with-token --insecure-storage --profile PROFILE`, the token piped in."""
    return kt(
        "auth",
        "login",
        "--with-token",
        "--insecure-storage",
        "--profile",
        profile,
        env=env,
        input=token + "\n",
    )


# read(2)'s number in /proc/PID/syscall, per machine (Linux's unistd tables)
_READ_SYSCALL = {"x86_64": "0", "aarch64": "63", "riscv64": "63", "ppc64le": "3", "s390x": "3"}


def blocked_reading_stdin(pid: int) -> bool:
    """Whether process `pid` is blocked in read(2) on its standard input (fd 0), as the kernel
    says in /proc/PID/syscall: "NR ARG0 …" while in a system call, "running" otherwise."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return fields[:2] == [_READ_SYSCALL[platform.machine()], "0x0"]


def wait_until_reading_stdin(proc: subprocess.Popen[str], deadline: float = 60) -> None:
    """Return once `proc` blocks reading its stdin (blocked_reading_stdin). Between looks it
    waits on the process (a pidfd), so kt ending first is seen at once, and fails."""
    give_up = time.monotonic() + deadline
    pidfd = os.pidfd_open(proc.pid)
    try:
        while not blocked_reading_stdin(proc.pid):
            if select.select([pidfd], [], [], 0.01)[0]:
                proc.wait()
                raise AssertionError(f"kt ended ({proc.returncode}): {proc.communicate()[1]}")
            if time.monotonic() > give_up:
                raise AssertionError(f"kt never read its stdin within {deadline} s")
    finally:
        os.close(pidfd)


@dataclass
class BlockedLogin:
    """A `kt auth login --password-stdin` process stopped where it reads the password."""

    proc: subprocess.Popen[str]

    def send_password(self, password: str, timeout: float = 60) -> Result:
        out, err = self.proc.communicate(password + "\n", timeout=timeout)
        return Result(self.proc.returncode, out, err)

    def interrupt(self, timeout: float = 20) -> Result:
        """Ctrl-C, as a terminal sends it."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=timeout)
        return Result(self.proc.returncode, out, err)


@contextmanager
def login_blocked_on_password(
    env: dict[str, str], who: tuple[str, str] = ALICE
) -> Iterator[BlockedLogin]:
    """`kt auth login --email WHO --password-stdin --insecure-storage`, nothing yet on stdin.

    Yields once kt blocks reading the password (wait_until_reading_stdin: the kernel's word, no
    sleep), with the keyring choice made and nothing sent to the server yet. The process is
    killed on the way out if the test left it running.
    """
    proc = start_kt(
        "auth",
        "login",
        "--email",
        who[0],
        "--password-stdin",
        "--insecure-storage",
        env=env,
        stdin=True,
    )
    try:
        wait_until_reading_stdin(proc)
        yield BlockedLogin(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def imported_modules(args: tuple[str, ...], env: dict[str, str]) -> set[str]:
    """The modules a `kt ARGS` process has loaded when it ends (kt's own `main`: `entry` leaves
    by os._exit, before anything could list them)."""
    code = (
        "import sys\n"
        f"sys.argv = ['kt', *{list(args)!r}]\n"
        "from kt_login.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return set(proc.stderr.split())


def start_browser_login(
    env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """`kt auth login --browser --no-browser --json EXTRA`, started, with the JSON line it prints
    before it waits (the one-time link, the redirect URI)."""
    proc = start_kt(
        "auth", "login", "--browser", "--no-browser", "--insecure-storage", "--json",
        "--timeout", "60", *extra, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("{") and "sign_in_url" in (doc := json.loads(line)):
            return proc, doc
    proc.kill()
    raise AssertionError("kt printed no sign-in link: " + proc.communicate()[1])


def listener_closed(link: str) -> bool:
    """Whether nothing listens any more on the port of kt's one-time sign-in link."""
    port = urlsplit(link).port
    assert port is not None
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def signed_in(env: dict[str, str]) -> bool:
    """Whether the profile of `env` has a usable session (`kt auth status` exits 0)."""
    return kt("auth", "status", env=env).code == 0
