"""Changing config.toml for `kt config set/unset` and `kt auth switch`: one key at a time, the
rest of the file (other keys, comments, order) kept as it was.

Python reads TOML (tomllib) but does not write it, and no dependency is added for that: the
change is made on the lines of the file (the key's own line replaced, removed, or a new line put
in its table), and then proven — the new text must parse to exactly what the old one did with
that one change, or nothing is written (a file kt cannot edit safely is left for a person, with
the reason). The value is checked by the rule kt reads it with (config.check_setting, the
issuer's flows.discovery.check_issuer). The file is replaced atomically as 0600 in an
owner-only config dir, and is read only if it passes the ownership rule (trusted_files).
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import (
    CONFIG_FILE,
    MAX_CONFIG_BYTES,
    PROFILE_KEYS,
    TOP_LEVEL_KEYS,
    check_profile_name,
    check_setting,
    parse_config,
)
from .errors import ConfigError, UsageError
from .flows.discovery import check_issuer
from .store.locks import file_lock
from .store.private_files import atomic_write, make_config_dir
from .trusted_files import check_directory, read_file

CONFIG_LOCK = ".config"  # under <config dir>/locks; no profile name starts with "."
LOCK_TIMEOUT = 10.0
_HEADER = re.compile(r"\s*\[[^\[].*")
_KEY = re.compile(r"""\s*([A-Za-z0-9_-]+|"[^"\\]*"|'[^']*')\s*=""")
_BARE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Address:
    """Where a key lives: the top level (profile None) or a [profiles.NAME] table."""

    key: str
    profile: str | None

    @property
    def table(self) -> tuple[str, ...]:
        return () if self.profile is None else ("profiles", self.profile)

    def __str__(self) -> str:
        return self.key if self.profile is None else f"profiles.{self.profile}.{self.key}"


def address(key: str, profile: str | None) -> Address:
    """The key's place: with a profile, in its table; without, at the top level when the key
    may be there (profile, credential_store), else a UsageError naming the keys."""
    if profile is not None:
        check_profile_name(profile)
        if key not in PROFILE_KEYS:
            raise UsageError(_unknown(key, PROFILE_KEYS, "a profile's"))
        return Address(key, profile)
    if key not in TOP_LEVEL_KEYS:
        raise UsageError(_unknown(key, TOP_LEVEL_KEYS, "a top-level"))
    return Address(key, None)


def _unknown(key: str, keys: tuple[str, ...], where: str) -> str:
    if key in (*TOP_LEVEL_KEYS, *PROFILE_KEYS):
        return f"{key} is not {where} setting (those are: {', '.join(keys)})"
    return f"unknown setting {key!r} (known: {', '.join(sorted({*TOP_LEVEL_KEYS, *PROFILE_KEYS}))})"


def check_value(key: str, value: str) -> str:
    if key == "issuer":
        return check_issuer(value)
    return check_setting(key, value)


def read_config(directory: Path) -> tuple[str, dict[str, Any]]:
    """The file's text and what it parses to ("" and {} when there is none)."""
    path = directory / CONFIG_FILE
    if not check_directory(directory, error=ConfigError):
        return "", {}
    data = read_file(path, limit=MAX_CONFIG_BYTES, error=ConfigError)
    if data is None:
        return "", {}
    return data.decode("utf-8"), parse_config(data, path)


def get_value(directory: Path, where: Address) -> str | None:
    table: Any = read_config(directory)[1]
    for name in where.table:
        table = table.get(name) if isinstance(table, dict) else None
    value = table.get(where.key) if isinstance(table, dict) else None
    return None if value is None else str(value)


def set_value(directory: Path, where: Address, value: str) -> str:
    """Write `value` (checked, as it will be kept) at `where`; returns the value kept."""
    value = check_value(where.key, value)
    read_config(directory)  # a file kt refuses is refused before anything is created
    with file_lock(directory, CONFIG_LOCK, LOCK_TIMEOUT):  # two changes at once: both kept
        text, before = read_config(directory)
        expected = copy.deepcopy(before)
        table = expected
        for name in where.table:
            table = table.setdefault(name, {})
        table[where.key] = value
        line = f"{_key(where.key)} = {_string(value)}"
        _write(directory, _with_line(text, where, line), expected)
    return value


def unset_value(directory: Path, where: Address) -> bool:
    """Remove `where` from the file; False when it was not there."""
    if get_value(directory, where) is None:
        return False
    with file_lock(directory, CONFIG_LOCK, LOCK_TIMEOUT):
        text, before = read_config(directory)
        table: Any = before
        for name in where.table:
            table = table.get(name) if isinstance(table, dict) else None
        if not isinstance(table, dict) or where.key not in table:
            return False
        expected = copy.deepcopy(before)
        target = expected
        for name in where.table:
            target = target[name]
        del target[where.key]
        _write(directory, _with_line(text, where, None), expected)
    return True


def _write(directory: Path, text: str, expected: dict[str, Any]) -> None:
    path = directory / CONFIG_FILE
    try:
        result = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        result = None
    if result != expected:
        raise ConfigError(
            f"cannot change {path} safely (its layout is more than kt edits: dotted keys, "
            "inline or multi-line tables); nothing was written",
            hint=f"edit {path} by hand",
        )
    make_config_dir(directory)
    atomic_write(path, text.encode("utf-8"))


def _with_line(text: str, where: Address, line: str | None) -> str:
    """`text` with the key's line replaced by `line` (None: removed), or `line` added to its
    table (the table added at the end when there is none)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    table: tuple[str, ...] | None = ()
    header_at: int | None = 0 if where.table == () else None
    last_key_at: int | None = None
    for i, raw in enumerate(lines):
        if _HEADER.match(raw):
            table = _header_path(raw)
            if table == where.table:
                header_at = i + 1
            continue
        if table != where.table:
            continue
        match = _KEY.match(raw)
        if match is None:
            continue
        last_key_at = i + 1
        if _unquote(match.group(1)) == where.key:
            if line is None:
                del lines[i]
            else:
                lines[i] = line + _comment_of(raw) + "\n"
            return "".join(lines)
    if line is None:
        return "".join(lines)
    if last_key_at is not None:
        lines.insert(last_key_at, line + "\n")
    elif header_at is not None:
        lines.insert(header_at, line + "\n")
    else:
        assert where.profile is not None
        if lines and lines[-1].strip():
            lines.append("\n")
        lines += [f"[profiles.{_key(where.profile)}]\n", line + "\n"]
    return "".join(lines)


def _header_path(raw: str) -> tuple[str, ...] | None:
    """The key path of a `[table]` header line (None when it does not parse alone)."""
    try:
        parsed: Any = tomllib.loads(raw)
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(parsed, dict) and len(parsed) == 1:
        name, parsed = next(iter(parsed.items()))
        path.append(name)
    return tuple(path)


def _comment_of(raw: str) -> str:
    """The trailing comment of a `key = value` line, with the spaces before it ("" if none)."""
    body = raw.rstrip("\r\n")
    for at in (i for i, c in enumerate(body) if c == "#"):
        try:
            tomllib.loads(body[:at])
        except tomllib.TOMLDecodeError:
            continue
        spaces = len(body[:at]) - len(body[:at].rstrip())
        return body[at - spaces :]
    return ""


def _unquote(key: str) -> str:
    return key[1:-1] if key[:1] in ('"', "'") else key


def _key(name: str) -> str:
    return name if _BARE.fullmatch(name) else _string(name)


def _string(value: str) -> str:
    """A TOML basic string: JSON's escapes are all TOML escapes."""
    return json.dumps(value, ensure_ascii=False)
