"""The lazy command table in kt_login/cli/__init__.py: `kt … --help` lists each command by the
short help declared there without importing it, so that line must be the command's own, and
every command must be declared."""

from __future__ import annotations

import importlib
import pkgutil

import click
import pytest

import kt_login.cli
from kt_login.cli import cli
from kt_login.cli.lazy import Lazy, LazyGroup, load


def _groups(group: click.Group, path: tuple[str, ...] = ("kt",)):
    """Every LazyGroup of the `kt` tree, with its command path."""
    if isinstance(group, LazyGroup):
        yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _groups(command, (*path, name))


GROUPS = list(_groups(cli))
DECLARED = [
    pytest.param(path, name, lazy, id=" ".join((*path, name)))
    for path, group in GROUPS
    for name, lazy in group.lazy_subcommands.items()
]


@pytest.mark.parametrize(("path", "name", "lazy"), DECLARED)
def test_declared_short_help_is_the_commands_own(path, name, lazy):
    command = load(lazy)
    assert command.name == name, f"{lazy.target} is the command {command.name!r}, not {name!r}"
    own = command.get_short_help_str(limit=10**6)
    expected = f"{name!r}: Lazy({lazy.target!r}, {own!r})"
    assert lazy.short_help == own, f"in kt_login/cli/__init__.py declare {expected}"
    assert not command.hidden and not command.deprecated  # the stand-in would list these wrongly
    # the stand-in is cut to the terminal's width exactly as the command itself would be
    for limit in range(10, 120):
        stand_in = click.Command(name, help=lazy.short_help)
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


@pytest.mark.parametrize(("path", "group"), GROUPS, ids=[" ".join(p) for p, _ in GROUPS])
@pytest.mark.parametrize("width", [50, 80, 120])
def test_listing_is_the_one_click_prints_with_every_command_loaded(path, group, width):
    loaded = click.Group(
        group.name,
        commands={
            name: group.get_command(click.Context(group), name)
            for name in group.list_commands(click.Context(group))
        },
    )
    lazy_out = click.HelpFormatter(width=width)
    group.format_commands(click.Context(group), lazy_out)
    loaded_out = click.HelpFormatter(width=width)
    loaded.format_commands(click.Context(loaded), loaded_out)
    assert lazy_out.getvalue() == loaded_out.getvalue()
    assert lazy_out.getvalue().startswith("Commands:")


def test_every_command_in_kt_login_cli_is_declared():
    """A click command written in kt_login/cli/ but missing from the table is unreachable."""
    declared = {lazy.target for _, group in GROUPS for lazy in group.lazy_subcommands.values()}
    reachable = {id(command) for _, group in GROUPS for command in group.commands.values()}
    missing = []
    for info in pkgutil.iter_modules(kt_login.cli.__path__):
        module = importlib.import_module(f"kt_login.cli.{info.name}")
        for attribute, value in vars(module).items():
            if not isinstance(value, click.Command):
                continue
            if getattr(value.callback, "__module__", None) != module.__name__:
                continue  # imported from elsewhere
            target = f"{module.__name__}:{attribute}"
            if target not in declared and id(value) not in reachable and value is not cli:
                missing.append(target)
    assert not missing, f"declare these in kt_login/cli/__init__.py with Lazy(...): {missing}"


def test_a_target_that_is_not_a_command_is_refused():
    with pytest.raises(TypeError, match="not a click command"):
        load(Lazy("kt_login.cli.lazy:load", "x"))
