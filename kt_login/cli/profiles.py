"""Which profiles exist (configured, or holding a session), and their names on Tab."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import DEFAULT_PROFILE, config_dir, configured_profiles
from ..errors import KtError
from ..store import SessionStore

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


def known_profiles(env: Mapping[str, str], store: SessionStore | None = None) -> list[str]:
    """The default profile, every [profiles.NAME] of config.toml and every profile with a
    stored session (by the sessions index and the session files: no keyring call)."""
    names = {DEFAULT_PROFILE, *configured_profiles(env)}
    store = store or SessionStore(Path(config_dir(env).value))
    names |= set(store.known_profiles())
    return sorted(names)


def complete_profiles(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion for a profile name (never an error: a broken config completes nothing)."""
    from click.shell_completion import CompletionItem  # ~5 ms: only on Tab, not on every run

    del ctx, param
    try:
        names = known_profiles(os.environ)
    except (KtError, OSError):
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]
