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
