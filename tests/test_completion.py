"""`kt completion bash|zsh|fish`: click's own completion scripts, and completion for real."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.kt_process import HEAVY, base_env, imported_modules, kt

IDIOMS = {
    "bash": "complete -o nosort -F _kt_completion kt",
    "zsh": "#compdef kt",
    "fish": "complete --no-files --command kt",
}


@pytest.mark.parametrize("shell", sorted(IDIOMS))
def test_completion_script(tmp_path, shell):
    result = kt("completion", shell, env=base_env(tmp_path))
    assert result.code == 0, result.stderr
    assert "_KT_COMPLETE" in result.stdout
    assert f"_KT_COMPLETE={shell}_complete" in result.stdout
    assert IDIOMS[shell] in result.stdout
    assert result.stderr == ""


def test_completion_help_tells_how_to_install(tmp_path):
    result = kt("completion", "--help", env=base_env(tmp_path))
    assert result.code == 0, result.stderr
    assert 'eval "$(kt completion bash)"' in result.stdout
    assert 'eval "$(kt completion zsh)"' in result.stdout
    assert "kt completion fish | source" in result.stdout


def test_unknown_shell_is_a_usage_error(tmp_path):
    result = kt("completion", "tcsh", env=base_env(tmp_path))
    assert result.code == 2
    assert "tcsh" in result.stderr


def test_listed_in_kt_help(tmp_path):
    assert "completion" in kt("--help", env=base_env(tmp_path)).stdout


def complete(tmp_path, words: str, cword: int) -> list[str]:
    env = base_env(tmp_path, _KT_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(cword))
    proc = subprocess.run(
        [sys.executable, "-m", "kt_login"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_bash_completes_subcommands(tmp_path):
    assert complete(tmp_path, "kt au", 1) == ["plain,auth"]
    assert "plain,completion" in complete(tmp_path, "kt ", 1)
    assert "plain,login" in complete(tmp_path, "kt auth lo", 2)
    assert complete(tmp_path, "kt completion ", 2) == ["plain,bash", "plain,zsh", "plain,fish"]


def test_completion_skips_heavy_imports(tmp_path):
    mods = imported_modules(("completion", "bash"), base_env(tmp_path))
    assert "click" in mods
    for heavy in HEAVY:
        assert not any(m == heavy or m.startswith(heavy + ".") for m in mods), heavy
