"""pytest plugins for tests/ and e2e/: real kt-devserver processes, a real Secret Service, a
fake clock.

Everything under e2e/ (the npm OpenID provider, whole logins) and every test that drives the real
Chromium is marked `e2e`, so the fast part runs alone with `scripts/test -m "not e2e"`.
"""

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.devserver",
    "tests.fixtures.secret_service",
    "tests.fixtures.browser",
    "tests.fixtures.clock",
]

_E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _E2E in Path(item.path).parents or "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
