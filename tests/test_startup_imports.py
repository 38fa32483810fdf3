"""Import discipline: the fast commands must not load the heavy server-side libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.kt_process import base_env

HEAVY = ("aiohttp", "authlib", "jinja2")


def imported_modules(args, env) -> set[str]:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['kt', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('kt_login', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return set(proc.stderr.split())


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("auth", "whoami", "--json")])
def test_fast_commands_skip_heavy_imports(tmp_path, args, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    mods = imported_modules(args, env)
    assert "click" in mods  # the probe itself works
    for heavy in HEAVY:
        assert not any(m == heavy or m.startswith(heavy + ".") for m in mods), heavy


def test_help_does_not_import_http_stack(tmp_path):
    mods = imported_modules(("--help",), base_env(tmp_path))
    assert "httpx2" not in mods and "keyring" not in mods
