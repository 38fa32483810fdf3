"""The files kt reads (config.toml, sessions.json, session files) and the directories that hold
them: one way to read them, one rule for whom they must belong to (docs/security.md LF-01..03).

Like ssh's StrictModes: a file or directory that another user may change is not trusted, and
neither is one another user owns (root excepted). A file holding a secret must also be unreadable
by others. Every refusal is one line naming the path, with a hint that is the command fixing it.
Lowest layer: imports nothing of kt_login but the errors and text.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import KtError
from .text import run_hint as run_hint  # the one hint writer, used by the store too

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
POSIX = os.name == "posix"

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
)


def read_file(
    path: Path, *, limit: int, error: type[KtError], secret: bool = False
) -> bytes | None:
    """The bytes of the regular file at `path`, or None when there is none.

    Opened without following a symbolic link and without blocking (a FIFO planted there must not
    hang kt), checked on the open descriptor (`check_file`), and read no further than `limit`
    bytes (a link to /dev/zero is refused, and a huge file is not read whole). Anything else is
    `error`."""
    try:
        fd = os.open(path, os.O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path):
            raise _not_a_file(path, "a symbolic link", error) from None
        raise error(f"cannot read {path}: {exc.strerror}") from None
    try:
        check_file(path, os.fstat(fd), error=error, secret=secret)
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(
            f"{path} is larger than {_size(limit)}; refusing to read it", hint=run_hint("rm", path)
        )
    return data


def check_file(path: Path, st: os.stat_result, *, error: type[KtError], secret: bool) -> None:
    """Refuse anything at `path` but a regular file that passes `check_owner_and_mode`."""
    if not stat.S_ISREG(st.st_mode):
        raise _not_a_file(path, _kind(st.st_mode), error)
    check_owner_and_mode(path, st, error=error, secret=secret)


def check_directory(path: Path, *, error: type[KtError]) -> bool:
    """Check the directory at `path` (a symbolic link to one is followed, e.g. a config dir kept in
    a dotfiles checkout) by `check_owner_and_mode`; False when there is nothing there."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise error(f"cannot use {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise error(f"{path} is not a directory", hint=run_hint("mv", path, f"{path}.moved"))
    check_owner_and_mode(path, st, error=error, secret=False)
    return True


def check_owner_and_mode(
    path: Path, st: os.stat_result, *, error: type[KtError], secret: bool
) -> None:
    """The one ownership rule: `path` belongs to this user (or root, unless it holds a secret), no
    other user may change it, and when it holds a `secret`, no other user may read it either."""
    if not POSIX:
        return
    if st.st_uid != os.getuid() and (secret or st.st_uid != 0):
        raise error(
            f"{path} belongs to another user (uid {st.st_uid}); refusing to trust it",
            hint=_chown_hint(path),
        )
    mode = stat.S_IMODE(st.st_mode)
    if secret and mode & 0o077:
        private = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        raise error(
            f"{path} has mode {mode:04o}, so other users may read or change it; refusing to use it",
            hint=run_hint("chmod", f"{private:o}", path),
        )
    if mode & 0o022:
        raise error(
            f"{path} has mode {mode:04o}, so other users may change it; refusing to trust it",
            hint=run_hint("chmod", "go-w", path),
        )


def _not_a_file(path: Path, kind: str, error: type[KtError]) -> KtError:
    # A directory is moved aside, not removed: it may hold something the user wants.
    fix = run_hint("mv", path, f"{path}.moved") if kind == "a directory" else run_hint("rm", path)
    how = "which kt does not follow" if kind == "a symbolic link" else "not a regular file"
    return error(f"{path} is {kind}, {how}; refusing to use it", hint=fix)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"


def _chown_hint(path: Path) -> str:
    import pwd

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    hint = run_hint("chown", user, path)
    return hint if os.getuid() == 0 else hint.replace("run: ", "run: sudo ", 1)
