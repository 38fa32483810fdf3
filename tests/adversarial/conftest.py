"""Fixtures for the adversarial suite: one hostile AS per session, a seeded good session, and a
runner for the real `kt` process."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kt_process import Result, base_env, kt

from .hostile_as import HostileAS

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def hostile_as() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


GENERIC_API_URL = "https://api.invalid"


class Box:
    """One user's machine: a home with a config dir, and the kt process run in it.

    By default in generic mode: the API URL is another server than the hostile AS, which is
    then a foreign issuer (its sessions' tokens are its own). With `api_url=server.issuer` the
    hostile AS is the API too (it serves a trivial /v1/auth/whoami), so its sessions are API
    sessions that API commands use and refresh."""

    def __init__(self, home: Path, server: HostileAS, *, api_url: str = GENERIC_API_URL) -> None:
        self.home = home
        self.server = server
        self.config = home / "config"
        self.opener_log = home / "opener.log"
        self.env = base_env(
            home,
            KEEPTRUSTS_API_URL=api_url,
            BROWSER=f"{sys.executable} {HERE / 'browser.py'} %s",
            KT_ADV_OPENER_LOG=str(self.opener_log),
            PYTHONDONTWRITEBYTECODE="1",
        )

    def kt(self, *args: str, timeout: float = 60) -> Result:
        return kt(*args, env=self.env, timeout=timeout)

    def login(self, *extra: str) -> Result:
        return self.kt(
            "auth",
            "login",
            "--browser",
            "--issuer",
            self.server.issuer,
            "--client-id",
            "kt-cli",
            "--insecure-storage",
            "--timeout",
            "20",
            "--json",
            *extra,
        )

    @property
    def opener_calls(self) -> list[str]:
        if not self.opener_log.exists():
            return []
        return self.opener_log.read_text().splitlines()

    @property
    def credentials(self) -> Path:
        return self.config / "credentials" / "default.json"

    def expire_soon(self) -> dict[str, object]:
        """Make the stored access token expire in 5 s (the file keeps mode 0600); returns the
        stored document as it was written."""
        doc: dict[str, object] = json.loads(self.credentials.read_bytes())
        doc["expires_at"] = time.time() + 5
        tmp = self.credentials.with_name("seed.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
        os.replace(tmp, self.credentials)
        return doc

    def snapshot(self) -> dict[str, tuple[int, bytes | str]]:
        """Every file under the config dir with its mode (bytes; a symlink's target). The empty
        refresh-lock files (taken before a refresh, LC-02) hold no state and are left out."""
        out: dict[str, tuple[int, bytes | str]] = {}
        for path in sorted(self.config.rglob("*")):
            if path.parent.name == "locks" and path.suffix == ".lock":
                assert path.stat().st_size == 0
                continue
            st = os.lstat(path)
            if path.is_symlink():
                out[str(path)] = (st.st_mode, os.readlink(path))
            elif path.is_file():
                out[str(path)] = (st.st_mode, path.read_bytes())
        return out


@pytest.fixture(scope="session")
def seeded_config(hostile_as: HostileAS, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config dir holding an earlier good browser session with the hostile AS (file store)."""
    home = tmp_path_factory.mktemp("seed")
    box = Box(home, hostile_as)
    hostile_as.reset()
    result = box.login()
    assert result.code == 0, result.stderr
    assert box.credentials.is_file()
    return box.config


@pytest.fixture(scope="session")
def seeded_api_config(hostile_as: HostileAS, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config dir holding an earlier good browser session with the hostile AS as the API and
    its own issuer (file store)."""
    home = tmp_path_factory.mktemp("seed-api")
    box = Box(home, hostile_as, api_url=hostile_as.issuer)
    hostile_as.reset()
    result = box.login()
    assert result.code == 0, result.stderr
    assert box.credentials.is_file()
    return box.config


def _machine(box: Box, seeded: Path) -> Box:
    shutil.copytree(seeded, box.config, symlinks=True)
    os.chmod(box.config, 0o700)
    box.server.reset()
    return box


@pytest.fixture
def box(hostile_as: HostileAS, seeded_config: Path, tmp_path: Path) -> Box:
    """A machine already signed in (the seeded session), and a provider reset to honest."""
    return _machine(Box(tmp_path, hostile_as), seeded_config)


@pytest.fixture
def api_box(hostile_as: HostileAS, seeded_api_config: Path, tmp_path: Path) -> Box:
    """A machine signed in at the hostile AS as the API's own issuer: API commands (whoami)
    use the session and refresh it at the provider's token endpoint."""
    return _machine(Box(tmp_path, hostile_as, api_url=hostile_as.issuer), seeded_api_config)
