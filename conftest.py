"""pytest plugins for tests/ and e2e/: real kt-devserver processes, a real Secret Service."""

pytest_plugins = [
    "tests.fixtures.devserver",
    "tests.fixtures.secret_service",
    "tests.fixtures.browser",
]
