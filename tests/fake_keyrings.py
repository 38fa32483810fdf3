"""Keyring backends for tests.

Every class here has `viable = False`, which keeps it out of keyring's automatic backend
selection: importing this module never changes the backend another test (or process) gets.
Select one explicitly, e.g. `PYTHON_KEYRING_BACKEND=tests.fake_keyrings.HangingKeyring`, or pass
an instance to `KeyringStore(backend=...)` or `SessionStore(..., keyring_backend=...)`.
"""

from __future__ import annotations

import threading

from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.backends.chainer import ChainerBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """A well-behaved keyring kept in memory; it counts as secure."""

    viable = False
    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


class HangingKeyring(KeyringBackend):
    """Every call blocks (like a keyring stuck behind an unanswered D-Bus prompt) until
    `release` is set, or for ten minutes."""

    viable = False
    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.calls = 0

    def _hang(self) -> None:
        self.calls += 1
        self.release.wait(600)

    def get_password(self, service: str, username: str) -> str | None:
        self._hang()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self._hang()

    def delete_password(self, service: str, username: str) -> None:
        self._hang()


class _KeyringsAltStandIn(MemoryKeyring):
    pass


# The store recognises keyrings.alt backends by the package they come from; this stand-in
# claims that origin so the rule can be tested without installing keyrings.alt (which would
# become the default backend for every test in the environment).
_KeyringsAltStandIn.__module__ = "keyrings.alt.file"


class PlaintextLikeKeyring(_KeyringsAltStandIn):
    """Behaves like keyrings.alt.file.PlaintextKeyring: works, but is no protection."""


class InsecureChainer(ChainerBackend):
    """A chainer whose members are all insecure."""

    viable = False
    backends = [PlaintextLikeKeyring(), fail.Keyring()]


class MixedChainer(ChainerBackend):
    """A chainer whose highest-priority member is insecure, followed by a secure one."""

    viable = False
    plaintext = PlaintextLikeKeyring()
    secure = MemoryKeyring()
    backends = [plaintext, secure]


TOO_BIG = "data passed to Set was too big"  # what go-keyring says on macOS


class SizeLimitedKeyring(MemoryKeyring):
    """A secure keyring that refuses secrets over `limit` bytes, as macOS's and Windows' stores
    do for large ones (PasswordSetError "data passed to Set was too big")."""

    def __init__(self, limit: int = 2048) -> None:
        super().__init__()
        self.limit = limit
        self.refused = 0

    def set_password(self, service: str, username: str, password: str) -> None:
        if len(password.encode()) > self.limit:
            from keyring.errors import PasswordSetError

            self.refused += 1
            raise PasswordSetError(TOO_BIG)
        super().set_password(service, username, password)


class SmallFileKeyring(KeyringBackend):
    """A size-limited keyring that outlives the process, for tests through the real `kt`: its
    items are in the JSON file $KT_TEST_KEYRING_FILE, and it refuses secrets over
    $KT_TEST_KEYRING_LIMIT bytes (default 2048) like SizeLimitedKeyring. Counts as secure."""

    viable = False
    priority = 1

    @staticmethod
    def _path() -> str:
        import os

        return os.environ["KT_TEST_KEYRING_FILE"]

    def _items(self) -> dict[str, str]:
        import json
        import os

        if not os.path.exists(self._path()):
            return {}
        with open(self._path(), encoding="utf-8") as fh:
            items: dict[str, str] = json.load(fh)
        return items

    def _write(self, items: dict[str, str]) -> None:
        import json

        with open(self._path(), "w", encoding="utf-8") as fh:
            json.dump(items, fh)

    def get_password(self, service: str, username: str) -> str | None:
        return self._items().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        import os

        if len(password.encode()) > int(os.environ.get("KT_TEST_KEYRING_LIMIT", "2048")):
            from keyring.errors import PasswordSetError

            raise PasswordSetError(TOO_BIG)
        items = self._items()
        items[f"{service}/{username}"] = password
        self._write(items)

    def delete_password(self, service: str, username: str) -> None:
        items = self._items()
        if items.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("not found")
        self._write(items)


class LockedKeyring(KeyringBackend):
    """A keyring that is there but locked: every call raises KeyringLocked."""

    viable = False
    priority = 1

    def _locked(self) -> None:
        from keyring.errors import KeyringLocked

        raise KeyringLocked("Failed to unlock the collection!")

    def get_password(self, service: str, username: str) -> str | None:
        self._locked()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self._locked()

    def delete_password(self, service: str, username: str) -> None:
        self._locked()
