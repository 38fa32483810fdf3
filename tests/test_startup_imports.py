"""Import discipline: the fast commands must not load the heavy server-side libraries."""

from __future__ import annotations

import pytest

from tests.kt_process import ALICE, HEAVY, HTTP_STACK, base_env, imported_modules, password_login


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


# what `kt auth whoami` may leave out when its session is in a file and fresh (issue 16): the
# keyring, the refresh lock, the config file's parser (there is none), platformdirs (the config
# directory is given), the async and ID-token stacks, and shell completion
NOT_ON_THE_WHOAMI_PATH = (
    "keyring",
    "filelock",
    "platformdirs",
    "tomllib",
    "asyncio",
    "joserfc",
    "cryptography",
    "click.shell_completion",
)


def test_whoami_with_a_fresh_file_session_imports_only_its_path(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    assert password_login(env, ALICE, "--insecure-storage").code == 0
    mods = imported_modules(("auth", "whoami", "--json"), env)
    assert {"kt_login.cli.whoami", "httpx2"} <= mods  # the probe ran whoami, which called the API
    for module in NOT_ON_THE_WHOAMI_PATH:
        assert not any(m == module or m.startswith(module + ".") for m in mods), module


@pytest.mark.parametrize("module", ["json", "shutil", "click.shell_completion", "asyncio"])
def test_kt_help_imports_neither_json_nor_shutil_nor_completion(tmp_path, module):
    mods = imported_modules(("--help",), base_env(tmp_path))
    assert "kt_login.cli" in mods  # the probe itself works
    assert module not in mods
