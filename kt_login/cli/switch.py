"""`kt auth switch PROFILE`: make PROFILE the config file's active profile."""

from __future__ import annotations

from pathlib import Path

import click

from .. import config
from ..config_edit import address, set_value
from ..errors import KtError, UsageError
from ..identity import session_name
from ..text import run_hint
from .app import Invocation, common_options
from .profiles import complete_profiles, known_profiles


@click.command()
@click.argument("name", metavar="PROFILE", shell_complete=complete_profiles)
@common_options
def switch(inv: Invocation, name: str) -> None:
    """Make PROFILE the active profile (`profile` in config.toml) for every later command.

    PROFILE must exist: configured in config.toml or holding a session. --profile and
    $KEEPTRUSTS_PROFILE still win where they are given.

    \b
    Examples:
      kt auth switch staging
      kt auth status --all
    """
    run_switch(inv, name)


def run_switch(inv: Invocation, name: str) -> None:
    if inv.profile_flag:
        raise UsageError("kt auth switch takes the profile as its argument, not --profile")
    config.check_profile_name(name)
    known = known_profiles(inv.app.env, inv.session_store)
    if name not in known:
        raise UsageError(
            f"no profile {name!r} (known profiles: {', '.join(known)}); sign in to it, or set "
            "one of its settings (kt config set KEY VALUE --profile NAME), to create it",
            hint=run_hint("kt", "auth", "login", "--profile", name),
        )
    directory = Path(config.config_dir(inv.app.env).value)
    previous = inv.profile
    set_value(directory, address("profile", None), name)
    try:
        session = inv.session_store.find(name)[0]
    except KtError:  # the switch is done; naming the account is only a courtesy
        session = None
    who = f" ({session_name(session)} at {session.api_url})" if session is not None else ""
    line = (
        f"Switched to profile {name!r}{who}."
        if previous != name
        else (f"Profile {name!r} is already active{who}.")
    )
    if inv.app.env.get(config.ENV_PROFILE):
        inv.console.warn(
            f"{config.ENV_PROFILE}={inv.app.env[config.ENV_PROFILE]} is set here and wins over "
            "the config file"
        )
    inv.console.result(
        {
            "profile": name,
            "previous": previous,
            "logged_in": session is not None,
            "config_file": str(directory / config.CONFIG_FILE),
        },
        [line],
    )
