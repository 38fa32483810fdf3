"""Sessions too large for the keyring, through the real `kt` (issue 13 item 6, docs/security.md
ST-09): a keyring that refuses secrets over N bytes (tests/fake_keyrings.SmallFileKeyring, kept
in a file so it outlives each process) and the real Secret Service with a configured limit."""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from pathlib import Path

import pytest

from kt_login.store import KEYRING_SERVICE, SessionStore
from tests.fake_keyrings import SmallFileKeyring
from tests.fixtures.devserver import DevServer
from tests.kt_process import ALICE, Result, base_env, kt, password_login
from tests.sample_sessions import ACCESS, REFRESH, make_big_oidc_session

SMALL = "tests.fake_keyrings.SmallFileKeyring"
LIMIT = "300"  # bytes: no session fits, the key item does


@pytest.fixture
def env(tmp_path: Path, devserver: DevServer) -> dict[str, str]:
    return base_env(
        tmp_path,
        KEEPTRUSTS_API_URL=devserver.url,
        PYTHON_KEYRING_BACKEND=SMALL,
        KT_TEST_KEYRING_FILE=str(tmp_path / "keyring.json"),
        KT_TEST_KEYRING_LIMIT=LIMIT,
    )


def keyring_items(env: dict[str, str]) -> dict[str, str]:
    path = Path(env["KT_TEST_KEYRING_FILE"])
    items: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    return items


def sealed(env: dict[str, str], profile: str = "default") -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "envelopes" / f"{profile}.json"


def seed_big_session(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, profile: str) -> None:
    """A big OIDC session saved through the store over the same small keyring."""
    monkeypatch.setenv("KT_TEST_KEYRING_FILE", env["KT_TEST_KEYRING_FILE"])
    monkeypatch.setenv("KT_TEST_KEYRING_LIMIT", LIMIT)
    sessions = SessionStore(Path(env["KEEPTRUSTS_CONFIG_DIR"]), keyring_backend=SmallFileKeyring())
    big = make_big_oidc_session(api_url=env["KEEPTRUSTS_API_URL"])
    sessions.save(profile, big, into=sessions.in_keyring)


def assert_store_error(r: Result, *words: str, hint: str) -> None:
    """Exit 1, one line naming the problem, then the command that fixes it; no traceback."""
    assert r.code == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, r.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert hint in lines[1], lines[1]


def test_password_login_too_big_for_the_keyring_is_sealed_and_works(env, devserver):
    login = password_login(env, ALICE)
    assert login.code == 0, login.stderr
    assert "Session stored in: keyring (envelope)." in login.stdout
    assert "plaintext" not in login.stdout + login.stderr

    status = kt("auth", "status", "--json", env=env)
    assert status.code == 0, status.stderr
    assert status.json()["credential_source"] == "keyring (envelope)"
    assert "Stored in: keyring (envelope)" in kt("auth", "status", env=env).stdout
    shown = kt("config", "show", env=env)
    assert shown.code == 0 and "keyring (envelope)" in shown.stdout, shown.stdout
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0 and who.json()["user"]["email"] == ALICE[0], who.stderr

    # what is kept: a key alone in the keyring, the session only sealed, nothing in plaintext
    [item] = keyring_items(env).values()
    assert json.loads(item).keys() == {"kt_envelope", "key"}
    path = sealed(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = kt("auth", "print-access-token", env=env).stdout.strip()
    assert token and token not in path.read_text() and ALICE[0] not in path.read_text()
    assert not (Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "credentials").exists()

    out = kt("auth", "logout", env=env)
    assert out.code == 0, out.stderr
    assert keyring_items(env) == {} and not path.exists()
    assert kt("auth", "status", env=env).code == 3


def test_a_refresh_of_a_sealed_session_stays_sealed(tmp_path, devserver_factory):
    server = devserver_factory("--access-token-ttl", "1")
    env = base_env(
        tmp_path,
        KEEPTRUSTS_API_URL=server.url,
        PYTHON_KEYRING_BACKEND=SMALL,
        KT_TEST_KEYRING_FILE=str(tmp_path / "keyring.json"),
        KT_TEST_KEYRING_LIMIT=LIMIT,
    )
    assert password_login(env, ALICE).code == 0
    item = keyring_items(env)
    first = kt("auth", "print-access-token", env=env).stdout
    second = kt("auth", "print-access-token", "--min-ttl", "1h", env=env)
    assert second.stdout != first  # refreshed, saved, and read back from the envelope
    assert keyring_items(env) == item  # the same key: only the file was rewritten
    assert kt("auth", "whoami", env=env).code == 0


def test_a_big_oidc_session_round_trips_through_kt(env, monkeypatch):
    seed_big_session(env, monkeypatch, "default")
    big = make_big_oidc_session(api_url=env["KEEPTRUSTS_API_URL"])
    printed = kt("auth", "print-access-token", env=env)
    assert printed.code == 0, printed.stderr
    assert printed.stdout == big.access_token + "\n"
    doc = kt("auth", "status", "--json", env=env).json()
    assert doc["credential_source"] == "keyring (envelope)"
    assert doc["identity"]["issuer"] == "https://login.example.com"
    on_disk = "".join(p.read_text() for p in Path(env["KEEPTRUSTS_CONFIG_DIR"]).rglob("*.json"))
    assert ACCESS not in on_disk + json.dumps(keyring_items(env))
    assert REFRESH not in on_disk + json.dumps(keyring_items(env))


def test_a_tampered_envelope_is_a_clear_error_and_a_login_replaces_it(env, monkeypatch):
    seed_big_session(env, monkeypatch, "default")
    path = sealed(env)
    doc = json.loads(path.read_text())
    doc["ciphertext"] = doc["ciphertext"][::-1]
    path.write_text(json.dumps(doc))

    for command in (("auth", "status"), ("auth", "whoami"), ("auth", "print-access-token")):
        r = kt(*command, env=env)
        assert_store_error(r, "does not open with its key", str(path), hint="kt auth login")
    assert kt("auth", "status", "--json", env=env).error()["code"] == "kt.store_error"

    login = password_login(env, ALICE)
    assert login.code == 0, login.stderr
    assert "cannot be read" in login.stderr  # said, then replaced
    assert kt("auth", "whoami", env=env).code == 0


def test_an_envelope_whose_key_is_gone_says_so(env, monkeypatch):
    seed_big_session(env, monkeypatch, "work")
    Path(env["KT_TEST_KEYRING_FILE"]).write_text("{}")  # the keyring was reset
    r = kt("auth", "status", "--profile", "work", env=env)
    assert_store_error(
        r, "its key is no longer in the OS keyring", hint="kt auth login --profile work"
    )
    out = kt("auth", "logout", "--profile", "work", env=env)
    assert "Traceback" not in out.stderr
    assert not sealed(env, "work").exists()
    assert kt("auth", "status", "--profile", "work", env=env).code == 3


def test_an_envelope_copied_to_another_profile_does_not_open(env, monkeypatch):
    seed_big_session(env, monkeypatch, "work")
    seed_big_session(env, monkeypatch, "home")
    items = keyring_items(env)
    # key and file of "work" put in place of "home"'s
    items[f"{KEYRING_SERVICE}/profile:home"] = items[f"{KEYRING_SERVICE}/profile:work"]
    Path(env["KT_TEST_KEYRING_FILE"]).write_text(json.dumps(items))
    shutil.copy(sealed(env, "work"), sealed(env, "home"))
    r = kt("auth", "print-access-token", "--profile", "home", env=env)
    assert r.stdout == ""
    assert_store_error(r, "belongs to another profile", hint="kt auth login --profile home")
    assert kt("auth", "print-access-token", "--profile", "work", env=env).code == 0


def test_logout_all_removes_every_key_and_file(env, monkeypatch):
    seed_big_session(env, monkeypatch, "work")
    seed_big_session(env, monkeypatch, "home")
    r = kt("auth", "logout", "--all", env=env)
    assert "Traceback" not in r.stderr
    assert keyring_items(env) == {}
    assert list((Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "envelopes").iterdir()) == []


def test_the_secret_service_with_a_configured_small_limit(
    tmp_path: Path, devserver: DevServer, secret_service: dict[str, str]
):
    env = base_env(
        tmp_path,
        KEEPTRUSTS_API_URL=devserver.url,
        KEEPTRUSTS_PROFILE=f"env-{uuid.uuid4().hex[:12]}",
        KEEPTRUSTS_KEYRING_MAX_BYTES="256",
        **secret_service,
    )
    login = password_login(env, ALICE)
    assert login.code == 0, login.stderr
    assert "keyring (envelope)" in login.stdout
    try:
        assert kt("auth", "status", "--json", env=env).json()["credential_source"] == (
            "keyring (envelope)"
        )
        assert kt("auth", "whoami", env=env).code == 0
        # without the limit the same session is read back the same way (the key is in the
        # keyring either way), and the next save keeps it whole
        plain = dict(env)
        del plain["KEEPTRUSTS_KEYRING_MAX_BYTES"]
        assert kt("auth", "whoami", env=plain).code == 0
    finally:
        out = kt("auth", "logout", env=env)
    assert out.code == 0, out.stderr
    assert not sealed(env, env["KEEPTRUSTS_PROFILE"]).exists()
    assert os.listdir(Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "envelopes") == []
