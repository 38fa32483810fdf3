"""`kt config get/set/unset KEY [VALUE] [--profile P]`: config.toml without editing TOML by hand."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click

from .. import config
from ..config_edit import Address, address, get_value, set_value, unset_value
from ..errors import KtError
from .app import Invocation, common_options

KEYS_HELP = """
    \b
    Keys: profile, credential_store, keyring_max_bytes (top level: the active profile, the
    default store, the largest session kept whole in the keyring); api_url, credential_store,
    issuer, client_id, port, redirect_host, login_method, clipboard, send_resource,
    dpop (a profile's:
    with --profile, or for the active profile when the key has no top-level place).
"""


def _dir(inv: Invocation) -> Path:
    """The config dir, found without reading config.toml: set/unset must be able to repair a
    file that `config.resolve` refuses."""
    return Path(config.config_dir(inv.app.env).value)


def where(inv: Invocation, key: str) -> Address:
    """With --profile, the profile's table; else the top level when the key has a place there,
    else the active profile's table."""
    if inv.profile_flag:
        return address(key, inv.profile_flag)
    if key in config.TOP_LEVEL_KEYS:
        return address(key, None)
    return address(key, inv.profile)


@click.command("get")
@click.argument("key")
@common_options
def get(inv: Invocation, key: str) -> None:
    """Print KEY's value in config.toml, alone on stdout.

    Exits 1 when it is not set there; `kt config show` gives every effective setting and its
    source.

    \b
    Examples:
      kt config get profile
      kt config get api_url --profile staging
    """
    at = where(inv, key)
    path = _dir(inv) / config.CONFIG_FILE
    value = get_value(_dir(inv), at)
    if value is None:
        error = KtError(f"{at} is not set in {path}")
        error.code = "kt.config_not_set"
        raise error
    inv.console.result(_document(at, value, path), [value])


get.help = (get.help or "") + KEYS_HELP


@click.command("set")
@click.argument("key")
@click.argument("value")
@common_options
def set_(inv: Invocation, key: str, value: str) -> None:
    """Set KEY to VALUE in config.toml.

    VALUE is checked as kt reads it (an https API URL, a known credential store, ...); other
    keys and comments are kept, and the file stays 0600.

    \b
    Examples:
      kt config set api_url https://staging-api.example.com --profile staging
      kt config set credential_store file
    """
    at = where(inv, key)
    kept = set_value(_dir(inv), at, value)
    path = _dir(inv) / config.CONFIG_FILE
    _warn_if_overridden(inv, at)
    inv.console.result(_document(at, kept, path), [f"Set {at} = {kept} in {path}."])


set_.help = (set_.help or "") + KEYS_HELP


@click.command("unset")
@click.argument("key")
@common_options
def unset(inv: Invocation, key: str) -> None:
    """Remove KEY from config.toml.

    Nothing to do when it is not there.

    \b
    Examples:
      kt config unset issuer --profile corp
    """
    at = where(inv, key)
    removed = unset_value(_dir(inv), at)
    path = _dir(inv) / config.CONFIG_FILE
    inv.console.result(
        {**_document(at, None, path), "removed": removed},
        [f"Removed {at} from {path}." if removed else f"{at} was not set in {path}."],
    )


unset.help = (unset.help or "") + KEYS_HELP

# Where a value for a key may come from besides the config file, which would then win.
_ENV_OF = {"profile": config.ENV_PROFILE, "api_url": config.ENV_API_URL}


def _warn_if_overridden(inv: Invocation, at: Address) -> None:
    variable = _ENV_OF.get(at.key)
    env: Mapping[str, str] = inv.app.env
    if variable and env.get(variable):
        inv.console.warn(f"{variable} is set here and wins over the config file's {at.key}")


def _document(at: Address, value: str | None, path: object) -> dict[str, object]:
    return {"key": at.key, "profile": at.profile, "value": value, "config_file": str(path)}
