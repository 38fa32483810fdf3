"""Where sessions live: the OS keyring by default, a 0600 file only when the user opts in.

SECURITY.md E: the keyring is used under one service name with a timeout on every call, insecure
backends count as no keyring, nothing falls back to plaintext on its own, files are written
atomically with owner-only permissions, and a profile's session lives in exactly one store.
`refresh_lock` makes refresh single-flight across processes (LC-02).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from .errors import KtError, StoreError, StoreUnavailable, UsageError
from .session import Session

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "KEYRING_SERVICE",
    "CredentialStore",
    "FileStore",
    "KeyringStore",
    "Session",
    "find_session",
    "forget_session",
    "known_profiles",
    "open_store",
    "refresh_lock",
    "validate_profile",
]

KEYRING_SERVICE = "keeptrusts-cli"
KEYRING_TIMEOUT_ENV = "KEEPTRUSTS_KEYRING_TIMEOUT"
DEFAULT_KEYRING_TIMEOUT = 5.0
MAX_KEYRING_TIMEOUT = 300.0
UNAVAILABLE_HINT = (
    "unlock your keyring, or re-run with --insecure-storage "
    "to keep the session in a plaintext file (0600)"
)
CREDENTIALS_DIR = "credentials"
LOCKS_DIR = "locks"
INDEX_FILE = "sessions.json"
_INDEX_LOCK = ".sessions-index"  # cannot clash with a profile name, which starts alphanumeric

_PROFILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_FILE_BYTES = 1 << 20
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_POSIX = os.name == "posix"

T = TypeVar("T")


class CredentialStore(Protocol):
    kind: str  # "keyring" or "file (plaintext)", shown by `kt auth status`

    def load(self, profile: str) -> Session | None: ...

    def save(self, profile: str, session: Session) -> None: ...

    def delete(self, profile: str) -> bool: ...


def validate_profile(name: str) -> str:
    """Return `name` if it is a safe profile name (it becomes a file name), else UsageError."""
    if not isinstance(name, str) or not _PROFILE_RE.fullmatch(name):
        shown = repr(name[:70]) if isinstance(name, str) else type(name).__name__
        raise UsageError(
            f"invalid profile name {shown}: use 1-64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return name


def keyring_timeout() -> float:
    """Seconds allowed per keyring call: KEEPTRUSTS_KEYRING_TIMEOUT if it is sane, else 5."""
    raw = os.environ.get(KEYRING_TIMEOUT_ENV, "").strip()
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_KEYRING_TIMEOUT
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_KEYRING_TIMEOUT
    return min(value, MAX_KEYRING_TIMEOUT)


# --------------------------------------------------------------------------- keyring


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


def _username(profile: str) -> str:
    return f"profile:{profile}"


class KeyringStore:
    """Sessions in the OS keyring: service KEYRING_SERVICE, username "profile:<name>"."""

    kind = "keyring"

    def __init__(
        self,
        config_dir: Path,
        *,
        timeout: float | None = None,
        backend: KeyringBackend | None = None,
    ) -> None:
        self.config_dir = Path(config_dir)
        self.timeout = keyring_timeout() if timeout is None else timeout
        self._requested = backend
        self._backend: KeyringBackend | None = None
        self._broken: StoreUnavailable | None = None

    def check(self) -> None:
        """Raise StoreUnavailable unless a secure keyring answers a read; use it before asking
        for a password, so a login never happens only to find nowhere to keep its session."""
        backend = self._resolve()
        self._call(lambda: backend.get_password(KEYRING_SERVICE, "kt:probe"))

    def load(self, profile: str) -> Session | None:
        user = _username(validate_profile(profile))
        backend = self._resolve()
        text = self._call(lambda: backend.get_password(KEYRING_SERVICE, user))
        return None if text is None else Session.from_json(text)

    def save(self, profile: str, session: Session) -> None:
        user = _username(validate_profile(profile))
        blob = session.to_json()
        backend = self._resolve()
        self._call(lambda: backend.set_password(KEYRING_SERVICE, user, blob), writing=True)
        FileStore(self.config_dir).remove_copy(profile)
        _update_index(self.config_dir, profile, "keyring")

    def delete(self, profile: str) -> bool:
        removed = self.remove_copy(profile)
        _update_index(self.config_dir, profile, None, only_if="keyring")
        return removed

    def remove_copy(self, profile: str) -> bool:
        """Delete the keyring item without touching the index."""
        user = _username(validate_profile(profile))
        backend = self._resolve()
        return self._call(lambda: _delete_password(backend, user))

    def _resolve(self) -> KeyringBackend:
        if self._backend is not None:
            return self._backend
        requested = self._requested

        def pick() -> KeyringBackend | str:
            if requested is not None:
                return _secure_backend(requested)
            import keyring

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


# --------------------------------------------------------------------------- file


class FileStore:
    """Sessions as plaintext JSON in <config_dir>/credentials/<profile>.json (0600, dir 0700)."""

    kind = "file (plaintext)"

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = Path(config_dir)
        self.directory = self.config_dir / CREDENTIALS_DIR

    def path(self, profile: str) -> Path:
        return self.directory / f"{validate_profile(profile)}.json"

    def load(self, profile: str) -> Session | None:
        path = self.path(profile)
        try:
            # O_NONBLOCK: a FIFO planted at the path must not hang us before the type check.
            fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
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
            _check_private_file(path, os.fstat(fd))
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(_MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(data) > _MAX_FILE_BYTES:
            raise StoreError(f"{path} is too large to be a session", hint="run: kt auth login")
        return Session.from_json(data)

    def save(self, profile: str, session: Session) -> None:
        path = self.path(profile)
        blob = session.to_json().encode()
        _config_dir(self.config_dir)
        _private_dir(self.directory)
        _atomic_write(path, blob)
        if _read_index(self.config_dir).get(profile) == "keyring":
            # Best effort, and only when we know there is a copy: a hung keyring must not slow
            # down every refresh. The file wins in find_session either way.
            with contextlib.suppress(KtError):
                KeyringStore(self.config_dir).remove_copy(profile)
        _update_index(self.config_dir, profile, "file")

    def delete(self, profile: str) -> bool:
        removed = self.remove_copy(profile)
        _update_index(self.config_dir, profile, None, only_if="file")
        return removed

    def remove_copy(self, profile: str) -> bool:
        """Delete the file (and leftovers of an interrupted save) without touching the index."""
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


def _check_private_file(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path} is not a regular file", hint="delete it and run: kt auth login")
    if not _POSIX:
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


def _config_dir(path: Path) -> None:
    """Create the config dir as 0700 if missing; an existing one (maybe a symlink into a
    dotfiles checkout) is the user's business."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror}") from None
    if not path.is_dir():
        raise StoreError(f"{path} is not a directory")


def _private_dir(path: Path) -> None:
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
    if not _POSIX:
        return
    if st.st_uid != os.getuid():
        raise StoreError(f"{path} belongs to another user (uid {st.st_uid}); refusing to use it")
    if stat.S_IMODE(st.st_mode) & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as exc:
            raise StoreError(f"cannot make {path} private: {exc.strerror}") from None


def _atomic_write(path: Path, data: bytes) -> None:
    """Write a new 0600 file next to `path`, then rename it over: old or new, never half."""
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
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
    if _POSIX:
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY | _O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


# --------------------------------------------------------------------------- index and lookup


def _read_index(config_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((Path(config_dir) / INDEX_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    profiles = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(profiles, dict):
        return {}
    return {
        name: where
        for name, where in profiles.items()
        if isinstance(name, str) and _PROFILE_RE.fullmatch(name) and where in ("keyring", "file")
    }


def _update_index(
    config_dir: Path, profile: str, where: str | None, *, only_if: str | None = None
) -> None:
    """Record where `profile`'s session is (None: nowhere). Best effort: the session itself is
    already saved or deleted, and a missing index entry only hides it from `logout --all`."""

    def apply(index: dict[str, str]) -> bool:
        if where is not None:
            changed = index.get(profile) != where
            index[profile] = where
            return changed
        if profile in index and (only_if is None or index[profile] == only_if):
            del index[profile]
            return True
        return False

    if not apply(_read_index(config_dir)):
        return  # e.g. logout on a fresh machine: do not create any directory
    with contextlib.suppress(KtError), _lock(Path(config_dir), _INDEX_LOCK, 10.0):
        index = _read_index(config_dir)
        if apply(index):
            body = json.dumps({"profiles": dict(sorted(index.items()))}, indent=1)
            _atomic_write(Path(config_dir) / INDEX_FILE, body.encode() + b"\n")


def open_store(config_dir: Path, *, prefer_file: bool) -> CredentialStore:
    """The store a new session goes to: the keyring, or the file if the user opted in."""
    return FileStore(config_dir) if prefer_file else KeyringStore(config_dir)


def find_session(config_dir: Path, profile: str) -> tuple[Session | None, CredentialStore | None]:
    """The profile's session and the store holding it, or (None, None).

    A file wins without any D-Bus call. An unusable keyring means "not logged in" unless the
    index says the session is in the keyring; then we cannot tell, and raise StoreUnavailable.
    """
    validate_profile(profile)
    files = FileStore(config_dir)
    session = files.load(profile)
    if session is not None:
        return session, files
    keyring_store = KeyringStore(config_dir)
    try:
        session = keyring_store.load(profile)
    except StoreUnavailable:
        if _read_index(config_dir).get(profile) == "keyring":
            raise
        return None, None
    return (session, keyring_store) if session is not None else (None, None)


def forget_session(config_dir: Path, profile: str) -> bool:
    """Delete the profile's session from every store (ST-08); True if anything was removed.

    An unusable keyring is only an error when the index says a session is in it."""
    validate_profile(profile)
    in_keyring = _read_index(config_dir).get(profile) == "keyring"
    removed = FileStore(config_dir).delete(profile)
    try:
        removed = KeyringStore(config_dir).delete(profile) or removed
    except StoreUnavailable:
        if in_keyring:
            raise
    return removed


def known_profiles(config_dir: Path) -> list[str]:
    """Profiles that may hold a session: the index plus any credentials/<name>.json."""
    names = set(_read_index(config_dir))
    with contextlib.suppress(OSError):
        for entry in os.scandir(Path(config_dir) / CREDENTIALS_DIR):
            stem, ext = os.path.splitext(entry.name)
            if ext == ".json" and _PROFILE_RE.fullmatch(stem):
                names.add(stem)
    return sorted(names)


# --------------------------------------------------------------------------- locking


@contextlib.contextmanager
def _lock(config_dir: Path, name: str, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    locks = config_dir / LOCKS_DIR
    _config_dir(config_dir)
    _private_dir(locks)
    path = locks / f"{name}.lock"
    # A singleton instance per path makes nested use in one thread re-entrant, not a deadlock.
    lock = FileLock(path, mode=0o600, is_singleton=True)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise StoreError(
            f"timed out after {timeout:g} s waiting for {path}, held by another kt process",
            hint="wait for the other kt command to finish, then try again",
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def refresh_lock(config_dir: Path, profile: str, timeout: float = 30.0) -> Iterator[None]:
    """Hold the profile's inter-process refresh lock; re-read the store after entering (LC-02)."""
    validate_profile(profile)
    with _lock(Path(config_dir), profile, timeout):
        yield
