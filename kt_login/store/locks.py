"""Inter-process locks under <config_dir>/locks: one per profile for refresh (LC-02), one for
the sessions index."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..config import check_profile_name
from ..errors import StoreError
from ..trusted_files import run_hint
from .private_files import check_private_dir, check_private_entry, make_config_dir, make_private_dir

LOCKS_DIR = "locks"
INDEX_LOCK = ".sessions-index"  # cannot clash with a profile name, which starts alphanumeric


def load_lock_library() -> None:
    """Import what file_lock needs ahead of time (a sign-in does it while the person is in the
    browser, issue 16: ~15 ms that would otherwise come after the callback)."""
    import filelock  # noqa: F401


@contextlib.contextmanager
def file_lock(config_dir: Path, name: str, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    make_config_dir(config_dir)
    make_private_dir(config_dir / LOCKS_DIR)
    path = lock_path(config_dir, name)
    check_private_entry(path, secret=False)
    # A singleton instance per path makes nested use in one thread re-entrant, not a deadlock.
    lock = FileLock(path, mode=0o600, is_singleton=True)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise StoreError(
            f"timed out after {timeout:g} s waiting for {path}, held by another kt process",
            hint="wait for the other kt command to finish, then try again",
        ) from None
    except OSError as exc:  # e.g. a link planted after the check: filelock does not follow it
        raise StoreError(f"cannot lock {path}: {exc.strerror}", hint=run_hint("rm", path)) from None
    try:
        yield
    finally:
        lock.release()


def lock_path(config_dir: Path, name: str) -> Path:
    return Path(config_dir) / LOCKS_DIR / f"{name}.lock"


def check_locks(config_dir: Path, profile: str) -> None:
    """Refuse now, without creating anything, the lock files a login will take later (a link or
    anything but a file of ours: StoreError naming it, with the fix)."""
    if check_private_dir(Path(config_dir) / LOCKS_DIR):
        for name in (check_profile_name(profile), INDEX_LOCK):
            check_private_entry(lock_path(config_dir, name), secret=False)


@contextlib.contextmanager
def refresh_lock(config_dir: Path, profile: str, timeout: float = 30.0) -> Iterator[None]:
    """Hold the profile's inter-process refresh lock; re-read the store after entering (LC-02)."""
    check_profile_name(profile)
    with file_lock(Path(config_dir), profile, timeout):
        yield
