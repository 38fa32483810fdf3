"""The plaintext file backend, the SessionStore facade (lookup, index), profile names as file
names, and the refresh lock. Session serialisation: test_session.py."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kt_login.errors import KtError, StoreError, UsageError
from kt_login.store import FileStore, SessionStore, keyring_timeout, refresh_lock
from tests.sample_sessions import make_session

REPO = Path(__file__).resolve().parent.parent


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def run_python(code: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _no_keyring(monkeypatch: pytest.MonkeyPatch, no_keyring_env: dict[str, str]) -> None:
    """Keyring lookups made by file-store code paths see a headless machine, unless a test
    installs another backend."""
    import keyring.core
    from keyring.backends import fail

    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", no_keyring_env["DBUS_SESSION_BUS_ADDRESS"])


# --------------------------------------------------------------------------- FileStore


def test_file_store_round_trip_and_idempotent_delete(tmp_path: Path) -> None:
    files = FileStore(tmp_path)
    assert files.load("default") is None
    files.save("default", make_session())
    assert files.load("default") == make_session()
    files.save("default", make_session(access_token="kta_second"))
    assert files.load("default") == make_session(access_token="kta_second")
    assert files.delete("default") is True
    assert files.delete("default") is False
    assert files.load("default") is None
    assert files.kind == "file (plaintext)"


def test_file_store_permissions_under_umask_000(tmp_path: Path) -> None:
    config = tmp_path / "kt"
    old = os.umask(0)
    try:
        sessions = SessionStore(config)
        sessions.save("default", make_session(), into=sessions.in_file)
    finally:
        os.umask(old)
    assert mode_of(config) == 0o700
    assert mode_of(config / "credentials") == 0o700
    assert mode_of(config / "credentials" / "default.json") == 0o600
    assert mode_of(config / "sessions.json") == 0o600
    assert sorted(p.name for p in (config / "credentials").iterdir()) == ["default.json"]


def test_file_store_narrows_a_wide_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "credentials").mkdir()
    os.chmod(tmp_path / "credentials", 0o755)
    FileStore(tmp_path).save("default", make_session())
    assert mode_of(tmp_path / "credentials") == 0o700


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_file_store_refuses_group_or_world_accessible_file(tmp_path: Path, mode: int) -> None:
    files = FileStore(tmp_path)
    files.save("default", make_session())
    path = files.path("default")
    os.chmod(path, mode)
    with pytest.raises(StoreError) as info:
        files.load("default")
    assert f"has mode {mode:04o}" in info.value.message
    assert info.value.hint is not None and f"chmod 600 {path}" in info.value.hint
    with pytest.raises(StoreError):
        SessionStore(tmp_path).find("default")
    files.save("default", make_session())  # logging in again repairs it
    assert mode_of(path) == 0o600
    assert files.load("default") == make_session()


def test_file_store_refuses_a_file_of_another_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = FileStore(tmp_path)
    files.save("default", make_session())
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)
    with pytest.raises(StoreError, match="belongs to another user"):
        files.load("default")


def test_file_store_refuses_a_symlink(tmp_path: Path) -> None:
    files = FileStore(tmp_path)
    target = tmp_path / "elsewhere.json"
    FileStore(tmp_path / "other").save("default", make_session())
    (tmp_path / "other" / "credentials" / "default.json").rename(target)
    files.save("default", make_session(access_token="kta_mine"))
    files.path("default").unlink()
    files.path("default").symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link"):
        files.load("default")
    with pytest.raises(StoreError, match="symbolic link"):
        SessionStore(tmp_path).find("default")
    # Saving replaces the link itself; the file it pointed to is left alone.
    before = target.read_bytes()
    files.save("default", make_session(access_token="kta_new"))
    assert not files.path("default").is_symlink()
    assert target.read_bytes() == before
    assert files.load("default") == make_session(access_token="kta_new")


def test_file_store_refuses_a_directory_in_place_of_the_file(tmp_path: Path) -> None:
    files = FileStore(tmp_path)
    files.path("default").mkdir(parents=True)
    with pytest.raises(StoreError):
        files.load("default")


def test_file_store_crash_before_rename_keeps_the_old_session(tmp_path: Path) -> None:
    files = FileStore(tmp_path)
    files.save("default", make_session(access_token="kta_old"))
    # A child process dies (os._exit, no cleanup) after writing and fsyncing the new file but
    # before renaming it into place.
    result = run_python(
        f"""
        import os
        from pathlib import Path
        from kt_login import store
        from tests.sample_sessions import make_session
        os.replace = lambda src, dst: os._exit(9)
        files = store.FileStore(Path({str(tmp_path)!r}))
        files.save("default", make_session(access_token="kta_new"))
        """
    )
    assert result.returncode == 9, result.stderr
    assert files.load("default") == make_session(access_token="kta_old")
    leftovers = list(files.directory.glob(".default.json.*.tmp"))
    assert len(leftovers) == 1 and mode_of(leftovers[0]) == 0o600
    assert "kta_new" in leftovers[0].read_text()
    # Logging out removes the leftover too: it holds the same kind of secret.
    assert files.delete("default") is True
    assert list(files.directory.iterdir()) == []


def test_file_store_write_failure_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = FileStore(tmp_path)
    files.save("default", make_session(access_token="kta_old"))

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StoreError, match="No space left on device"):
        files.save("default", make_session(access_token="kta_new"))
    monkeypatch.undo()
    assert files.load("default") == make_session(access_token="kta_old")
    assert [p.name for p in files.directory.iterdir()] == ["default.json"]


BAD_NAMES = [
    "../escape",
    "..",
    ".",
    ".hidden",
    "a/b",
    "/etc/passwd",
    "a\\b",
    "",
    "a" * 65,
    "nul\x00byte",
    "new\nline",
    "sp ace",
    "évil",
    "-flag",
    "star*",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_profile_names_cannot_escape_the_directory(tmp_path: Path, name: str) -> None:
    config = tmp_path / "kt"
    files = FileStore(config)
    sessions = SessionStore(config)
    for call in (
        lambda: files.save(name, make_session()),
        lambda: files.load(name),
        lambda: files.delete(name),
        lambda: sessions.find(name),
        lambda: sessions.forget(name),
        lambda: sessions.save(name, make_session(), into=sessions.in_file),
        lambda: sessions.in_file.delete(name),
        lambda: sessions.choose_for_login(
            name, insecure_storage=True, credential_store_setting="file"
        ),
    ):
        with pytest.raises(UsageError, match="invalid profile name"):
            call()
    with pytest.raises(UsageError), refresh_lock(config, name):
        pass
    with pytest.raises(UsageError), sessions.lock(name):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["default", "a", "work-2", "ci_bot", "x.y", "A" * 64, "9lives"])
def test_valid_profile_names(tmp_path: Path, name: str) -> None:
    files = FileStore(tmp_path)
    files.save(name, make_session())
    assert files.load(name) == make_session()
    assert files.path(name).parent == tmp_path / "credentials"


# --------------------------------------------------------------------------- lookup and index


def test_find_session_headless_with_nothing_stored_is_not_logged_in(tmp_path: Path) -> None:
    # The fail backend is active (autouse fixture): `whoami` must say "not logged in".
    assert SessionStore(tmp_path).find("default") == (None, None)
    assert not tmp_path.joinpath("credentials").exists()


def test_find_session_prefers_the_file(tmp_path: Path) -> None:
    FileStore(tmp_path).save("default", make_session())
    sessions = SessionStore(tmp_path)
    session, where = sessions.find("default")
    assert session == make_session()
    assert where is sessions.in_file and isinstance(where.backend, FileStore)
    assert where.kind == "file (plaintext)"


def test_known_profiles_index(tmp_path: Path) -> None:
    sessions = SessionStore(tmp_path)
    assert sessions.known_profiles() == []
    sessions.save("b", make_session(), into=sessions.in_file)
    sessions.save("a", make_session(), into=sessions.in_file)
    sessions.save("a", make_session(), into=sessions.in_file)
    assert sessions.known_profiles() == ["a", "b"]
    index = json.loads((tmp_path / "sessions.json").read_text())
    assert index == {"profiles": {"a": "file", "b": "file"}}
    assert "CANARY" not in (tmp_path / "sessions.json").read_text()
    sessions.in_file.delete("a")
    assert sessions.known_profiles() == ["b"]
    assert json.loads((tmp_path / "sessions.json").read_text()) == {"profiles": {"b": "file"}}
    assert sessions.forget("b") is True
    assert sessions.forget("b") is False
    assert sessions.known_profiles() == []


def test_known_profiles_survives_a_damaged_index(tmp_path: Path) -> None:
    sessions = SessionStore(tmp_path)
    sessions.save("kept", make_session(), into=sessions.in_file)
    (tmp_path / "sessions.json").write_text("{garbage")
    (tmp_path / "credentials" / "not a profile.json").write_text("{}")
    assert sessions.known_profiles() == ["kept"]
    sessions.save("other", make_session(), into=sessions.in_file)
    assert sessions.known_profiles() == ["kept", "other"]


def test_known_profiles_lists_files_saved_without_the_facade(tmp_path: Path) -> None:
    FileStore(tmp_path).save("restored", make_session())  # e.g. copied from a backup
    assert not (tmp_path / "sessions.json").exists()
    assert SessionStore(tmp_path).known_profiles() == ["restored"]


def test_forget_session_on_a_fresh_machine_creates_nothing(tmp_path: Path) -> None:
    config = tmp_path / "kt"
    assert SessionStore(config).forget("default") is False
    assert not config.exists()


# --------------------------------------------------------------------------- refresh lock

HOLDER = """
import sys
from pathlib import Path
from kt_login.store import refresh_lock
with refresh_lock(Path(sys.argv[1]), "default"):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def test_refresh_lock_excludes_another_process(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdin is not None
            assert holder.stdout.readline() == "locked\n"
            started = time.monotonic()
            with (
                pytest.raises(StoreError, match="held by another kt process"),
                refresh_lock(tmp_path, "default", timeout=0.2),
            ):
                pytest.fail("acquired a lock another process holds")
            assert time.monotonic() - started < 2
            with refresh_lock(tmp_path, "other", timeout=0.2):
                pass  # profiles do not block each other
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.stdout.readline() == "released\n"
            with refresh_lock(tmp_path, "default", timeout=10):
                pass
        finally:
            holder.kill()
            holder.wait()
    assert mode_of(tmp_path / "locks") == 0o700
    assert mode_of(tmp_path / "locks" / "default.lock") == 0o600


def test_refresh_lock_is_reentrant_in_one_thread(tmp_path: Path) -> None:
    with (
        refresh_lock(tmp_path, "default", timeout=0.2),
        refresh_lock(tmp_path, "default", timeout=0.2),
    ):
        FileStore(tmp_path).save("default", make_session())


def test_the_facade_lock_is_the_refresh_lock(tmp_path: Path) -> None:
    with (
        SessionStore(tmp_path).lock("default", timeout=0.2),
        refresh_lock(tmp_path, "default", timeout=0.2),  # re-entrant: the same lock
    ):
        pass
    assert [p.name for p in (tmp_path / "locks").iterdir()] == ["default.lock"]
    assert mode_of(tmp_path / "locks" / "default.lock") == 0o600


# --------------------------------------------------------------------------- misc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 5.0),
        ("", 5.0),
        ("0.5", 0.5),
        (" 2 ", 2.0),
        ("abc", 5.0),
        ("0", 5.0),
        ("-1", 5.0),
        ("nan", 5.0),
        ("inf", 5.0),
        ("1e9", 300.0),
    ],
)
def test_keyring_timeout_from_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: float
) -> None:
    if raw is None:
        monkeypatch.delenv("KEEPTRUSTS_KEYRING_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("KEEPTRUSTS_KEYRING_TIMEOUT", raw)
    assert keyring_timeout() == expected


def test_importing_the_store_stays_light() -> None:
    result = run_python(
        """
        import sys
        import kt_login.store
        heavy = (
            "keyring", "aiohttp", "authlib", "jinja2", "filelock", "httpx2", "secretstorage",
            "cryptography",
        )
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_store_errors_are_kt_errors() -> None:
    assert issubclass(StoreError, KtError)
    assert issubclass(UsageError, KtError)


def test_file_store_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    files = FileStore(tmp_path)
    files.directory.mkdir()
    os.mkfifo(files.path("default"), 0o600)
    with pytest.raises(StoreError, match="not a regular file"):
        files.load("default")


def test_config_dir_may_be_a_symlink_but_credentials_dir_may_not(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "kt"
    real.mkdir(parents=True)
    (tmp_path / "kt").symlink_to(real)
    files = FileStore(tmp_path / "kt")
    files.save("default", make_session())
    assert (real / "credentials" / "default.json").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (real / "credentials").rename(tmp_path / "old-credentials")
    (real / "credentials").symlink_to(elsewhere)
    with pytest.raises(StoreError, match="not a directory"):
        files.save("default", make_session())
    assert list(elsewhere.iterdir()) == []
