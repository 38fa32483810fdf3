"""A click group whose commands are imported only when they are run (click's lazy-group
pattern), so `kt --help`, `kt auth --help` and shell completion import none of what
`kt auth login` needs.

Each lazy command is declared with its short help, the line `--help` lists it by; listing a
group shows those lines without importing the commands. tests/test_cli_lazy.py checks that
every declared line is the command's own, so the two cannot drift.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import click

if TYPE_CHECKING:  # click.shell_completion costs ~5 ms to import; --help does not need it
    from click.shell_completion import CompletionItem


class Lazy(NamedTuple):
    """Where a command lives and how its group lists it."""

    target: str  # "module:attribute" of the click command
    short_help: str  # the first sentence of the command's docstring, exactly


class LazyGroup(click.Group):
    """`lazy_subcommands` maps a command name to its `Lazy` declaration."""

    def __init__(self, *args: Any, lazy_subcommands: Mapping[str, Lazy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = self.lazy_subcommands.get(cmd_name)
        if lazy is None:
            return super().get_command(ctx, cmd_name)
        if self._listing:  # a stand-in that lists exactly as the real command would
            return click.Command(cmd_name, help=lazy.short_help)
        return load(lazy)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with self._listed_only():
            super().format_commands(ctx, formatter)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        with self._listed_only():
            return super().shell_complete(ctx, incomplete)

    @contextmanager
    def _listed_only(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False


def load(lazy: Lazy) -> click.Command:
    """Import the declared command."""
    module_name, _, attribute = lazy.target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{lazy.target} is not a click command")
    return command
