"""kt remembers which keyring backend keyring chose when a session was saved (sessions.json,
"keyring_backend"), and loads that one by name instead of letting keyring try every backend
again (issue 16: that choice imports the macOS backend, which runs ctypes.util.find_library).
What keyring's own configuration says still wins. Real kt, real GNOME Keyring on a private bus."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.kt_process import ALICE, base_env, imported_modules, kt, password_login

SECRET_SERVICE = "keyring.backends.SecretService.Keyring"


@pytest.fixture
def keyring_env(tmp_path: Path, devserver, secret_service: dict[str, str]) -> dict[str, str]:
    # a profile of its own: the keyring daemon is shared by the whole test session
    profile = f"remembered-{uuid.uuid4().hex[:8]}"
    return base_env(
        tmp_path, KEEPTRUSTS_API_URL=devserver.url, KEEPTRUSTS_PROFILE=profile, **secret_service
    )


def index(env: dict[str, str]) -> dict[str, object]:
    return json.loads((Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "sessions.json").read_text())


def test_the_backend_a_session_went_to_is_loaded_by_name_afterwards(keyring_env):
    assert password_login(keyring_env, ALICE).code == 0
    assert index(keyring_env)["keyring_backend"] == SECRET_SERVICE

    mods = imported_modules(("auth", "whoami", "--json"), keyring_env)
    assert {"kt_login.cli.whoami", "keyring.backends.SecretService"} <= mods
    # keyring's own choice would have imported every backend it ships
    assert "keyring.backends.macOS" not in mods
    whoami = kt("auth", "whoami", "--json", env=keyring_env)
    assert whoami.code == 0, whoami.stderr
    assert whoami.json()["credential_source"] == "keyring"


def test_keyring_configuration_still_wins_over_the_remembered_backend(keyring_env):
    assert password_login(keyring_env, ALICE).code == 0
    chosen = dict(keyring_env, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    r = kt("auth", "whoami", env=chosen)
    assert r.code != 0
    assert "keyring is unavailable" in r.stderr and "Traceback" not in r.stderr


def test_a_remembered_name_outside_keyring_backends_is_never_imported(keyring_env):
    assert password_login(keyring_env, ALICE).code == 0
    path = Path(keyring_env["KEEPTRUSTS_CONFIG_DIR"]) / "sessions.json"
    doc = index(keyring_env)
    doc["keyring_backend"] = "tests.fake_keyrings.HangingKeyring"
    path.write_text(json.dumps(doc))
    mods = imported_modules(("auth", "whoami", "--json"), keyring_env)
    assert "tests.fake_keyrings" not in mods
    assert "keyring.backends.macOS" in mods  # keyring chose, as it always did
    assert kt("auth", "whoami", env=keyring_env).code == 0
