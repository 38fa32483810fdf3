"""Run the real `kt` entry point in a subprocess, the way a user's shell does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


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
