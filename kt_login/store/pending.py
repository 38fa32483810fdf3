"""Pending two-step sign-ins (`kt auth login --device --start`, then `--complete HANDLE`): one
owner-only file each, `<config dir>/pending/<handle>.json` (0600 in a 0700 directory, written
atomically), holding what finishing needs. The device code is a secret: it goes where the
session will (the OS keyring, item "pending:<handle>"; the file itself only when the user opted
in to file storage), is never printed or logged, and is removed with the file when the sign-in
completes, fails, expires or is cancelled (docs/security.md DV-04)."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

from ..errors import StoreError, UsageError
from ..trusted_files import read_file, run_hint
from .keyring_store import KeyringStore
from .private_files import atomic_write, check_private_dir, make_config_dir, make_private_dir

PENDING_DIR = "pending"
MAX_PENDING_BYTES = 16 << 10
_HANDLE = re.compile(r"d[0-9a-f]{24}")


def new_handle() -> str:
    """A fresh handle: random, and a safe file name."""
    return "d" + secrets.token_hex(12)


def check_handle(handle: str) -> str:
    if not _HANDLE.fullmatch(handle):
        raise UsageError(
            f"{handle[:40]!r} is not a sign-in handle (kt auth login --start prints one)"
        )
    return handle


def _path(config_dir: Path, handle: str) -> Path:
    return Path(config_dir) / PENDING_DIR / f"{check_handle(handle)}.json"


def _item(handle: str) -> str:
    return f"pending:{check_handle(handle)}"


def save_pending(
    config_dir: Path,
    handle: str,
    state: dict[str, Any],
    *,
    device_code: str,
    keyring: KeyringStore | None,
) -> None:
    """Keep the pending sign-in; its device code in `keyring`, or (None) in the file."""
    state = dict(state)
    if keyring is not None:
        keyring.write_item(_item(handle), device_code)
        state["device_code_in"] = "keyring"
    else:
        state["device_code_in"] = "file"
        state["device_code"] = device_code
    try:
        write_state(config_dir, handle, state)
    except BaseException:
        if keyring is not None:
            keyring.delete_item(_item(handle))
        raise


def load_pending(
    config_dir: Path, handle: str, *, keyring: KeyringStore
) -> tuple[dict[str, Any], str] | None:
    """The pending sign-in and its device code, or None when there is none (it finished,
    failed, expired or was cancelled); a file others may read or change is refused
    (StoreError)."""
    state = _read(config_dir, handle)
    if state is None:
        return None
    if state.get("device_code_in") == "keyring":
        code = keyring.read_item(_item(handle))
    else:
        code = state.get("device_code")
    if not isinstance(code, str) or not code:
        raise StoreError(
            f"the device code of sign-in {handle} is gone", hint="start the sign-in again"
        )
    return state, code


def write_state(config_dir: Path, handle: str, state: dict[str, Any]) -> None:
    """Write a pending sign-in that holds no secret (a browser sign-in's: its secrets live in
    the process holding its listener)."""
    make_config_dir(Path(config_dir))
    make_private_dir(Path(config_dir) / PENDING_DIR)
    atomic_write(_path(config_dir, handle), json.dumps(state, sort_keys=True).encode())


def read_state(config_dir: Path, handle: str) -> dict[str, Any] | None:
    """The pending sign-in's state, None when there is none."""
    return _read(config_dir, handle)


def _read(config_dir: Path, handle: str) -> dict[str, Any] | None:
    path = _path(config_dir, handle)
    if not check_private_dir(path.parent):
        return None
    data = read_file(path, limit=MAX_PENDING_BYTES, error=StoreError, secret=True)
    if data is None:
        return None
    try:
        state = json.loads(data)
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise StoreError(f"{path} is corrupt", hint=run_hint("rm", path))
    return state


def delete_pending(config_dir: Path, handle: str, *, keyring: KeyringStore) -> bool:
    """Forget the pending sign-in (its keyring item too); False when there was none."""
    path = _path(config_dir, handle)
    try:
        state = _read(config_dir, handle)
    except StoreError:
        state = {}  # unreadable: removed all the same
    if state is None:
        return False
    if state.get("device_code_in") == "keyring":
        keyring.delete_item(_item(handle))
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"cannot remove {path}: {exc.strerror}") from None
    return True
