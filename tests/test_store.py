"""Session serialisation, the plaintext file backend, the SessionStore facade (lookup, index,
one copy per profile), profile names and the refresh lock."""

from __future__ import annotations

import dataclasses
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
from kt_login.session import Session
from kt_login.store import FileStore, SessionStore, keyring_timeout, refresh_lock

REPO = Path(__file__).resolve().parent.parent
ACCESS = "kta_CANARY-access-7f3a9c"
REFRESH = "ktr_CANARY-refresh-91b2e4"

ALLOWED_KEYS = {
    "api_url",
    "access_token",
    "refresh_token",
    "expires_at",
    "method",
    "kind",  # who refreshes and revokes it
    "user_email",
    "user_id",
    "organization",
    "role",
    "scopes",
    "mfa_authenticated",
    "session_id",
    "refresh_expires_at",
    "obtained_at",
    # OAuth sign-ins: where to refresh/revoke and which sign-in the ID token named
    "issuer",
    "client_id",
    "token_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "subject",
    "auth_time",
    "acr",
}


def make_session(**changes: object) -> Session:
    base = Session(
        api_url="http://127.0.0.1:8765",
        access_token=ACCESS,
        refresh_token=REFRESH,
        expires_at=1_900_000_000.5,
        method="password",
        kind="keeptrusts",
        user_email="ada@example.com",
        user_id="usr_1",
        organization="Example",
        role="admin",
        scopes=("tokens:read", "tokens:write"),
        mfa_authenticated=True,
        session_id="ses_1",
        refresh_expires_at=1_900_086_400.0,
        obtained_at=1_899_999_100.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


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


# --------------------------------------------------------------------------- Session


def test_session_round_trip_with_and_without_optional_fields() -> None:
    full = make_session()
    assert Session.from_json(full.to_json()) == full
    bare = make_session(
        refresh_token=None,
        expires_at=None,
        session_id=None,
        refresh_expires_at=None,
        obtained_at=None,
        scopes=(),
    )
    assert Session.from_json(bare.to_json()) == bare


def test_session_json_is_compact_stable_and_allow_listed() -> None:
    text = make_session().to_json()
    assert " " not in text.replace("ada@example.com", "")
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert set(data) <= ALLOWED_KEYS  # ST-06
    assert make_session().to_json() == text


def test_session_non_finite_time_is_stored_as_unknown() -> None:
    session = make_session(expires_at=float("nan"), refresh_expires_at=float("inf"))
    back = Session.from_json(session.to_json())
    assert back.expires_at is None and back.refresh_expires_at is None


def test_session_ignores_unknown_keys() -> None:
    data = json.loads(make_session().to_json())
    data["from_a_newer_kt"] = 1
    assert Session.from_json(json.dumps(data)) == make_session()


def _corrupt(**changes: object) -> str:
    data = json.loads(make_session().to_json())
    for key, value in changes.items():
        if value is KeyError:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "not json",
        "[]",
        "null",
        '"a string"',
        b"\xff\xfe",
        _corrupt(access_token=KeyError),
        _corrupt(access_token=""),
        _corrupt(access_token=7),
        _corrupt(api_url=None),
        _corrupt(refresh_token=["x"]),
        _corrupt(expires_at="tomorrow"),
        _corrupt(expires_at=True),
        _corrupt(expires_at=10**400),
        _corrupt(scopes="tokens:read"),
        _corrupt(scopes=[1, 2]),
        _corrupt(mfa_authenticated="yes"),
        _corrupt(method=KeyError),
        _corrupt(session_id=5),
        _corrupt(kind="password"),
        _corrupt(kind=None),
        _corrupt(kind="oauth"),  # an OAuth session must name its token endpoint
        '{"expires_at": NaN}',
        _corrupt().replace("1900000000.5", "1e400"),
        _corrupt().replace("1900000000.5", "Infinity"),
        "[" * 100_000,
    ],
)
def test_session_from_corrupt_data_raises_store_error(text: str | bytes) -> None:
    with pytest.raises(StoreError) as info:
        Session.from_json(text)
    assert "corrupt" in info.value.message
    assert "CANARY" not in info.value.message


TOKEN_ENDPOINT = "https://as.example/token"


def test_session_kind_is_stored_and_read_back() -> None:
    first_party = make_session()
    assert json.loads(first_party.to_json())["kind"] == "keeptrusts"
    oauth = make_session(kind="oauth", method="browser", token_endpoint=TOKEN_ENDPOINT)
    assert json.loads(oauth.to_json())["kind"] == "oauth"
    assert Session.from_json(oauth.to_json()) == oauth


@pytest.mark.parametrize(
    ("token_endpoint", "kind"), [(None, "keeptrusts"), (TOKEN_ENDPOINT, "oauth")]
)
def test_session_stored_before_kinds_existed_still_loads(
    token_endpoint: str | None, kind: str
) -> None:
    data = json.loads(make_session(token_endpoint=token_endpoint).to_json())
    del data["kind"]
    loaded = Session.from_json(json.dumps(data))
    assert loaded.kind == kind
    assert loaded == make_session(kind=kind, token_endpoint=token_endpoint)


def test_an_oauth_session_needs_its_token_endpoint() -> None:
    with pytest.raises(ValueError, match="token_endpoint"):
        make_session(kind="oauth")
    with pytest.raises(StoreError, match="corrupt") as info:
        Session.from_json(_corrupt(kind="oauth"))
    assert "token_endpoint" in info.value.message


def test_session_repr_masks_tokens() -> None:
    session = make_session()
    for text in (repr(session), str(session), f"{session}", repr([session])):
        assert "CANARY" not in text
    assert "kta_…(redacted)" in repr(session)
    assert "ktr_…(redacted)" in repr(session)
    assert "ada@example.com" in repr(session)
    odd = make_session(access_token="no-prefix-secret", refresh_token=None)
    assert "no-prefix-secret" not in repr(odd)
    assert "refresh_token=None" in repr(odd)


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
        from tests.test_store import make_session
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
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
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
        heavy = ("keyring", "aiohttp", "authlib", "jinja2", "filelock", "httpx2", "secretstorage")
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
