"""The default backend: the OS keyring, under one service name with a timeout on every call.

SECURITY.md E: insecure backends (fail, null, keyrings.alt, a chainer without a secure member)
count as no keyring, and nothing falls back to plaintext on its own. `keyring` is imported only
when a call is made, so importing this module stays light.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..config import ENV_KEYRING_MAX_BYTES, check_profile_name, size_limit
from ..errors import KtError, StoreUnavailable
from ..session import Session

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

KEYRING_SERVICE = "keeptrusts-cli"
KEYRING_TIMEOUT_ENV = "KEEPTRUSTS_KEYRING_TIMEOUT"
KEYRING_MAX_BYTES_ENV = ENV_KEYRING_MAX_BYTES
DEFAULT_KEYRING_TIMEOUT = 5.0
MAX_KEYRING_TIMEOUT = 300.0
# The command line says what else can be done (cli.app.Invocation.working_hint): only some
# commands take --insecure-storage.
UNAVAILABLE_HINT = "unlock your keyring and try again"

T = TypeVar("T")


def keyring_timeout(env: Mapping[str, str] | None = None) -> float:
    """Seconds allowed per keyring call: KEEPTRUSTS_KEYRING_TIMEOUT if it is sane, else 5."""
    raw = (os.environ if env is None else env).get(KEYRING_TIMEOUT_ENV, "").strip()
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_KEYRING_TIMEOUT
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_KEYRING_TIMEOUT
    return min(value, MAX_KEYRING_TIMEOUT)


def keyring_max_bytes(env: Mapping[str, str] | None = None) -> int:
    """The largest secret (UTF-8 bytes) kt puts whole in the keyring by KEEPTRUSTS_KEYRING_MAX_BYTES
    alone (config.size_limit's rule), else 0 (no limit of ours; the backend's own still apply).
    A command's limit is its Settings.keyring_max_bytes, which adds config.toml's key."""
    return size_limit((os.environ if env is None else env).get(KEYRING_MAX_BYTES_ENV, "")) or 0


# Backends known to refuse secrets above a size, as (how they store the text, bytes allowed):
# Windows Credential Manager keeps a credential blob of at most CRED_MAX_CREDENTIAL_BLOB_SIZE
# (5 * 512 bytes), and keyring writes the password into it as UTF-16.
KNOWN_LIMITS: dict[str, tuple[str, int]] = {
    "keyring.backends.Windows.WinVaultKeyring": ("utf-16-le", 5 * 512),
}
# How backends say a secret was too big: go-keyring and macOS tools ("data passed to Set was too
# big"), Windows (RPC_X_BAD_STUB_DATA, 1783: "The stub received bad data"), and the usual words.
_TOO_LARGE = re.compile(
    r"too (big|large|long)|exceeds?\b.*\b(size|limit|length)|stub received bad data|\b1783\b",
    re.IGNORECASE,
)


PROBE_USER = "kt:doctor-probe"


@dataclass(frozen=True)
class KeyringProbe:
    """What `KeyringStore.probe` found: the backend, and how long its calls took."""

    backend: str  # module.class, e.g. keyring.backends.SecretService.Keyring
    seconds: float  # write, read back and delete of the probe secret, together
    limit: str | None  # what is sealed rather than kept whole, when kt knows a limit


class SecretTooLarge(StoreUnavailable):
    """The keyring refused a secret for its size (or it is above the configured limit)."""


def _refused_for_size(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.E2BIG, errno.EMSGSIZE, errno.EFBIG):
        return True
    return any(_TOO_LARGE.search(str(part)) for part in (exc, *exc.args))


class _KeyringTimeout(Exception):
    pass


def _bounded(call: Callable[[], T], timeout: float) -> T:
    """Run `call` in a daemon thread; a hung D-Bus call must neither block us nor the exit."""
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="kt-keyring", daemon=True).start()
    if not done.wait(timeout):
        raise _KeyringTimeout
    if failure:
        raise failure[0]
    return outcome[0]


def _insecure_reason(backend: object) -> str | None:
    modules = {cls.__module__ for cls in type(backend).__mro__}
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if "keyring.backends.fail" in modules:
        return "no OS keyring was found"
    if "keyring.backends.null" in modules:
        return "keyring storage is disabled (null backend)"
    if any(m == "keyrings.alt" or m.startswith("keyrings.alt.") for m in modules):
        return f"{name} is not a secure store"
    return None


def _secure_backend(backend: KeyringBackend) -> KeyringBackend | str:
    """The backend to use, or why there is none (ST-03). Runs in the worker thread."""
    from keyring.backends.chainer import ChainerBackend

    if isinstance(backend, ChainerBackend):
        # Writes go to the first member that accepts them; use only secure members, so a
        # plaintext member can neither receive the session nor answer a read.
        members: list[KeyringBackend] = list(backend.backends)
        usable = [b for b in members if _insecure_reason(b) is None]
        if not usable:
            return "no secure keyring among the chained backends"
        return usable[0]
    return _insecure_reason(backend) or backend


def _delete_password(backend: KeyringBackend, username: str) -> bool:
    from keyring.errors import PasswordDeleteError

    try:
        backend.delete_password(KEYRING_SERVICE, username)
    except PasswordDeleteError:
        return False
    return True


# Only keyring's own backends are remembered: load_keyring imports the module it is given.
REMEMBERED_BACKEND = re.compile(r"keyring\.backends\.[A-Za-z_][\w.]*")


def _keyring_left_to_choose() -> bool:
    """Neither PYTHON_KEYRING_BACKEND nor a keyringrc.cfg names a backend: keyring would
    choose by priority, as it did when the remembered backend was saved to."""
    from keyring.util import platform_

    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return False
    return not os.path.exists(os.path.join(platform_.config_root(), "keyringrc.cfg"))


def _name(backend: object) -> str:
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def _username(profile: str) -> str:
    return f"profile:{profile}"


class KeyringStore:
    """Sessions in the OS keyring: service KEYRING_SERVICE, username "profile:<name>".

    Knows nothing of the file backend or the index. Once a call has timed out, every later call
    fails at once: the hung thread may still hold a D-Bus connection."""

    kind = "keyring"

    def __init__(
        self,
        *,
        timeout: float | None = None,
        backend: KeyringBackend | None = None,
        max_bytes: int | None = None,
        max_bytes_from: str = KEYRING_MAX_BYTES_ENV,
        remembered: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.timeout = keyring_timeout() if timeout is None else timeout
        self.max_bytes = keyring_max_bytes() if max_bytes is None else max_bytes
        self.max_bytes_from = max_bytes_from  # where the limit was set, for messages
        self._requested = backend
        self._remembered = remembered
        self._backend: KeyringBackend | None = None
        self._broken: StoreUnavailable | None = None

    def chosen_backend(self) -> str | None:
        """The class of the backend in use, when keyring chose it and may be asked to load it
        again by name (REMEMBERED_BACKEND); None before any call, or for a given backend."""
        if self._backend is None or self._requested is not None:
            return None
        name = _name(self._backend)
        return name if REMEMBERED_BACKEND.fullmatch(name) else None

    def check(self) -> None:
        """Raise StoreUnavailable unless a secure keyring answers a read; use it before asking
        for a password, so a login never happens only to find nowhere to keep its session."""
        backend = self._resolve()
        self._call(lambda: backend.get_password(KEYRING_SERVICE, "kt:probe"))

    def probe(self) -> KeyringProbe:
        """Write a random probe secret (username PROBE_USER), read it back and delete it, each
        call under the timeout; StoreUnavailable says what failed (kt auth doctor)."""
        import secrets  # only here: kt auth doctor's probe

        backend = self._resolve()
        value = secrets.token_urlsafe(16)
        started = time.monotonic()
        self._call(lambda: backend.set_password(KEYRING_SERVICE, PROBE_USER, value), writing=True)
        read = self._call(lambda: backend.get_password(KEYRING_SERVICE, PROBE_USER))
        deleted = self._call(lambda: _delete_password(backend, PROBE_USER))
        elapsed = time.monotonic() - started
        if read != value:
            raise StoreUnavailable(
                "the OS keyring did not give back the probe secret kt wrote", hint=UNAVAILABLE_HINT
            )
        if not deleted:
            raise StoreUnavailable(
                "the OS keyring could not delete the probe secret kt wrote", hint=UNAVAILABLE_HINT
            )
        name = _name(backend)
        limit = None
        if self.max_bytes:
            limit = f"sessions over {self.max_bytes} bytes ({self.max_bytes_from}) are sealed"
        elif name in KNOWN_LIMITS:
            limit = f"sessions over {KNOWN_LIMITS[name][1]} bytes are sealed (the backend's limit)"
        return KeyringProbe(backend=name, seconds=elapsed, limit=limit)

    def load(self, profile: str) -> Session | None:
        text = self.read(profile)
        return None if text is None else Session.from_json(text, profile=profile)

    def save(self, profile: str, session: Session) -> None:
        self.write(profile, session.to_json())

    def read(self, profile: str) -> str | None:
        """The text of the profile's item, None when there is none."""
        user = _username(check_profile_name(profile))
        backend = self._resolve()
        return self._call(lambda: backend.get_password(KEYRING_SERVICE, user))

    def write(self, profile: str, text: str) -> None:
        """Keep `text` as the profile's item. SecretTooLarge when it is above the configured or
        the backend's known limit (nothing is sent), or the backend refused it for its size."""
        user = _username(check_profile_name(profile))
        backend = self._resolve()
        limit = self.limit_for(text)
        if limit is not None:
            raise SecretTooLarge(
                f"the session is larger than the OS keyring takes ({limit})", hint=UNAVAILABLE_HINT
            )
        self._call(lambda: backend.set_password(KEYRING_SERVICE, user, text), writing=True)

    def limit_for(self, text: str) -> str | None:
        """Why `text` is too large to send to this keyring (the limit it is above), or None.
        Resolves the backend (one call at most)."""
        size = len(text.encode())
        if self.max_bytes and size > self.max_bytes:
            return f"{size} bytes; {self.max_bytes_from} is {self.max_bytes}"
        name = _name(self._resolve())
        known = KNOWN_LIMITS.get(name)
        if known is not None and len(text.encode(known[0])) > known[1]:
            return f"{name} holds at most {known[1]} bytes"
        return None

    def delete(self, profile: str) -> bool:
        """Delete the profile's item; True if there was one."""
        user = _username(check_profile_name(profile))
        backend = self._resolve()
        return self._call(lambda: _delete_password(backend, user))

    # Items beside the profiles' sessions, e.g. "pending:<handle>" (store/pending.py); a name
    # with a colon never clashes with "profile:<name>" of a valid profile.
    def read_item(self, name: str) -> str | None:
        backend = self._resolve()
        return self._call(lambda: backend.get_password(KEYRING_SERVICE, name))

    def write_item(self, name: str, text: str) -> None:
        backend = self._resolve()
        self._call(lambda: backend.set_password(KEYRING_SERVICE, name, text), writing=True)

    def delete_item(self, name: str) -> bool:
        backend = self._resolve()
        return self._call(lambda: _delete_password(backend, name))

    def _resolve(self) -> KeyringBackend:
        if self._backend is not None:
            return self._backend
        requested = self._requested
        remembered = self._remembered() if requested is None else None

        def pick() -> KeyringBackend | str:
            if requested is not None:
                return _secure_backend(requested)
            if sys.platform != "darwin":
                # keyring's macOS backend loads its frameworks when imported, with
                # ctypes.util.find_library, which elsewhere runs ldconfig, gcc and ld three
                # times over (~100 ms) only to fail; that backend refuses to run off macOS
                # anyway. A None entry makes its `from . import api` fail at once, as it would.
                sys.modules.setdefault("keyring.backends.macOS.api", None)  # type: ignore[arg-type]
            import keyring

            if (
                remembered
                and REMEMBERED_BACKEND.fullmatch(remembered)
                and _keyring_left_to_choose()
            ):
                # The backend keyring chose when this session was saved (issue 16: its choice
                # imports every backend, the macOS one running ctypes.util.find_library, which
                # on Linux runs ldconfig and gcc); if it no longer loads, keyring chooses again.
                with contextlib.suppress(Exception):
                    again = _secure_backend(keyring.core.load_keyring(remembered))
                    if not isinstance(again, str):
                        return again
            return _secure_backend(keyring.get_keyring())

        chosen = self._call(pick)
        if isinstance(chosen, str):
            raise StoreUnavailable(
                f"the OS keyring is unavailable: {chosen}", hint=UNAVAILABLE_HINT
            )
        self._backend = chosen
        return chosen

    def _call(self, call: Callable[[], T], *, writing: bool = False) -> T:
        if self._broken is not None:
            raise self._broken
        try:
            return _bounded(call, self.timeout)
        except _KeyringTimeout:
            # The hung thread may still hold a D-Bus connection: never queue more behind it.
            self._broken = StoreUnavailable(
                f"the OS keyring did not answer within {self.timeout:g} s", hint=UNAVAILABLE_HINT
            )
            raise self._broken from None
        except KtError:
            raise
        except Exception as exc:
            if writing and _refused_for_size(exc):
                raise SecretTooLarge(
                    f"the OS keyring refused the secret for its size ({type(exc).__name__})",
                    hint=UNAVAILABLE_HINT,
                ) from None
            raise StoreUnavailable(_describe(exc, writing=writing), hint=UNAVAILABLE_HINT) from None


def _describe(exc: Exception, *, writing: bool) -> str:
    try:
        from keyring import errors
    except ImportError:
        return "the OS keyring is unavailable: the keyring package cannot be imported"
    if isinstance(exc, errors.KeyringLocked):
        return "the OS keyring is locked"
    if isinstance(exc, errors.NoKeyringError):
        return "the OS keyring is unavailable: no OS keyring was found"
    text = str(exc)
    # A backend error raised while it held the session may quote any part of it: when writing,
    # report only the error type.
    detail = "" if writing or not text.strip() else text.splitlines()[0][:160]
    detail = "".join(c if c.isprintable() else "?" for c in detail)
    if isinstance(exc, errors.InitError):
        return f"the OS keyring could not be opened ({detail or type(exc).__name__})"
    name = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"the OS keyring failed ({name})"
