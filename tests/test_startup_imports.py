"""Import discipline: the fast commands must not load the heavy server-side libraries."""

from __future__ import annotations

import pytest

from tests.kt_process import HEAVY, base_env, imported_modules


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
