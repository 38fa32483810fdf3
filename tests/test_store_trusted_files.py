"""kt_login/trusted_files.py: the one way kt reads its files and the one ownership rule (LF-01,
LF-02), and how the store and the config use them. The real-process attacks are in
tests/adversarial/test_local_files.py."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from kt_login import config
from kt_login.errors import ConfigError, StoreError
from kt_login.store import FileStore, SessionStore
from kt_login.store.locks import file_lock
from kt_login.trusted_files import check_owner_and_mode, read_file, run_hint
from tests.sample_sessions import make_session


def _stat(mode: int, uid: int | None = None) -> os.stat_result:
    fields = [mode, 0, 0, 1, os.getuid() if uid is None else uid, 0, 0, 0, 0, 0]
    return os.stat_result(fields)


def test_read_file_reads_a_regular_file_and_none_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert read_file(path, limit=10, error=StoreError) is None
    path.write_bytes(b"0123456789")
    assert read_file(path, limit=10, error=StoreError) == b"0123456789"


def test_read_file_stops_at_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "f"
    with path.open("wb") as fh:
        fh.truncate(1 << 30)  # sparse
    with pytest.raises(StoreError, match="larger than 1 KiB") as info:
        read_file(path, limit=1024, error=StoreError)
    assert info.value.hint == f"run: rm {path}"


def test_read_file_neither_waits_on_a_fifo_nor_reads_a_device(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    done = threading.Event()

    def read() -> None:
        with pytest.raises(ConfigError, match="is a FIFO, not a regular file"):
            read_file(fifo, limit=10, error=ConfigError)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(5), "read_file blocked on a FIFO"
    with pytest.raises(StoreError, match="a character device"):
        read_file(Path("/dev/zero"), limit=10, error=StoreError)


def test_read_file_does_not_follow_a_link(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link, which kt does not follow") as info:
        read_file(link, limit=10, error=StoreError)
    assert info.value.hint == f"run: rm {link}"


@pytest.mark.parametrize(
    ("mode", "secret", "refused"),
    [
        (0o600, True, None),
        (0o644, True, "chmod 600"),
        (0o620, True, "chmod 600"),
        (0o644, False, None),
        (0o664, False, "chmod go-w"),
        (0o646, False, "chmod go-w"),
        (0o755 | stat.S_IFDIR, False, None),
        (0o1777 | stat.S_IFDIR, False, "chmod go-w"),
    ],
)
def test_the_mode_rule(mode: int, secret: bool, refused: str | None) -> None:
    st = _stat(mode | (0 if mode & stat.S_IFDIR else stat.S_IFREG))
    path = Path("/x/a file")
    if refused is None:
        check_owner_and_mode(path, st, error=StoreError, secret=secret)
        return
    with pytest.raises(StoreError, match=f"mode {stat.S_IMODE(mode):04o}") as info:
        check_owner_and_mode(path, st, error=StoreError, secret=secret)
    assert info.value.hint == f"run: {refused} '/x/a file'"  # quoted: it can be pasted


def test_the_owner_rule_excepts_root_except_for_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    path = Path("/x/config.toml")
    check_owner_and_mode(path, _stat(stat.S_IFREG | 0o644, uid=0), error=ConfigError, secret=False)
    for uid, secret in ((1001, False), (0, True)):
        with pytest.raises(ConfigError, match=f"belongs to another user \\(uid {uid}\\)") as info:
            check_owner_and_mode(
                path, _stat(stat.S_IFREG | 0o600, uid=uid), error=ConfigError, secret=secret
            )
        hint = info.value.hint or ""
        assert hint.startswith("run: sudo chown ") and hint.endswith(f" {path}")


def test_run_hint_quotes_every_word() -> None:
    assert run_hint("rm", Path("/tmp/a b;c")) == "run: rm '/tmp/a b;c'"


def test_config_refuses_a_writable_file_and_dir(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('profile = "work"\n')
    assert config.load_config_file(tmp_path) == {"profile": "work"}
    (tmp_path / "config.toml").chmod(0o666)
    with pytest.raises(ConfigError, match="config.toml has mode 0666"):
        config.load_config_file(tmp_path)
    (tmp_path / "config.toml").chmod(0o644)
    tmp_path.chmod(0o777)
    try:
        with pytest.raises(ConfigError, match="mode 0777") as info:
            config.load_config_file(tmp_path)
        assert info.value.hint == f"run: chmod go-w {tmp_path}"
    finally:
        tmp_path.chmod(0o700)
    assert config.load_config_file(tmp_path / "missing") == {}


def test_config_refuses_a_huge_file(tmp_path: Path) -> None:
    with (tmp_path / "config.toml").open("wb") as fh:
        fh.truncate(config.MAX_CONFIG_BYTES + 1)
    with pytest.raises(ConfigError, match="larger than 256 KiB"):
        config.load_config_file(tmp_path)


def test_a_wide_credentials_dir_is_refused_before_any_read(tmp_path: Path) -> None:
    files = FileStore(tmp_path)
    files.save("default", make_session())
    files.directory.chmod(0o777)
    for use in (lambda: files.load("default"), lambda: files.check("default")):
        with pytest.raises(StoreError, match="credentials has mode 0777"):
            use()


def test_check_tells_a_replaceable_file_from_a_refused_one(tmp_path: Path) -> None:
    files = FileStore(tmp_path)
    assert files.check("default") is False
    files.save("default", make_session())
    files.path("default").write_bytes(b"{")  # corrupt: a new session may replace it
    assert files.check("default") is True
    files.path("default").chmod(0o644)
    with pytest.raises(StoreError, match="mode 0644") as info:
        files.check("default")
    assert info.value.hint == f"run: chmod 600 {files.path('default')}"


def test_choose_for_login_refuses_a_lock_link_before_anything_is_created(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    (locks / "work.lock").symlink_to(tmp_path / "victim")
    sessions = SessionStore(tmp_path)
    with pytest.raises(StoreError, match="work.lock is a symbolic link"):
        sessions.choose_for_login("work", insecure_storage=True, credential_store_setting="")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locks"]
    assert not (tmp_path / "victim").exists()


def test_a_lock_that_cannot_be_opened_is_a_store_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The link appears after the check (a race): filelock's own refusal is reported, not raised.
    import kt_login.store.locks as locks

    monkeypatch.setattr(locks, "check_private_entry", lambda path, secret: True)
    (tmp_path / "locks").mkdir(mode=0o700)
    path = tmp_path / "locks" / "default.lock"
    path.symlink_to(tmp_path / "victim")
    with (
        pytest.raises(StoreError, match=f"cannot lock {path}") as info,
        file_lock(tmp_path, "default", 1.0),
    ):
        pass
    assert info.value.hint == f"run: rm {path}"
    assert not (tmp_path / "victim").exists()


def test_an_unusable_index_is_an_error_but_an_unparsable_one_is_empty(tmp_path: Path) -> None:
    sessions = SessionStore(tmp_path)
    (tmp_path / "sessions.json").write_bytes(b"not json")
    (tmp_path / "sessions.json").chmod(0o600)
    assert sessions.known_profiles() == []
    (tmp_path / "sessions.json").unlink()
    os.mkfifo(tmp_path / "sessions.json", 0o600)
    with pytest.raises(StoreError, match="sessions.json is a FIFO"):
        sessions.known_profiles()
