"""Opening the sign-in page: can a browser be used here, and open it without side effects.

Python's `webbrowser` semantics, so `BROWSER` is honoured. The launcher's output is kept off
stdout (it would corrupt --json output) and `KEEPTRUSTS_API_TOKEN` is not passed to it (HY-07).
URLs are validated before they get here (flows.authcode.safe_browser_url).

Two places where the loopback needs more than that (issue 13 item 3): in WSL the browser is
Windows' own, opened with `wslview`, else `cmd.exe /c start`, else `powershell.exe Start-Process`
(`local_opener`); over SSH the browser is on the person's own computer, which reaches kt's
listener only through a tunnel (`ssh_session(...).tunnel`).
"""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

Opener = Callable[[str], bool]


def no_browser_reason(env: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """Why no local browser can be used, or None when one probably can."""
    if env.get("BROWSER"):
        return None
    if _over_ssh(env):
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            return "this is an SSH session without a display"
    if wsl_launcher(env, platform) is not None:
        return None  # WSL: Windows' browser, whatever DISPLAY says
    if platform.startswith("linux"):
        if _in_container(env):
            return "this looks like a container"
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            return "there is no graphical display (DISPLAY/WAYLAND_DISPLAY unset)"
    return None


def _over_ssh(env: Mapping[str, str]) -> bool:
    return bool(env.get("SSH_CONNECTION") or env.get("SSH_CLIENT") or env.get("SSH_TTY"))


@dataclass(frozen=True)
class SshSession:
    """Who is signed in over SSH, and to which address of this machine."""

    user: str
    host: str  # the server address the client connected to (SSH_CONNECTION), else the host name
    port: int  # the SSH server's port

    def tunnel(self, port: int, redirect_host: str = "127.0.0.1") -> list[str]:
        """The words of the command to run on the person's own computer so that its browser's
        redirect to the loopback `port` reaches kt here: `ssh -L PORT:127.0.0.1:PORT user@host`."""
        target = "[::1]" if redirect_host == "[::1]" else "127.0.0.1"  # kt listens on both for
        words = ["ssh", "-L", f"{port}:{target}:{port}"]  # localhost, so either literal will do
        if self.port != 22:
            words += ["-p", str(self.port)]
        return [*words, f"{self.user}@{self.host}"]


def ssh_session(env: Mapping[str, str]) -> SshSession | None:
    """The SSH session kt runs in (SSH_CONNECTION, SSH_CLIENT or SSH_TTY set), or None."""
    if not _over_ssh(env):
        return None
    user = env.get("USER") or env.get("LOGNAME") or getpass.getuser()
    host, port = socket.gethostname(), 22
    fields = env.get("SSH_CONNECTION", "").split()  # client address, port, server address, port
    if len(fields) == 4 and fields[3].isdigit():
        try:
            host, port = str(ipaddress.ip_address(fields[2])), int(fields[3])
        except ValueError:
            pass
    return SshSession(user, host, port)


# What each WSL launcher gets before the URL, in the order they are tried.
_WSL_LAUNCHERS = (
    ("wslview", ()),
    ("cmd.exe", ("/c", "start", "")),  # "" is start's window title: the URL is not taken for one
    ("powershell.exe", ("-NoProfile", "-NonInteractive", "-Command", "Start-Process")),
)
# cmd.exe and PowerShell give `&`, `%`, `;`, quotes... a meaning of their own: only URLs made of
# these characters are handed to them (kt's one-time link always is).
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.:\[\]]+(/[A-Za-z0-9._~/-]*)?")


def _proc_version() -> str:
    try:
        return Path("/proc/version").read_text(errors="replace")
    except OSError:
        return ""


def in_wsl(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Windows Subsystem for Linux: WSL_DISTRO_NAME, else 'microsoft' in /proc/version."""
    if not platform.startswith("linux"):
        return False
    return bool(env.get("WSL_DISTRO_NAME")) or "microsoft" in _proc_version().lower()


def wsl_launcher(env: Mapping[str, str], platform: str = sys.platform) -> list[str] | None:
    """In WSL, the command (before the URL) that opens Windows' browser: wslview, else
    `cmd.exe /c start ""`, else `powershell.exe ... Start-Process`, as found on PATH; else None."""
    if env.get("BROWSER") or not in_wsl(env, platform):
        return None
    path = env.get("PATH", os.defpath)
    for name, before_url in _WSL_LAUNCHERS:
        found = shutil.which(name, path=path)
        if found is not None:
            return [found, *before_url]
    return None


def local_opener(env: Mapping[str, str], platform: str = sys.platform) -> tuple[Opener, str | None]:
    """How to open the sign-in page here, and the launcher to name when it is not the system's
    default (in WSL: "wslview", "cmd.exe" or "powershell.exe")."""
    launcher = wsl_launcher(env, platform)
    if launcher is None:
        return system_opener, None
    return _launcher_opener(launcher), Path(launcher[0]).name


def _launcher_opener(launcher: list[str]) -> Opener:
    def open_with(url: str) -> bool:
        if not _PLAIN_URL.fullmatch(url):
            return False  # never anything a Windows shell would read as more than a URL
        with _launcher_isolation():
            try:
                done = subprocess.run(  # noqa: S603 - a launcher found on PATH, and the URL
                    [*launcher, url], stdin=subprocess.DEVNULL, timeout=15, check=False
                )
            except (OSError, subprocess.TimeoutExpired):
                return False
        return done.returncode == 0

    return open_with


def _in_container(env: Mapping[str, str]) -> bool:
    if env.get("container") or env.get("KUBERNETES_SERVICE_HOST"):
        return True
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


@contextlib.contextmanager
def _launcher_isolation() -> Iterator[None]:
    """Children started while opening see stderr as their stdout and no API token."""
    saved_token = os.environ.pop("KEEPTRUSTS_API_TOKEN", None)
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
        if saved_token is not None:
            os.environ["KEEPTRUSTS_API_TOKEN"] = saved_token


def system_opener(url: str) -> bool:
    import webbrowser

    with _launcher_isolation():
        try:
            return webbrowser.open(url, new=1, autoraise=True)
        except webbrowser.Error:
            return False
