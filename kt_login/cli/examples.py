"""The Examples section of a command's --help (issue 12): commands to copy, each of which
tests/test_cli_hints.py parses with kt's own command tree. Only click: `kt --help` stays light."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

import click

C = TypeVar("C", bound=click.Command)


def examples(*commands: str) -> Callable[[C], C]:
    """Put above `@click.command`: appends "Examples:" and `commands`, one per line, unwrapped."""

    def add(command: C) -> C:
        lines = "\n".join(f"  {c}" for c in commands)
        text = inspect.cleandoc(command.help or "")
        command.help = f"{text}\n\nExamples:\n\n\b\n{lines}"
        return command

    return add
