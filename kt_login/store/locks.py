"""Inter-process locks under <config_dir>/locks: one per profile for refresh (LC-02), one for
the sessions index."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..config import check_profile_name
from ..errors import StoreError
from .private_files import make_config_dir, make_private_dir

LOCKS_DIR = "locks"
INDEX_LOCK = ".sessions-index"  # cannot clash with a profile name, which starts alphanumeric


@contextlib.contextmanager
def file_lock(config_dir: Path, name: str, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    locks = config_dir / LOCKS_DIR
    make_config_dir(config_dir)
    make_private_dir(locks)
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
    check_profile_name(profile)
    with file_lock(Path(config_dir), profile, timeout):
        yield
