"""Opening the sign-in page: can a browser be used here, and open it without side effects.

Python's `webbrowser` semantics, so `BROWSER` is honoured. The launcher's output is kept off
stdout (it would corrupt --json output) and `KEEPTRUSTS_API_TOKEN` is not passed to it (HY-07).
URLs are validated before they get here (flows.authcode.safe_browser_url).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

Opener = Callable[[str], bool]


def no_browser_reason(env: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """Why no local browser can be used, or None when one probably can."""
    if env.get("BROWSER"):
        return None
    if env.get("SSH_CONNECTION") or env.get("SSH_CLIENT") or env.get("SSH_TTY"):
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            return "this is an SSH session without a display"
    if platform.startswith("linux"):
        if _in_container(env):
            return "this looks like a container"
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            return "there is no graphical display (DISPLAY/WAYLAND_DISPLAY unset)"
    return None


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
