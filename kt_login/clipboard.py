"""Putting a device sign-in's user code on the clipboard (`kt auth login --device --clipboard`,
issue 12): the code only, never the device code or any other secret.

Two ways, both used where they can work:

- OSC 52 (`ESC ] 52 ; c ; <base64> BEL`), written to the terminal kt's output goes to: the
  terminal itself sets its clipboard, so it also works over SSH, on the person's own computer.
  Nothing answers it, so kt cannot know whether the terminal allows it (many do; some, such as
  VTE-based ones, ignore it).
- the platform's tool, whose exit status says whether it worked: pbcopy (macOS), clip.exe
  (Windows and WSL), wl-copy (a Wayland session), `xclip -selection clipboard` (an X display).
  Over SSH pbcopy and clip.exe would fill the server's clipboard, not the person's, so they are
  not used there; wl-copy and xclip are, when SSH forwards the display they need.

Like browser.py's launchers, the tool runs without KEEPTRUSTS_API_TOKEN in its environment and
gets the code on stdin, never in its argv (which any local user can read).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from .browser import in_wsl, ssh_session

TOOL_NAMES = ("pbcopy", "wl-copy", "xclip", "clip.exe")
_TOOL_TIMEOUT = 10.0


def osc52(text: str) -> str:
    """The OSC 52 sequence that asks a terminal to put `text` on its clipboard."""
    return "\x1b]52;c;" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "\x07"


@dataclass(frozen=True)
class Tool:
    name: str  # what to call it in a message
    argv: list[str]


def platform_tool(env: Mapping[str, str], platform: str = sys.platform) -> Tool | None:
    """The clipboard tool that reaches the person's clipboard from here, if one is on PATH."""
    path = env.get("PATH", os.defpath)
    remote = ssh_session(env) is not None

    def found(name: str, *args: str) -> Tool | None:
        where = shutil.which(name, path=path)
        return Tool(name, [where, *args]) if where else None

    if platform == "darwin":
        return None if remote else found("pbcopy")
    if platform == "win32":
        return None if remote else found("clip.exe")
    tool = None
    if env.get("WAYLAND_DISPLAY"):
        tool = found("wl-copy")
    if tool is None and env.get("DISPLAY"):
        tool = found("xclip", "-selection", "clipboard")
    if tool is None and not remote and in_wsl(env, platform):
        tool = found("clip.exe")
    return tool


def copy_with(tool: Tool, text: str, env: Mapping[str, str]) -> str | None:
    """Give `text` to `tool` on stdin; None when it took it, else why not (one phrase)."""
    child_env = {k: v for k, v in env.items() if k != "KEEPTRUSTS_API_TOKEN"}
    try:
        done = subprocess.run(  # noqa: S603 - a clipboard tool found on PATH; the text on stdin
            tool.argv,
            input=text.encode("utf-8"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env,
            timeout=_TOOL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"{tool.name} did not finish within {_TOOL_TIMEOUT:g} s"
    except OSError as exc:
        return f"{tool.name} could not be run ({exc.strerror or 'error'})"
    if done.returncode != 0:
        return f"{tool.name} failed (exit status {done.returncode})"
    return None
