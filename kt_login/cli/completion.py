"""`kt completion bash|zsh|fish`: print click's own shell-completion script for `kt`."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from .examples import examples

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_KT_COMPLETE"


@examples(
    'eval "$(kt completion bash)"',
    "kt completion zsh > ~/.zfunc/_kt",
)
@click.command(name="completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell-completion script for SHELL (bash, zsh or fish).

    \b
    Enable it for the current shell:
      bash:  eval "$(kt completion bash)"
      zsh:   eval "$(kt completion zsh)"
      fish:  kt completion fish | source
    \b
    Or for every new shell:
      bash:  kt completion bash > ~/.local/share/bash-completion/completions/kt
      zsh:   kt completion zsh > "${fpath[1]}/_kt"
      fish:  kt completion fish > ~/.config/fish/completions/kt.fish
    """
    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        raise click.UsageError(f"click has no completion support for {shell}")
    ctx = click.get_current_context()
    root = ctx.find_root().command
    script = cls(root, {}, "kt", COMPLETE_VAR).source()
    click.echo(script, nl=not script.endswith("\n"))
