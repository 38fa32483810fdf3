"""Import discipline: the fast commands must not load the heavy server-side libraries."""

from __future__ import annotations

import pytest

from tests.kt_process import HEAVY, HTTP_STACK, base_env, imported_modules


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("auth", "whoami", "--json")])
def test_fast_commands_skip_heavy_imports(tmp_path, args, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    mods = imported_modules(args, env)
    assert "click" in mods  # the probe itself works
    for heavy in HEAVY:
        assert not any(m == heavy or m.startswith(heavy + ".") for m in mods), heavy


# every group's listing: LazyGroup lists commands by their declared short help, importing none
LISTINGS = [
    ("--help",),
    ("auth", "--help"),
    ("auth", "token", "--help"),
    ("auth", "mfa", "--help"),
    ("config", "--help"),
]


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
def test_help_listings_do_not_import_http_stack(tmp_path, args):
    mods = imported_modules(args, base_env(tmp_path))
    assert "click" in mods  # the probe itself works
    for heavy in (*HEAVY, *HTTP_STACK):
        assert not any(m == heavy or m.startswith(heavy + ".") for m in mods), heavy


def test_completing_a_subcommand_does_not_import_http_stack(tmp_path):
    env = base_env(tmp_path, _KT_COMPLETE="bash_complete", COMP_WORDS="kt auth ", COMP_CWORD="2")
    mods = imported_modules((), env)
    assert "click.shell_completion" in mods  # completion ran
    for heavy in (*HEAVY, *HTTP_STACK):
        assert not any(m == heavy or m.startswith(heavy + ".") for m in mods), heavy
