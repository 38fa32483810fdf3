"""SessionStore: the one way in to where sessions live (SECURITY.md E).

The keyring is the default and the file is opt-in; nothing falls back to plaintext on its own.
The backends know nothing of each other: this facade enforces that a profile's session lives in
exactly one of them, and keeps the index of which one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..config import check_profile_name
from ..errors import KtError, StoreUnavailable
from ..session import Session
from .file_store import FileStore
from .index import Where, read_index, update_index
from .keyring_store import KeyringStore
from .locks import check_locks, refresh_lock

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend


class CredentialStore(Protocol):
    """What holds one profile's session: a backend, or a Location that saves through the facade."""

    @property
    def kind(self) -> str:
        """Shown by `kt auth status`: "keyring" or "file (plaintext)"."""
        ...

    def load(self, profile: str) -> Session | None: ...

    def save(self, profile: str, session: Session) -> None: ...

    def delete(self, profile: str) -> bool: ...


class Location:
    """One backend of a SessionStore: what `find` and `choose_for_login` return and what `save`
    takes. Saving or deleting through it goes through the facade, so the rules above hold."""

    def __init__(self, store: SessionStore, name: Where, backend: FileStore | KeyringStore):
        self.store = store
        self.name: Where = name
        self.backend = backend

    @property
    def kind(self) -> str:
        return self.backend.kind

    def load(self, profile: str) -> Session | None:
        return self.backend.load(profile)

    def save(self, profile: str, session: Session) -> None:
        self.store.save(profile, session, into=self)

    def delete(self, profile: str) -> bool:
        """Delete the session from this backend only (no keyring call for a file session)."""
        removed = self.backend.delete(profile)
        update_index(self.store.config_dir, profile, None, only_if=self.name)
        return removed

    def __repr__(self) -> str:
        return f"Location({self.name!r}, {str(self.store.config_dir)!r})"


class SessionStore:
    """Sessions of every profile under one config dir: find, save, forget, choose, lock.

    Hold one per command: its keyring remembers a timeout, so a hung keyring costs one wait.
    """

    def __init__(
        self,
        config_dir: Path,
        *,
        keyring_timeout: float | None = None,
        keyring_backend: KeyringBackend | None = None,
    ) -> None:
        self.config_dir = Path(config_dir)
        self.files = FileStore(self.config_dir)
        self.keyring = KeyringStore(timeout=keyring_timeout, backend=keyring_backend)
        self.in_file = Location(self, "file", self.files)
        self.in_keyring = Location(self, "keyring", self.keyring)

    def find(self, profile: str) -> tuple[Session | None, Location | None]:
        """The profile's session and where it is, or (None, None).

        A file wins without any D-Bus call. An unusable keyring means "not logged in" unless the
        index says the session is in the keyring; then we cannot tell, and raise StoreUnavailable.
        """
        check_profile_name(profile)
        session = self.files.load(profile)
        if session is not None:
            return session, self.in_file
        try:
            session = self.keyring.load(profile)
        except StoreUnavailable:
            if read_index(self.config_dir).get(profile) == "keyring":
                raise
            return None, None
        return (session, self.in_keyring) if session is not None else (None, None)

    def save(self, profile: str, session: Session, *, into: Location) -> None:
        """Save `session` in `into`, then remove the copy the other backend may hold."""
        check_profile_name(profile)
        into.backend.save(profile, session)
        if into.name == "keyring":
            self.files.delete(profile)
        elif read_index(self.config_dir).get(profile) == "keyring":
            # Best effort, and only when we know there is a copy: a hung keyring must not slow
            # down every refresh. The file wins in `find` either way.
            with contextlib.suppress(KtError):
                self.keyring.delete(profile)
        update_index(self.config_dir, profile, into.name)

    def forget(self, profile: str) -> bool:
        """Delete the profile's session from both backends (ST-08); True if anything was removed.

        An unusable keyring is only an error when the index says a session is in it."""
        check_profile_name(profile)
        in_keyring = read_index(self.config_dir).get(profile) == "keyring"
        removed = self.files.delete(profile)
        try:
            removed = self.keyring.delete(profile) or removed
        except StoreUnavailable:
            if in_keyring:
                raise
        update_index(self.config_dir, profile, None)
        return removed

    def choose_for_login(
        self, profile: str, *, insecure_storage: bool, credential_store_setting: str
    ) -> Location:
        """Where a new session goes: the opted-in file (`--insecure-storage`, or the setting
        "file"); else the keyring (saving there removes a plaintext copy); else, when the
        keyring is unusable but this profile's session is already in a file (an earlier
        opt-in), that file. A stored session that cannot be read (empty, corrupt) is replaced;
        a file the ownership rule refuses, an unusable sessions index or lock file is not
        (StoreError, its hint the fix). Raises before anything is sent or written, after at most
        one keyring timeout."""
        check_profile_name(profile)
        read_index(self.config_dir)
        check_locks(self.config_dir, profile)
        if insecure_storage or credential_store_setting == "file":
            self.files.check(profile)
            return self.in_file
        try:
            # A probe read, not this profile's item: a corrupt item must not block the login
            # that replaces it.
            self.keyring.check()
        except StoreUnavailable:
            try:
                in_file = self.files.check(profile)
            except KtError:
                in_file = False
            if not in_file:
                raise
            return self.in_file
        return self.in_keyring

    def known_profiles(self) -> list[str]:
        """Profiles that may hold a session: the index plus any credentials/<name>.json."""
        return sorted(set(read_index(self.config_dir)) | self.files.profiles())

    @contextlib.contextmanager
    def lock(self, profile: str, timeout: float = 30.0) -> Iterator[None]:
        """Hold the profile's inter-process refresh lock; re-read the session inside (LC-02)."""
        with refresh_lock(self.config_dir, profile, timeout):
            yield
