"""The opt-in plaintext backend: <config_dir>/credentials/<profile>.json, 0600 in a 0700 dir."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from ..config import check_profile_name, is_profile_name
from ..errors import StoreError
from ..session import Session
from .private_files import (
    O_CLOEXEC,
    O_NOFOLLOW,
    O_NONBLOCK,
    atomic_write,
    check_private_file,
    make_config_dir,
    make_private_dir,
)

CREDENTIALS_DIR = "credentials"
MAX_FILE_BYTES = 1 << 20


class FileStore:
    """Sessions as plaintext JSON files. Knows nothing of the keyring or the index."""

    kind = "file (plaintext)"

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = Path(config_dir)
        self.directory = self.config_dir / CREDENTIALS_DIR

    def path(self, profile: str) -> Path:
        return self.directory / f"{check_profile_name(profile)}.json"

    def load(self, profile: str) -> Session | None:
        path = self.path(profile)
        try:
            # O_NONBLOCK: a FIFO planted at the path must not hang us before the type check.
            fd = os.open(path, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK) or path.is_symlink():
                raise StoreError(
                    f"{path} is a symbolic link; refusing to read a session through it",
                    hint=f"delete {path} and run: kt auth login",
                ) from None
            raise StoreError(f"cannot read {path}: {exc.strerror}") from None
        try:
            check_private_file(path, os.fstat(fd))
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(data) > MAX_FILE_BYTES:
            raise StoreError(f"{path} is too large to be a session", hint="run: kt auth login")
        return Session.from_json(data)

    def save(self, profile: str, session: Session) -> None:
        path = self.path(profile)
        blob = session.to_json().encode()
        make_config_dir(self.config_dir)
        make_private_dir(self.directory)
        atomic_write(path, blob)

    def delete(self, profile: str) -> bool:
        """Delete the file (and leftovers of an interrupted save); True if there was one."""
        path = self.path(profile)
        try:
            os.unlink(path)
            removed = True
        except (FileNotFoundError, NotADirectoryError):
            removed = False
        except OSError as exc:
            raise StoreError(f"cannot delete {path}: {exc.strerror}") from None
        for leftover in self.directory.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        return removed

    def profiles(self) -> set[str]:
        """Profiles with a file here (valid names only)."""
        names = set()
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                stem, ext = os.path.splitext(entry.name)
                if ext == ".json" and is_profile_name(stem):
                    names.add(stem)
        return names
