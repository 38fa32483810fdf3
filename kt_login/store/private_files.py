"""Owner-only files and directories under the config dir, written atomically (SECURITY.md E).

What may be read and trusted is decided by the one rule in kt_login/trusted_files.py."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from ..config import is_profile_name
from ..errors import StoreError
from ..trusted_files import (
    O_CLOEXEC,
    O_NOFOLLOW,
    POSIX,
    check_directory,
    check_file,
    check_owner_and_mode,
    run_hint,
)


def check_private_entry(path: Path, *, secret: bool) -> bool:
    """Check what is at `path` without opening it: False when nothing is there; else it must be
    a regular file (no symbolic link) that passes the ownership rule (StoreError)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise StoreError(f"cannot use {path}: {exc.strerror}") from None
    check_file(path, st, error=StoreError, secret=secret)
    return True


def make_config_dir(path: Path) -> None:
    """Create the config dir as 0700 if missing. An existing one may be a symbolic link (into a
    dotfiles checkout, say), but what it leads to must pass the ownership rule."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror}") from None
    check_directory(path, error=StoreError)


def check_private_dir(path: Path) -> bool:
    """An existing directory of ours that no one else may change (not a symbolic link); False
    when there is none."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise StoreError(f"cannot use {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise StoreError(
            f"{path} is a symbolic link; refusing to keep sessions through it (not a directory)",
            hint=run_hint("mv", path, f"{path}.moved"),
        )
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path} is not a directory", hint=run_hint("mv", path, f"{path}.moved"))
    check_owner_and_mode(path, st, error=StoreError, secret=False)
    return True


def make_private_dir(path: Path) -> None:
    """Create `path` as 0700, or check an existing one (`check_private_dir`) and narrow it if
    others may read it."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror}") from None
    check_private_dir(path)
    if POSIX and stat.S_IMODE(os.lstat(path).st_mode) & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as exc:
            raise StoreError(f"cannot make {path} private: {exc.strerror}") from None


def atomic_write(path: Path, data: bytes) -> None:
    """Write a new 0600 file next to `path`, then rename it over: old or new, never half."""
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write {path}: {exc.strerror}") from None
        raise
    if POSIX:
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY | O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def profile_files(directory: Path) -> set[str]:
    """The profiles with a `<profile>.json` file in `directory` (valid profile names only; none
    when the directory cannot be read)."""
    names = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            stem, ext = os.path.splitext(entry.name)
            if ext == ".json" and is_profile_name(stem):
                names.add(stem)
    return names


def delete_private_file(path: Path) -> bool:
    """Delete `path` and the leftovers of an interrupted atomic_write to it; True if it was
    there. What cannot be deleted (e.g. a directory planted there: moved aside, not removed, as
    it may hold something) is a StoreError."""
    try:
        os.unlink(path)
        removed = True
    except (FileNotFoundError, NotADirectoryError):
        removed = False
    except OSError as exc:
        hint = run_hint("mv", path, f"{path}.moved") if path.is_dir() else None
        raise StoreError(f"cannot delete {path}: {exc.strerror}", hint=hint) from None
    with contextlib.suppress(OSError):
        for leftover in path.parent.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
    return removed
