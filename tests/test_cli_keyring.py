"""Where `kt` keeps a session, end to end: the real `kt` process, a real `kt-devserver`, and a real
GNOME Keyring on a private D-Bus session bus (SECURITY.md ST-01, ST-02, ST-04, ST-08).

The keyring daemon is shared by the whole test session, so every test but the one that checks
the documented `profile:default` item uses a profile of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx2
import pytest
import secretstorage
from jeepney.io.blocking import open_dbus_connection
from secretstorage.collection import Collection

from kt_login.store import KEYRING_SERVICE
from tests.fixtures.devserver import DevServer, start_devserver
from tests.kt_process import (
    ALICE,
    Result,
    base_env,
    kt,
    login_blocked_on_password,
    password_login,
)

HANGING = "tests.fake_keyrings.HangingKeyring"
TIMEOUT = 20  # seconds; a hanging keyring must never get near this

# ST-01 as a user would check it: another process, keyring's own backend choice, same bus
_READ_WITH_KEYRING = """
import json, sys
import keyring
backend = keyring.get_keyring()
print(json.dumps({
    "backend": f"{type(backend).__module__}.{type(backend).__qualname__}",
    "secret": keyring.get_password(sys.argv[1], sys.argv[2]),
}))
"""


def read_with_keyring(env: dict[str, str], profile: str) -> str | None:
    proc = subprocess.run(
        [sys.executable, "-c", _READ_WITH_KEYRING, KEYRING_SERVICE, f"profile:{profile}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["backend"] == "keyring.backends.SecretService.Keyring"
    return doc["secret"]


@contextmanager
def _collection(env: dict[str, str]) -> Iterator[Collection]:
    with closing(open_dbus_connection(env["DBUS_SESSION_BUS_ADDRESS"])) as conn:
        yield secretstorage.get_default_collection(conn)


def keyring_item(env: dict[str, str], profile: str) -> str | None:
    """The secret of kt's item for `profile`, read directly over the test's bus."""
    with _collection(env) as collection:
        found = [i.get_secret().decode() for i in collection.search_items(_attrs(profile))]
    assert len(found) <= 1
    return found[0] if found else None


def set_keyring_item(env: dict[str, str], profile: str, secret: str | None) -> None:
    """Replace kt's item for `profile` with `secret`, or delete it (None)."""
    with _collection(env) as collection:
        for item in collection.search_items(_attrs(profile)):
            item.delete()
        if secret is not None:
            # the attributes keyring itself writes, so its next write replaces this item
            attributes = dict(_attrs(profile), application="Python keyring library")
            collection.create_item(f"test {profile}", attributes, secret.encode())


def _attrs(profile: str) -> dict[str, str]:
    return {"service": KEYRING_SERVICE, "username": f"profile:{profile}"}


def login(env: dict[str, str], *extra: str, password: str = ALICE[1]) -> Result:
    return password_login(env, ALICE, *extra, password=password, timeout=TIMEOUT)


def config_dir(env: dict[str, str]) -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"])


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def credential_files(env: dict[str, str]) -> list[Path]:
    return files_under(config_dir(env) / "credentials")


def assert_clean_failure(r: Result, *words: str) -> None:
    """Exit 1, a one-line error, then one line of guidance that names --insecure-storage."""
    assert r.code == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("Error: ")
    for word in words:
        assert word in lines[0]
    assert "--insecure-storage" in lines[1]


@pytest.fixture(scope="module")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One server for the module: every test signs in afresh, in its own config dir."""
    server = start_devserver(tmp_path_factory.mktemp("devserver"))
    yield server
    server.stop()


@pytest.fixture
def keyring_env(tmp_path: Path, devserver, secret_service: dict[str, str]) -> dict[str, str]:
    """kt with the unlocked keyring on its bus, a profile of its own, and the dev server."""
    return base_env(
        tmp_path,
        KEEPTRUSTS_API_URL=devserver.url,
        KEEPTRUSTS_PROFILE=f"kr-{uuid.uuid4().hex[:12]}",
        **secret_service,
    )


# --------------------------------------------------------------------------- unlocked keyring


@pytest.fixture
def default_profile_env(tmp_path: Path, devserver, secret_service: dict[str, str]):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, **secret_service)
    set_keyring_item(env, "default", None)  # the daemon outlives a test that failed midway
    yield env
    set_keyring_item(env, "default", None)


def test_login_keeps_the_session_in_the_keyring_only(default_profile_env, devserver):
    env = default_profile_env
    r = login(env)
    assert r.code == 0, r.stderr
    assert "Warning" not in r.stderr  # no plaintext warning: nothing goes to a file

    st = kt("auth", "status", "--json", env=env)
    assert st.code == 0, st.stderr
    assert st.json()["credential_source"] == "keyring"
    assert st.json()["profile"] == "default"

    # ST-01: the item is under the documented service and account, readable by another process
    blob = read_with_keyring(env, "default")
    assert blob is not None and blob == keyring_item(env, "default")
    stored = json.loads(blob)
    access, refresh = stored["access_token"], stored["refresh_token"]
    assert access and refresh and stored["user_email"] == ALICE[0]

    # ...and no file anywhere in the config dir (or the rest of $HOME) holds either token
    assert credential_files(env) == []
    swept = files_under(Path(env["HOME"]))
    assert any(p.is_relative_to(config_dir(env)) for p in swept)  # the sessions index
    for path in swept:
        data = path.read_bytes()
        assert access.encode() not in data and refresh.encode() not in data, path
    assert access not in st.stdout + st.stderr and refresh not in st.stdout + st.stderr

    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    assert who.json()["user"]["email"] == ALICE[0]
    assert who.json()["credential_source"] == "keyring"

    out = kt("auth", "logout", env=env)
    assert out.code == 0, out.stderr
    assert "Logged out" in out.stdout
    assert keyring_item(env, "default") is None
    # ST-08: revoked on the server, not only forgotten here
    assert not server_accepts(devserver, access)
    refreshed = httpx2.post(devserver.url + "/v1/auth/refresh", json={"refresh_token": refresh})
    assert refreshed.status_code == 401
    again = kt("auth", "logout", env=env)
    assert again.code == 0, again.stderr
    assert "was not logged in" in again.stdout


def server_accepts(devserver: DevServer, access_token: str) -> bool:
    headers = {"Authorization": f"Bearer {access_token}"}
    status = httpx2.get(devserver.url + "/v1/auth/whoami", headers=headers).status_code
    assert status in (200, 401)
    return status == 200


def test_switching_from_the_file_to_the_keyring(keyring_env, devserver):
    env = keyring_env
    profile = env["KEEPTRUSTS_PROFILE"]
    r = login(env, "--insecure-storage")
    assert r.code == 0, r.stderr
    (session_file,) = credential_files(env)
    old = json.loads(session_file.read_text())
    assert keyring_item(env, profile) is None

    r = login(env)
    assert r.code == 0, r.stderr
    assert "plaintext" not in r.stderr
    assert not session_file.exists()
    assert credential_files(env) == []
    blob = keyring_item(env, profile)
    assert blob is not None and json.loads(blob)["access_token"] != old["access_token"]
    st = kt("auth", "status", "--json", env=env)
    assert st.json()["credential_source"] == "keyring"
    assert not server_accepts(devserver, old["access_token"])  # the replaced session ended

    assert kt("auth", "logout", env=env).code == 0
    assert keyring_item(env, profile) is None


# --------------------------------------------------------------------------- locked keyring


@pytest.fixture
def locked_env(tmp_path: Path, devserver, locked_secret_service: dict[str, str]):
    return base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, **locked_secret_service)


def test_locked_keyring_fails_closed_with_guidance(locked_env):
    env = locked_env
    r = login(env)
    assert_clean_failure(r, "keyring is locked")
    assert credential_files(env) == []
    assert kt("auth", "status", env=env).code == 3

    # the keyring is probed before the password is read: with nothing on stdin, the answer
    # is still about the keyring
    r = kt("auth", "login", "--email", ALICE[0], "--password-stdin", "--json", env=env, input="")
    assert r.code == 1
    err = r.error()
    assert err["code"] == "kt.store_unavailable"
    assert "--insecure-storage" in err["hint"]
    assert len(r.stderr.strip().splitlines()) == 1
    assert credential_files(env) == []


def test_locked_keyring_with_insecure_storage_warns_before_writing(locked_env):
    env = locked_env
    with login_blocked_on_password(env) as login:
        # kt blocks reading the password: the keyring's refusal did not end it, nothing is written
        assert credential_files(env) == []
        result = login.send_password(ALICE[1], timeout=TIMEOUT)
    assert result.code == 0, result.stderr
    # once the server signed the person in, kt warned once, before writing the file
    (warning,) = [line for line in result.stderr.splitlines() if "plaintext" in line]
    assert warning.startswith("Warning: "), warning
    assert "Traceback" not in result.stderr
    assert "file (plaintext)" in result.stdout
    (session_file,) = credential_files(env)
    assert session_file.name == "default.json"

    st = kt("auth", "status", env=env)
    assert st.code == 0, st.stderr
    assert "Stored in: file (plaintext)" in st.stdout
    assert kt("auth", "status", "--json", env=env).json()["credential_source"] == (
        "file (plaintext)"
    )
    # a file session needs no keyring: it works while the keyring stays locked
    assert kt("auth", "whoami", env=env).code == 0


# --------------------------------------------------------------------------- hanging keyring


def hanging(env: dict[str, str]) -> dict[str, str]:
    return dict(env, PYTHON_KEYRING_BACKEND=HANGING, KEEPTRUSTS_KEYRING_TIMEOUT="1")


def test_hanging_keyring_login_times_out_cleanly(tmp_path: Path, devserver):
    env = hanging(base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url))
    r = login(env)  # kt() raises TimeoutExpired if kt waits on the keyring for good
    assert_clean_failure(r, "did not answer within 1 s")
    assert not config_dir(env).exists()

    # Nothing says a session was ever kept in the keyring: "not logged in" (exit 3) is the
    # truth, and `kt auth login` is the next step, where the timeout is then reported.
    who = kt("auth", "whoami", "--json", env=env, timeout=TIMEOUT)
    assert who.code == 3, who.stderr
    assert who.error()["code"] == "auth.login_required"
    assert "Traceback" not in who.stderr
    assert not config_dir(env).exists()


def test_hanging_keyring_holding_a_session_is_an_error_not_logged_out(keyring_env):
    assert login(keyring_env).code == 0  # the session is in the (real) keyring
    env = hanging(keyring_env)
    # Now the keyring hangs: kt cannot tell whether the session is still there, so it says so
    # (exit 1, naming the timeout) instead of claiming "not logged in".
    r = kt("auth", "whoami", env=env, timeout=TIMEOUT)
    assert_clean_failure(r, "did not answer within 1 s")
    r = kt("auth", "status", "--json", env=env, timeout=TIMEOUT)
    assert r.code == 1 and r.error()["code"] == "kt.store_unavailable"
    assert "1 s" in r.error()["message"]
    assert credential_files(env) == []

    # once the keyring answers again, the session is still there and logout removes it
    assert kt("auth", "whoami", env=keyring_env).code == 0
    assert kt("auth", "logout", env=keyring_env).code == 0
    assert keyring_item(keyring_env, keyring_env["KEEPTRUSTS_PROFILE"]) is None


def test_corrupt_keyring_item_does_not_lock_the_user_out(keyring_env):
    env = keyring_env
    profile = env["KEEPTRUSTS_PROFILE"]
    assert login(env).code == 0
    set_keyring_item(env, profile, "{not json")
    st = kt("auth", "status", env=env)
    assert st.code == 1 and "corrupt" in st.stderr and "Traceback" not in st.stderr

    # logout forgets what it cannot read (and says it could not revoke it)
    out = kt("auth", "logout", "--json", env=env)
    assert out.code == 0, out.stderr
    assert out.json()["logged_out"] == [
        {"profile": profile, "was_logged_in": True, "server_revoked": False}
    ]
    assert "could not revoke" in out.stderr
    assert keyring_item(env, profile) is None

    # the hint of a corrupt session is "run: kt auth login": that login must work
    set_keyring_item(env, profile, "{not json")
    r = login(env)
    assert r.code == 0, r.stderr
    assert json.loads(keyring_item(env, profile) or "{}")["user_email"] == ALICE[0]
    assert kt("auth", "logout", env=env).code == 0


# --------------------------------------------------------------------------- the store handed in


def test_commands_use_the_store_handed_in_through_app(tmp_path: Path, capsys) -> None:
    """App(store=...) is the seam: no D-Bus and no patching; status and logout both go through
    the SessionStore handed in, one per command."""
    from kt_login.cli import main
    from kt_login.cli.app import App
    from kt_login.store import SessionStore
    from tests.fake_keyrings import MemoryKeyring
    from tests.sample_sessions import make_session

    memory = MemoryKeyring()
    built: list[Path] = []

    def store(config_dir: Path) -> SessionStore:
        built.append(config_dir)
        return SessionStore(config_dir, keyring_backend=memory)

    logouts: list[str] = []

    def server(request: httpx2.Request) -> httpx2.Response:
        logouts.append(request.url.path)
        return httpx2.Response(200, json={})

    sessions = store(tmp_path)
    sessions.save("default", make_session(api_url="https://api.example"), into=sessions.in_keyring)
    app = App(
        env={"KEEPTRUSTS_CONFIG_DIR": str(tmp_path)},
        transport=httpx2.MockTransport(server),
        interactive=lambda: False,
        store=store,
    )
    assert main(["auth", "status", "--json"], obj=app) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["logged_in"] is True and doc["credential_source"] == "keyring"

    assert main(["auth", "logout", "--json"], obj=app) == 0
    capsys.readouterr()
    assert logouts == ["/v1/auth/logout"]
    assert memory.items == {}
    assert built == [tmp_path] * 3
    assert not (tmp_path / "credentials").exists()
