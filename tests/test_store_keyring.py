"""The keyring backend, and the SessionStore facade over it, against a real GNOME Keyring (Secret
Service) and against bad backends."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, fail, null

from kt_login.errors import StoreError, StoreUnavailable
from kt_login.store import (
    KEYRING_SERVICE,
    UNAVAILABLE_HINT,
    FileStore,
    KeyringStore,
    SessionStore,
)
from tests.fake_keyrings import (
    HangingKeyring,
    InsecureChainer,
    MemoryKeyring,
    MixedChainer,
    PlaintextLikeKeyring,
)
from tests.fixtures.secret_service import subprocess_env
from tests.sample_sessions import ACCESS, REFRESH, make_session

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _headless_by_default(monkeypatch: pytest.MonkeyPatch, no_keyring_env: dict[str, str]) -> None:
    """Default backend for this process: none (as on a server); tests install their own."""
    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", no_keyring_env["DBUS_SESSION_BUS_ADDRESS"])
    monkeypatch.delenv("KEEPTRUSTS_KEYRING_TIMEOUT", raising=False)
    monkeypatch.delenv("KEEPTRUSTS_KEYRING_MAX_BYTES", raising=False)


def use_backend(monkeypatch: pytest.MonkeyPatch, backend: KeyringBackend) -> KeyringBackend:
    """Make `backend` what keyring.get_keyring() returns in this process."""
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)
    return backend


@pytest.fixture
def real_keyring(
    secret_service: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> SecretService.Keyring:
    """The private GNOME Keyring, as this process's default keyring."""
    for name, value in secret_service.items():
        monkeypatch.setenv(name, value)
    backend = SecretService.Keyring()
    use_backend(monkeypatch, backend)
    return backend


@pytest.fixture
def profile() -> str:
    """A fresh profile name: the keyring daemon is shared by the whole session."""
    return f"p-{uuid.uuid4().hex[:12]}"


def keyring_items(profile: str) -> list[tuple[dict[str, str], bytes]]:
    """Items for `profile` in the keyring at $DBUS_SESSION_BUS_ADDRESS, read via secretstorage."""
    import secretstorage

    conn = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(conn)
        found = collection.search_items(
            {"service": KEYRING_SERVICE, "username": f"profile:{profile}"}
        )
        return [(item.get_attributes(), item.get_secret()) for item in found]
    finally:
        conn.close()


def files_under(directory: Path) -> Iterator[Path]:
    return (p for p in directory.rglob("*") if p.is_file())


def run_store_script(
    code: str, env: dict[str, str], config: Path
) -> tuple[dict[str, object], float]:
    """Run PRELUDE + `code` in a fresh interpreter (so keyring chooses its backend from `env`),
    with `config` as the config dir; it prints one JSON object. Returns that object and the
    wall time of the whole process."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), str(config)],
        cwd=REPO,
        env=dict(env, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), elapsed


PRELUDE = """
import json, sys, time
from pathlib import Path
import kt_login.store as store
from kt_login.errors import KtError
from tests.sample_sessions import make_session
config = Path(sys.argv[1])
"""


# --------------------------------------------------------------------------- real keyring


def test_keyring_round_trip_in_the_real_secret_service(
    real_keyring: SecretService.Keyring, tmp_path: Path, profile: str
) -> None:
    sessions = SessionStore(tmp_path)
    keyring_store = sessions.in_keyring
    assert keyring_store.kind == "keyring"
    sessions.keyring.check()
    assert keyring_store.load(profile) is None
    sessions.save(profile, make_session(), into=keyring_store)
    assert keyring_store.load(profile) == make_session()

    [(attributes, secret)] = keyring_items(profile)
    assert attributes["service"] == "keeptrusts-cli"
    assert attributes["username"] == f"profile:{profile}"
    assert json.loads(secret) == json.loads(make_session().to_json())
    # ST-01: nothing secret lands in the config directory.
    for path in files_under(tmp_path):
        content = path.read_bytes()
        assert ACCESS.encode() not in content and REFRESH.encode() not in content, path
    # the index names where the session is and, with no secret, the backend keyring chose
    assert json.loads((tmp_path / "sessions.json").read_text()) == {
        "profiles": {profile: "keyring"},
        "keyring_backend": "keyring.backends.SecretService.Keyring",
    }
    assert not (tmp_path / "credentials").exists()

    session, where = sessions.find(profile)
    assert session == make_session() and where is keyring_store
    assert isinstance(where.backend, KeyringStore)
    assert sessions.known_profiles() == [profile]

    assert keyring_store.delete(profile) is True
    assert keyring_store.delete(profile) is False
    assert keyring_store.load(profile) is None
    assert keyring_items(profile) == []
    assert sessions.known_profiles() == []


def test_keyring_is_chosen_by_default_in_a_fresh_process(
    secret_service: dict[str, str], tmp_path: Path, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = subprocess_env(secret_service, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    out, _ = run_store_script(
        f"""
import keyring
sessions = store.SessionStore(config)
target = sessions.choose_for_login(
    {profile!r}, insecure_storage=False, credential_store_setting="keyring"
)
sessions.save({profile!r}, make_session(), into=target)
session, where = sessions.find({profile!r})
print(json.dumps({{
    "backend": type(keyring.get_keyring()).__module__,
    "kind": where.kind,
    "same": session == make_session(),
}}))
""",
        env,
        tmp_path / "kt",
    )
    assert out == {"backend": "keyring.backends.SecretService", "kind": "keyring", "same": True}
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", secret_service["DBUS_SESSION_BUS_ADDRESS"])
    assert len(keyring_items(profile)) == 1
    use_backend(monkeypatch, SecretService.Keyring())
    assert SessionStore(tmp_path / "kt").forget(profile) is True
    assert keyring_items(profile) == []


def test_corrupt_keyring_item_is_a_store_error(
    real_keyring: SecretService.Keyring, tmp_path: Path, profile: str
) -> None:
    real_keyring.set_password(KEYRING_SERVICE, f"profile:{profile}", "{not json")
    with pytest.raises(StoreError, match="corrupt"):
        KeyringStore().load(profile)
    with pytest.raises(StoreError, match="corrupt"):
        SessionStore(tmp_path).find(profile)
    assert KeyringStore().delete(profile) is True


def test_keyring_save_removes_the_plaintext_copy_and_vice_versa(
    real_keyring: SecretService.Keyring, tmp_path: Path, profile: str
) -> None:
    sessions = SessionStore(tmp_path)
    files = sessions.files
    sessions.save(profile, make_session(access_token="kta_in_file"), into=sessions.in_file)
    sessions.save(profile, make_session(), into=sessions.in_keyring)
    assert not files.path(profile).exists()
    session, where = sessions.find(profile)
    assert session == make_session() and where is sessions.in_keyring

    sessions.save(profile, make_session(access_token="kta_back_to_file"), into=sessions.in_file)
    assert keyring_items(profile) == []
    session, where = sessions.find(profile)
    assert session == make_session(access_token="kta_back_to_file")
    assert where is sessions.in_file
    index = json.loads((tmp_path / "sessions.json").read_text())
    assert index["profiles"] == {profile: "file"}


def test_forget_session_clears_every_store(
    real_keyring: SecretService.Keyring, tmp_path: Path, profile: str
) -> None:
    sessions = SessionStore(tmp_path)
    sessions.save(profile, make_session(), into=sessions.in_keyring)
    # A stale plaintext copy that bypassed the store (e.g. restored from a backup).
    FileStore(tmp_path / "other").save(profile, make_session(access_token="kta_stale"))
    (tmp_path / "credentials").mkdir(mode=0o700)
    (tmp_path / "other" / "credentials" / f"{profile}.json").rename(
        FileStore(tmp_path).path(profile)
    )
    assert sessions.forget(profile) is True
    assert keyring_items(profile) == []
    assert FileStore(tmp_path).load(profile) is None
    assert sessions.forget(profile) is False
    assert sessions.find(profile) == (None, None)
    assert not (tmp_path / "sessions.json").read_text().count(profile)


def test_known_profiles_lists_keyring_and_file_sessions(
    real_keyring: SecretService.Keyring, tmp_path: Path, profile: str
) -> None:
    sessions = SessionStore(tmp_path)
    sessions.save(f"{profile}-k", make_session(), into=sessions.in_keyring)
    sessions.save(f"{profile}-f", make_session(), into=sessions.in_file)
    assert sessions.known_profiles() == [f"{profile}-f", f"{profile}-k"]
    sessions.in_keyring.delete(f"{profile}-k")
    assert sessions.known_profiles() == [f"{profile}-f"]


# --------------------------------------------------------------------------- unavailable keyrings


def assert_unavailable(exc: StoreUnavailable, *words: str) -> None:
    assert exc.hint == UNAVAILABLE_HINT
    # The store cannot know which commands take --insecure-storage: the command line adds it
    # where it works (tests/test_cli_hints.py, tests/test_cli_keyring.py assert_clean_failure).
    assert "unlock your keyring" in exc.hint
    assert "\n" not in exc.message
    for word in words:
        assert word in exc.message
    assert "CANARY" not in exc.message


# keyring's SecretService backend opens a D-Bus connection per call and, when the collection is
# locked, raises without closing it (keyring/backends/SecretService.py, get_preferred_collection).
# The leak is the library's: collect it here, inside this test, where it is expected.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_locked_keyring_is_unavailable_and_nothing_is_written(
    locked_secret_service: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "DBUS_SESSION_BUS_ADDRESS", locked_secret_service["DBUS_SESSION_BUS_ADDRESS"]
    )
    use_backend(monkeypatch, SecretService.Keyring())
    sessions = SessionStore(tmp_path)
    keyring_store = sessions.keyring
    with pytest.raises(StoreUnavailable, match="locked"):
        keyring_store.check()
    with pytest.raises(StoreUnavailable) as info:
        sessions.save("default", make_session(), into=sessions.in_keyring)
    assert_unavailable(info.value, "locked")
    with pytest.raises(StoreUnavailable, match="locked"):
        keyring_store.load("default")
    with pytest.raises(StoreUnavailable, match="locked"):
        sessions.choose_for_login(
            "default", insecure_storage=False, credential_store_setting="keyring"
        )
    assert list(tmp_path.iterdir()) == []
    # Nothing recorded in the keyring: "not logged in", not an error.
    assert sessions.find("default") == (None, None)
    del info
    gc.collect()


def test_session_recorded_in_an_unusable_keyring_is_an_error_not_logged_out(
    tmp_path: Path,
) -> None:
    (tmp_path / "sessions.json").write_text('{"profiles": {"default": "keyring"}}')
    sessions = SessionStore(tmp_path)
    with pytest.raises(StoreUnavailable) as info:
        sessions.find("default")
    assert_unavailable(info.value, "no OS keyring was found")
    with pytest.raises(StoreUnavailable):
        sessions.forget("default")
    assert sessions.known_profiles() == ["default"]  # still recorded: it may be intact there


def test_headless_machine_fails_closed_in_a_fresh_process(
    no_keyring_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "kt"
    env = subprocess_env(no_keyring_env, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    out, _ = run_store_script(
        """
import keyring
result = {"backend": type(keyring.get_keyring()).__module__}
sessions = store.SessionStore(config)
try:
    sessions.save("default", make_session(), into=sessions.in_keyring)
except KtError as exc:
    result.update(error=type(exc).__name__, message=exc.message, hint=exc.hint)
result["found"] = repr(sessions.find("default"))
result["forgot"] = sessions.forget("default")
print(json.dumps(result))
""",
        env,
        config,
    )
    assert out["backend"] == "keyring.backends.fail"
    assert out["error"] == "StoreUnavailable"
    assert out["message"] == "the OS keyring is unavailable: no OS keyring was found"
    assert out["hint"] == UNAVAILABLE_HINT
    assert out["found"] == "(None, None)"  # `kt auth whoami` says "not logged in"
    assert out["forgot"] is False
    assert not config.exists()


@pytest.mark.parametrize(
    ("backend", "words"),
    [
        (fail.Keyring(), "no OS keyring was found"),
        (null.Keyring(), "null backend"),
        (PlaintextLikeKeyring(), "PlaintextLikeKeyring is not a secure store"),
        (InsecureChainer(), "no secure keyring among the chained backends"),
    ],
    ids=["fail", "null", "keyrings.alt", "chainer"],
)
def test_insecure_backends_count_as_no_keyring(
    backend: KeyringBackend, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_backend(monkeypatch, backend)
    sessions = SessionStore(tmp_path)
    keyring_store = sessions.keyring
    for call in (
        keyring_store.check,
        lambda: keyring_store.save("default", make_session()),
        lambda: keyring_store.load("default"),
        lambda: sessions.save("default", make_session(), into=sessions.in_keyring),
        lambda: sessions.choose_for_login(
            "default", insecure_storage=False, credential_store_setting="keyring"
        ),
    ):
        with pytest.raises(StoreUnavailable) as info:
            call()
        assert_unavailable(info.value, words)
    assert list(tmp_path.iterdir()) == []
    if isinstance(backend, PlaintextLikeKeyring):
        assert backend.items == {}


def test_chainer_uses_only_its_secure_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    MixedChainer.plaintext.items.clear()
    MixedChainer.secure.items.clear()
    use_backend(monkeypatch, MixedChainer())
    keyring_store = KeyringStore()
    keyring_store.save("default", make_session())
    assert MixedChainer.plaintext.items == {}
    assert list(MixedChainer.secure.items) == [(KEYRING_SERVICE, "profile:default")]
    MixedChainer.plaintext.items[(KEYRING_SERVICE, "profile:other")] = "planted"
    assert keyring_store.load("other") is None
    assert keyring_store.load("default") == make_session()


def test_hanging_keyring_times_out(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = HangingKeyring()
    request.addfinalizer(backend.release.set)
    monkeypatch.setenv("KEEPTRUSTS_KEYRING_TIMEOUT", "0.5")
    keyring_store = KeyringStore(backend=backend)
    assert keyring_store.timeout == 0.5
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        keyring_store.load("default")
    assert time.monotonic() - started < 0.5 + 1
    assert_unavailable(info.value, "did not answer within 0.5 s")
    # Once it has hung, later calls fail at once instead of queueing behind the stuck one.
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="did not answer"):
        keyring_store.save("default", make_session())
    assert time.monotonic() - started < 0.2
    assert backend.calls == 1
    assert list(tmp_path.iterdir()) == []


def test_hanging_keyring_selected_by_environment_does_not_hang_the_process(
    tmp_path: Path,
) -> None:
    env = subprocess_env(
        {},
        PYTHON_KEYRING_BACKEND="tests.fake_keyrings.HangingKeyring",
        KEEPTRUSTS_KEYRING_TIMEOUT="0.5",
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
    )
    out, wall = run_store_script(
        """
import keyring
started = time.monotonic()
sessions = store.SessionStore(config)
try:
    sessions.save("default", make_session(), into=sessions.in_keyring)
except KtError as exc:
    message = exc.message
print(json.dumps({
    "backend": type(keyring.get_keyring()).__name__,
    "elapsed": time.monotonic() - started,
    "message": message,
}))
""",
        env,
        tmp_path / "kt",
    )
    assert out["backend"] == "HangingKeyring"
    assert isinstance(out["elapsed"], float) and out["elapsed"] < 0.5 + 1
    assert out["message"] == "the OS keyring did not answer within 0.5 s"
    assert wall < 10  # the stuck worker thread does not keep the process alive
    assert not (tmp_path / "kt").exists()


def test_a_file_session_is_found_without_asking_the_keyring(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = HangingKeyring()
    request.addfinalizer(backend.release.set)
    use_backend(monkeypatch, backend)
    FileStore(tmp_path).save("default", make_session())
    sessions = SessionStore(tmp_path)
    session, where = sessions.find("default")
    assert session == make_session() and where is sessions.in_file
    assert backend.calls == 0


def test_file_save_survives_a_hung_keyring_holding_the_old_copy(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = use_backend(monkeypatch, MemoryKeyring())
    first = SessionStore(tmp_path)
    first.save("default", make_session(access_token="kta_old"), into=first.in_keyring)
    assert isinstance(memory, MemoryKeyring) and len(memory.items) == 1
    hanging = HangingKeyring()
    request.addfinalizer(hanging.release.set)
    use_backend(monkeypatch, hanging)
    monkeypatch.setenv("KEEPTRUSTS_KEYRING_TIMEOUT", "0.2")
    sessions = SessionStore(tmp_path)
    started = time.monotonic()
    sessions.save("default", make_session(), into=sessions.in_file)
    assert time.monotonic() - started < 0.2 + 1
    assert hanging.calls == 1
    session, where = sessions.find("default")
    assert session == make_session() and where is sessions.in_file


class LeakyKeyring(MemoryKeyring):
    """A backend whose errors quote what it was given."""

    def set_password(self, service: str, username: str, password: str) -> None:
        token = json.loads(password)["refresh_token"]
        raise RuntimeError(f"could not store a token starting {token[:-1]} for {username}")


def test_backend_errors_are_reported_without_the_secret(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as info:
        KeyringStore(backend=LeakyKeyring()).save("default", make_session())
    assert_unavailable(info.value, "the OS keyring failed (RuntimeError)")
    assert list(tmp_path.iterdir()) == []


def test_keyring_store_rejects_bad_profile_names_before_any_keyring_call(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from kt_login.errors import UsageError

    backend = HangingKeyring()
    request.addfinalizer(backend.release.set)
    keyring_store = KeyringStore(backend=backend, timeout=0.2)
    with pytest.raises(UsageError):
        keyring_store.save("../x", make_session())
    sessions = SessionStore(tmp_path, keyring_backend=backend, keyring_timeout=0.2)
    with pytest.raises(UsageError):
        sessions.save("../x", make_session(), into=sessions.in_keyring)
    assert backend.calls == 0


def test_fixture_env_is_only_the_bus_address(
    secret_service: dict[str, str], locked_secret_service: dict[str, str]
) -> None:
    assert set(secret_service) == {"DBUS_SESSION_BUS_ADDRESS"}
    assert secret_service != locked_secret_service
    assert os.environ.get("PYTHON_KEYRING_BACKEND") is None or "PYTHON_KEYRING_BACKEND" not in (
        subprocess_env(secret_service)
    )


# --------------------------------------------------------------------------- one copy per profile


def test_each_backend_alone_never_touches_the_other(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file backend makes no keyring call at all: the default keyring hangs.
    hanging = use_backend(monkeypatch, HangingKeyring())
    assert isinstance(hanging, HangingKeyring)
    request.addfinalizer(hanging.release.set)
    memory = MemoryKeyring()
    files, keyring_store = FileStore(tmp_path / "kt"), KeyringStore(backend=memory)

    files.save("default", make_session(access_token="kta_file"))
    keyring_store.save("default", make_session(access_token="kta_keyring"))
    assert files.load("default") == make_session(access_token="kta_file")
    assert keyring_store.load("default") == make_session(access_token="kta_keyring")

    assert files.delete("default") is True
    assert keyring_store.load("default") == make_session(access_token="kta_keyring")
    files.save("default", make_session(access_token="kta_file"))
    assert keyring_store.delete("default") is True
    assert files.load("default") == make_session(access_token="kta_file")

    assert hanging.calls == 0
    # Neither writes the index, and the keyring backend writes nothing under the config dir.
    assert sorted(p.name for p in files_under(tmp_path)) == ["default.json"]


def test_the_facade_moves_a_session_between_backends_leaving_one_copy(tmp_path: Path) -> None:
    memory = MemoryKeyring()
    sessions = SessionStore(tmp_path, keyring_backend=memory)
    files = sessions.files

    def choose(*, insecure_storage: bool, setting: str = "keyring") -> object:
        return sessions.choose_for_login(
            "default", insecure_storage=insecure_storage, credential_store_setting=setting
        )

    def index() -> object:
        return json.loads((tmp_path / "sessions.json").read_text())["profiles"]

    assert choose(insecure_storage=True) is sessions.in_file
    assert choose(insecure_storage=False, setting="file") is sessions.in_file
    sessions.save("default", make_session(access_token="kta_first"), into=sessions.in_file)
    assert memory.items == {} and index() == {"default": "file"}

    # file -> keyring: the plaintext copy goes
    where = choose(insecure_storage=False)
    assert where is sessions.in_keyring
    sessions.save("default", make_session(access_token="kta_second"), into=sessions.in_keyring)
    assert not files.path("default").exists()
    assert list(memory.items) == [(KEYRING_SERVICE, "profile:default")]
    assert index() == {"default": "keyring"}
    assert sessions.find("default") == (make_session(access_token="kta_second"), where)

    # keyring -> file with --insecure-storage: the keyring copy goes
    where = choose(insecure_storage=True)
    sessions.save("default", make_session(access_token="kta_third"), into=sessions.in_file)
    assert memory.items == {}
    assert files.load("default") == make_session(access_token="kta_third")
    assert index() == {"default": "file"}
    assert sessions.find("default") == (make_session(access_token="kta_third"), where)

    # Saving through a Location (as the refresh code does) follows the same rule.
    sessions.in_keyring.save("default", make_session(access_token="kta_fourth"))
    assert not files.path("default").exists() and len(memory.items) == 1
    sessions.in_file.save("default", make_session(access_token="kta_fifth"))
    assert memory.items == {} and files.load("default") == make_session(access_token="kta_fifth")

    assert sessions.forget("default") is True
    assert memory.items == {} and not files.path("default").exists()
    assert index() == {}


def test_choose_for_login_keeps_an_earlier_file_when_the_keyring_is_unusable(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    hanging = HangingKeyring()
    request.addfinalizer(hanging.release.set)
    sessions = SessionStore(tmp_path, keyring_backend=hanging, keyring_timeout=0.3)
    with pytest.raises(StoreUnavailable) as info:
        sessions.choose_for_login(
            "default", insecure_storage=False, credential_store_setting="keyring"
        )
    assert_unavailable(info.value, "did not answer within 0.3 s")
    assert list(tmp_path.iterdir()) == []

    FileStore(tmp_path).save("default", make_session())  # an earlier --insecure-storage login
    started = time.monotonic()
    where = sessions.choose_for_login(
        "default", insecure_storage=False, credential_store_setting="keyring"
    )
    assert where is sessions.in_file
    sessions.save("default", make_session(access_token="kta_new"), into=where)
    assert time.monotonic() - started < 0.3  # the keyring already timed out once: no new wait
    assert hanging.calls == 1
    assert sessions.find("default") == (make_session(access_token="kta_new"), where)


def test_choose_for_login_refuses_an_unsafe_file_before_the_login(tmp_path: Path) -> None:
    sessions = SessionStore(tmp_path, keyring_backend=MemoryKeyring())
    sessions.save("default", make_session(), into=sessions.in_file)
    os.chmod(sessions.files.path("default"), 0o644)
    with pytest.raises(StoreError, match="has mode 0644"):
        sessions.choose_for_login("default", insecure_storage=True, credential_store_setting="")
    # The keyring takes the new session; saving there removes the unsafe file.
    where = sessions.choose_for_login(
        "default", insecure_storage=False, credential_store_setting="keyring"
    )
    assert where is sessions.in_keyring
    sessions.save("default", make_session(), into=where)
    assert not sessions.files.path("default").exists()
