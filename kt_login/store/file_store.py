"""The opt-in plaintext backend: <config_dir>/credentials/<profile>.json, 0600 in a 0700 dir."""

from __future__ import annotations

from pathlib import Path

from ..config import check_profile_name
from ..errors import StoreError
from ..session import Session
from ..trusted_files import read_file
from .private_files import (
    atomic_write,
    check_private_dir,
    check_private_entry,
    delete_private_file,
    make_config_dir,
    make_private_dir,
    profile_files,
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
        """The profile's session, None when it has no file; a file kt must not read (a link, a
        FIFO, another user's, readable by others, huge) or cannot parse is a StoreError."""
        path = self.path(profile)
        if not check_private_dir(self.directory):
            return None
        data = read_file(path, limit=MAX_FILE_BYTES, error=StoreError, secret=True)
        return None if data is None else Session.from_json(data, profile=profile)

    def check(self, profile: str) -> bool:
        """Whether the profile has a file here that a new session may replace, without reading it:
        an unreadable session may be replaced, but a file the rule refuses is a StoreError whose
        hint fixes it (a login must not write through a link or into another user's file)."""
        path = self.path(profile)
        return check_private_dir(self.directory) and check_private_entry(path, secret=True)

    def save(self, profile: str, session: Session) -> None:
        path = self.path(profile)
        blob = session.to_json().encode()
        make_config_dir(self.config_dir)
        make_private_dir(self.directory)
        atomic_write(path, blob)

    def delete(self, profile: str) -> bool:
        """Delete the file (and leftovers of an interrupted save); True if there was one."""
        return delete_private_file(self.path(profile))

    def profiles(self) -> set[str]:
        """Profiles with a file here (valid names only)."""
        return profile_files(self.directory)
