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
from ..errors import KtError, StoreError, StoreUnavailable
from ..session import Session, relogin_hint
from .envelope import EnvelopeFiles, key_from_item, key_item, new_key
from .file_store import FileStore
from .index import Where, read_index, read_keyring_backend, update_index
from .keyring_store import KEYRING_MAX_BYTES_ENV, KeyringStore, SecretTooLarge
from .locks import check_locks, refresh_lock

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

ENVELOPE_KIND = "keyring (envelope)"


class CredentialStore(Protocol):
    """What holds one profile's session: a backend, or a Location that saves through the facade."""

    @property
    def kind(self) -> str:
        """Shown by `kt auth status`: "keyring", "keyring (envelope)" or "file (plaintext)"."""
        ...

    def load(self, profile: str) -> Session | None: ...

    def save(self, profile: str, session: Session) -> None: ...

    def delete(self, profile: str) -> bool: ...


class Location:
    """One backend of a SessionStore: what `find` and `choose_for_login` return and what `save`
    takes. Loading, saving or deleting through it goes through the facade, so the rules above
    hold. The keyring's Location says whether the session last loaded or saved through it is
    sealed (`kind` "keyring (envelope)": too large for the keyring, so encrypted in a file whose
    key the keyring holds); `name` is the backend either way."""

    def __init__(self, store: SessionStore, name: Where, backend: FileStore | KeyringStore):
        self.store = store
        self.name: Where = name
        self.backend = backend
        self.sealed = False

    @property
    def kind(self) -> str:
        return ENVELOPE_KIND if self.sealed else self.backend.kind

    def load(self, profile: str) -> Session | None:
        return self.store.load(profile, self)

    def save(self, profile: str, session: Session) -> None:
        self.store.save(profile, session, into=self)

    def delete(self, profile: str) -> bool:
        """Delete the session from this backend only (no keyring call for a file session)."""
        return self.store.delete(profile, self)

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
        keyring_max_bytes: int | None = None,
        keyring_max_bytes_from: str = KEYRING_MAX_BYTES_ENV,
    ) -> None:
        self.config_dir = Path(config_dir)
        self.files = FileStore(self.config_dir)
        self.envelopes = EnvelopeFiles(self.config_dir)
        self.keyring = KeyringStore(
            remembered=lambda: read_keyring_backend(self.config_dir),
            timeout=keyring_timeout,
            backend=keyring_backend,
            max_bytes=keyring_max_bytes,
            max_bytes_from=keyring_max_bytes_from,
        )
        self.in_file = Location(self, "file", self.files)
        self.in_keyring = Location(self, "keyring", self.keyring)

    def find(self, profile: str) -> tuple[Session | None, Location | None]:
        """The profile's session and where it is, or (None, None).

        A file wins without any D-Bus call. An unusable keyring means "not logged in" unless the
        index (or a sealed file) says the session is in the keyring; then we cannot tell, and
        raise StoreUnavailable."""
        check_profile_name(profile)
        session = self.files.load(profile)
        if session is not None:
            return session, self.in_file
        where = self.in_keyring
        try:
            session = self.load(profile, where)
        except StoreUnavailable:
            if read_index(self.config_dir).get(profile) == "keyring" or self.envelopes.exists(
                profile
            ):
                raise
            return None, None
        return (session, where) if session is not None else (None, None)

    def load(self, profile: str, where: Location) -> Session | None:
        """The profile's session in `where` alone; for the keyring, opening a sealed one (and
        noting in `where` whether it was)."""
        if where.name == "file":
            return self.files.load(profile)
        text = self.keyring.read(profile)
        key = None if text is None else key_from_item(text)
        where.sealed = key is not None
        if text is None:
            if self.envelopes.exists(profile):
                raise StoreError(
                    f"the sealed session of profile {profile!r} is in "
                    f"{self.envelopes.path(profile)}, but its key is no longer in the OS "
                    "keyring, so it cannot be opened",
                    hint=relogin_hint(profile),
                )
            return None
        if key is None:
            return Session.from_json(text, profile=profile)
        session = self.envelopes.open(profile, key)
        if session is None:
            raise StoreError(
                f"the OS keyring holds the key of a sealed session of profile {profile!r}, "
                f"but {self.envelopes.path(profile)} is missing",
                hint=relogin_hint(profile),
            )
        return session

    def save(self, profile: str, session: Session, *, into: Location) -> None:
        """Save `session` in `into`, then remove the copy the other backend may hold. In the
        keyring, a session larger than it takes (the configured or known limit, or the keyring
        refuses it for its size) is sealed: its key in the keyring, the session encrypted in a
        0600 file (never plaintext)."""
        check_profile_name(profile)
        if into.name == "keyring":
            into.sealed = self._save_in_keyring(profile, session)
            self.files.delete(profile)
        else:
            into.backend.save(profile, session)
            self.envelopes.delete(profile)
            if read_index(self.config_dir).get(profile) == "keyring":
                # Best effort, and only when we know there is a copy: a hung keyring must not
                # slow down every refresh. The file wins in `find` either way.
                with contextlib.suppress(KtError):
                    self.keyring.delete(profile)
        update_index(
            self.config_dir, profile, into.name, keyring_backend=self.keyring.chosen_backend()
        )

    def _save_in_keyring(self, profile: str, session: Session) -> bool:
        """Keep the session whole in the keyring if it fits, else sealed; True when sealed."""
        blob = session.to_json()
        if self.keyring.limit_for(blob) is None:
            try:
                self.keyring.write(profile, blob)
            except SecretTooLarge:
                pass
            else:
                self.envelopes.delete(profile)  # a sealed copy from before
                return False
        # The profile's key is kept across saves (a refresh then writes the file alone, atomically);
        # a new one is written only after the file sealed under it, so a crash in between leaves
        # the previous item in the keyring.
        try:
            current = self.keyring.read(profile)
            key = None if current is None else key_from_item(current)
        except StoreError:
            key = None
        if key is not None:
            self.envelopes.seal(profile, session, key)
            return True
        key = new_key()
        self.envelopes.seal(profile, session, key)
        try:
            self.keyring.write(profile, key_item(key))
        except KtError:
            with contextlib.suppress(KtError):
                self.envelopes.delete(profile)
            raise
        return True

    def delete(self, profile: str, where: Location) -> bool:
        """Delete the profile's session from `where` only (a keyring session: its item and its
        sealed file; no keyring call for a file session)."""
        check_profile_name(profile)
        if where.name == "file":
            removed = self.files.delete(profile)
        else:
            removed = self.keyring.delete(profile)
            removed = self.envelopes.delete(profile) or removed
        update_index(self.config_dir, profile, None, only_if=where.name)
        return removed

    def forget(self, profile: str) -> bool:
        """Delete the profile's session from every backend (ST-08): the file, the keyring item
        and a sealed file; True if anything was removed.

        An unusable keyring is only an error when the index says a session is in it."""
        check_profile_name(profile)
        in_keyring = read_index(self.config_dir).get(profile) == "keyring"
        removed = self.files.delete(profile)
        removed = self.envelopes.delete(profile) or removed
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
        self.envelopes.exists(profile)  # a file kt must not replace is refused before the login
        return self.in_keyring

    def known_profiles(self) -> list[str]:
        """Profiles that may hold a session: the index plus any credentials/<name>.json and
        envelopes/<name>.json."""
        names = set(read_index(self.config_dir)) | self.files.profiles()
        return sorted(names | self.envelopes.profiles())

    @contextlib.contextmanager
    def lock(self, profile: str, timeout: float = 30.0) -> Iterator[None]:
        """Hold the profile's inter-process refresh lock; re-read the session inside (LC-02)."""
        with refresh_lock(self.config_dir, profile, timeout):
            yield
