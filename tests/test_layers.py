"""Import layering: a module may import only from its own layer or the layers below it.

    kt_login.cli (commands, presentation)
      > use cases: kt_login.signin, kt_login.authenticate, kt_login.config_edit,
        kt_login.doctor, the public library (kt_login/__init__)
      > kt_login.api, .store, .flows, .dpop, .idtoken, .refresh, .browser, .clipboard,
        .debuglog
      > kt_login.config, .session, .errors, .text, .trusted_files, .identity, .www_authenticate

callback_server imports nothing of kt_login; kt_devserver only kt_login's flows, idtoken, text,
errors and www_authenticate. Function-level imports count the same as module-level ones, and no
module of the three packages may take part in an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("kt_login", "callback_server", "kt_devserver")

# Highest first. A module belongs to the first prefix that names it (or one of its parents).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("kt_login.cli", "kt_login.__main__", "kt_login.output"),
    (
        "kt_login.signin",
        "kt_login.authenticate",
        "kt_login.config_edit",
        "kt_login.doctor",
        "kt_login",
    ),
    (
        "kt_login.api",
        "kt_login.store",
        "kt_login.flows",
        "kt_login.dpop",
        "kt_login.idtoken",
        "kt_login.refresh",
        "kt_login.browser",
        "kt_login.clipboard",
        "kt_login.debuglog",
    ),
    (
        "kt_login.config",
        "kt_login.session",
        "kt_login.errors",
        "kt_login.text",
        "kt_login.trusted_files",
        "kt_login.identity",
        "kt_login.www_authenticate",
        "kt_login._version",
    ),
)
DEVSERVER_MAY_IMPORT = (
    "kt_login.flows",
    "kt_login.idtoken",
    "kt_login.text",
    "kt_login.errors",
    "kt_login.www_authenticate",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module an import of `name` loads: the longest prefix that is one of ours."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return name


def imports_of(module: str, *, runtime_only: bool = False) -> set[str]:
    """Every module of ours that `module` imports, at any depth of its body."""
    path = MODULES[module]
    return imports_in(
        path.read_text(), module, is_package=path.name == "__init__.py", runtime_only=runtime_only
    )


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The statements under `if TYPE_CHECKING:`, which never run."""
    hidden: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                hidden.update(ast.walk(statement))
    return hidden


def imports_in(
    source: str, module: str, *, is_package: bool, runtime_only: bool = False
) -> set[str]:
    """Layering counts every import, type-only ones included (a lower layer naming a higher
    layer's type is a dependency too); cycles count only the imports that run."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(source)
    hidden = _type_checking_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if node in hidden:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            # `from pkg import sub` loads pkg.sub when sub is a module, else just pkg
            names = [f"{stem}.{alias.name}" for alias in node.names] + [stem]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                found.add(_resolve(name))
    found.discard(module)
    return found


def layer_of(module: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix == "kt_login":
                if module == "kt_login":
                    return index
            elif module == prefix or module.startswith(prefix + "."):
                return index
    return None


KT_LOGIN = sorted(m for m in MODULES if m.split(".")[0] == "kt_login")


def test_every_kt_login_module_has_a_layer():
    assert [m for m in KT_LOGIN if layer_of(m) is None] == []


@pytest.mark.parametrize("module", KT_LOGIN)
def test_no_import_from_a_higher_layer(module):
    own = layer_of(module)
    assert own is not None
    upward = sorted(
        target
        for target in imports_of(module)
        if target.startswith("kt_login") and (layer := layer_of(target)) is not None and layer < own
    )
    assert upward == [], f"{module} (layer {own}) imports from a higher layer"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("callback_server")))
def test_callback_server_stands_alone(module):
    assert sorted(t for t in imports_of(module) if not t.startswith("callback_server")) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("kt_devserver")))
def test_devserver_uses_only_public_client_parts(module):
    foreign = sorted(
        t
        for t in imports_of(module)
        if t.startswith("kt_login")
        and not any(t == p or t.startswith(p + ".") for p in DEVSERVER_MAY_IMPORT)
    )
    assert foreign == [], f"{module} imports kt_login internals"


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph = {m: imports_of(m, runtime_only=True) & MODULES.keys() for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def _package_edge(importer: str, target: str) -> bool:
    """A package's __init__ importing its own submodules (or a submodule its parent) is how
    Python packages are built, not a cycle between behaviours."""
    return target.startswith(importer + ".") or importer.startswith(target + ".")


def test_no_import_cycles():
    real = []
    for component in _cycles():
        members = set(component)
        edges = [
            (a, b) for a in component for b in imports_of(a) & members if not _package_edge(a, b)
        ]
        if edges:
            real.append(component)
    assert real == []


def test_the_checker_sees_function_level_and_relative_imports():
    """The detector itself, on a module that hides its imports inside functions."""
    source = (
        "import os\n"
        "def f():\n"
        "    from ..cli import app\n"
        "    from . import tokens\n"
        "    import kt_login.store\n"
        "    return app, tokens, os\n"
    )
    found = imports_in(source, "kt_login.flows.device", is_package=False)
    assert {"kt_login.cli.app", "kt_login.flows.tokens", "kt_login.store"} <= found
    assert "os" not in found


def test_type_only_imports_count_for_layers_but_not_for_cycles():
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..cli import app\n"
    module = "kt_login.flows.device"
    assert "kt_login.cli.app" in imports_in(source, module, is_package=False)
    assert imports_in(source, module, is_package=False, runtime_only=True) == set()
