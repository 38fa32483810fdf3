"""<config_dir>/sessions.json: which backend holds each profile's session.

It holds no secret. It lets `logout --all` find keyring sessions (a keyring cannot be listed
cheaply), and it tells "not logged in" from "cannot tell" when the keyring is unusable.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Literal

from ..config import is_profile_name
from ..errors import KtError, StoreError
from ..trusted_files import read_file
from .locks import INDEX_LOCK, file_lock
from .private_files import atomic_write

INDEX_FILE = "sessions.json"
MAX_INDEX_BYTES = 1 << 20

Where = Literal["keyring", "file"]
KEYRING_BACKEND = "keyring_backend"  # beside "profiles": see read_keyring_backend


def _document(config_dir: Path) -> dict[str, object]:
    raw = read_file(Path(config_dir) / INDEX_FILE, limit=MAX_INDEX_BYTES, error=StoreError)
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def read_index(config_dir: Path) -> dict[str, Where]:
    """The index, `{}` when there is none or it does not parse (it is rebuilt as sessions are
    saved); a file the ownership rule refuses, or one that is not a file, is a StoreError."""
    profiles = _document(config_dir).get("profiles")
    if not isinstance(profiles, dict):
        return {}
    return {
        name: where
        for name, where in profiles.items()
        if is_profile_name(name) and where in ("keyring", "file")
    }


def read_keyring_backend(config_dir: Path) -> str | None:
    """The keyring backend the last session saved to the keyring went to (a class path; the
    keyring store loads it only when it is one of keyring's own), or None."""
    with contextlib.suppress(KtError):
        name = _document(config_dir).get(KEYRING_BACKEND)
        return name if isinstance(name, str) else None
    return None


def update_index(
    config_dir: Path,
    profile: str,
    where: Where | None,
    *,
    only_if: Where | None = None,
    keyring_backend: str | None = None,
) -> None:
    """Record where `profile`'s session is (None: nowhere), and the keyring backend it was
    saved to. Best effort: the session itself is already saved or deleted, and a missing index
    entry only hides it from `logout --all`."""

    def apply(index: dict[str, Where], backend: str | None) -> bool:
        changed = keyring_backend is not None and backend != keyring_backend
        if where is not None:
            changed |= index.get(profile) != where
            index[profile] = where
            return changed
        if profile in index and (only_if is None or index[profile] == only_if):
            del index[profile]
            return True
        return changed

    with contextlib.suppress(KtError):
        if not apply(read_index(config_dir), read_keyring_backend(config_dir)):
            return  # e.g. logout on a fresh machine: do not create any directory
        with file_lock(Path(config_dir), INDEX_LOCK, 10.0):
            index, backend = read_index(config_dir), read_keyring_backend(config_dir)
            if apply(index, backend):
                document: dict[str, object] = {"profiles": dict(sorted(index.items()))}
                if keyring_backend or backend:
                    document[KEYRING_BACKEND] = keyring_backend or backend
                body = json.dumps(document, indent=1)
                atomic_write(Path(config_dir) / INDEX_FILE, body.encode() + b"\n")
