"""Owner-only files and directories under the config dir, written atomically (SECURITY.md E)."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from ..errors import StoreError

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
POSIX = os.name == "posix"


def check_private_file(path: Path, st: os.stat_result) -> None:
    """Refuse anything but a regular file of ours that no one else may read."""
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path} is not a regular file", hint="delete it and run: kt auth login")
    if not POSIX:
        return
    if st.st_uid != os.getuid():
        raise StoreError(
            f"{path} belongs to another user (uid {st.st_uid}); refusing to use it",
            hint=f"delete {path} and run: kt auth login",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise StoreError(
            f"{path} has mode {mode:04o}, so other users may read it; refusing to use it",
            hint=f"run chmod 600 {path}, or log in again",
        )


def make_config_dir(path: Path) -> None:
    """Create the config dir as 0700 if missing; an existing one (maybe a symlink into a
    dotfiles checkout) is the user's business."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror}") from None
    if not path.is_dir():
        raise StoreError(f"{path} is not a directory")


def make_private_dir(path: Path) -> None:
    """Create `path` as 0700, or check an existing one is ours and narrow it if it is wider."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise StoreError(
            f"{path} is a symbolic link; refusing to keep sessions through it (not a directory)",
            hint="move it away and try again",
        )
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path} is not a directory", hint="move it away and try again")
    if not POSIX:
        return
    if st.st_uid != os.getuid():
        raise StoreError(f"{path} belongs to another user (uid {st.st_uid}); refusing to use it")
    if stat.S_IMODE(st.st_mode) & 0o077:
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
