"""The suite's own layering: no test module imports another test module, at module level or
inside a function. What tests share lives in modules that are not tests (tests/kt_process.py,
tests/fixtures/, tests/terminal.py, tests/sample_sessions.py, tests/adversarial/hostile_as.py,
hostile_api.py, conftest.py), so moving or deleting a test never breaks another."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = ("tests", "e2e")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`) imports, wherever the import statement
    stands: relative imports resolved, `from P import m` counted as both P and P.m."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def test_no_test_module_imports_another_test_module():
    modules = {
        _module_name(path): path
        for root in ROOTS
        for path in sorted((REPO / root).rglob("*.py"))
        if not {".venv", "node_modules"} & set(path.parts)
    }
    tests = {name for name in modules if name.split(".")[-1].startswith("test_")}
    offending = sorted(
        f"{name} imports {target}"
        for name, path in modules.items()
        for target in imported(
            path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py"
        )
        if target in tests and target != name
    )
    assert not offending, "move what they share into a helper module: " + "; ".join(offending)


def test_the_check_sees_relative_and_function_level_imports():
    source = (
        "import tests.test_layers\n"
        "def f():\n"
        "    from .test_refresh_and_storage import expire_soon\n"
        "    from tests import test_cli_tty\n"
    )
    found = imported(source, "tests.adversarial.test_provider_quirks")
    assert "tests.test_layers" in found
    assert "tests.adversarial.test_refresh_and_storage" in found
    assert "tests.test_cli_tty" in found
    assert imported("from . import hostile_as\n", "tests.adversarial", is_package=True) == {
        "tests.adversarial",
        "tests.adversarial.hostile_as",
    }
