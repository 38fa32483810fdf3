"""Shared fixtures: a real kt-devserver process, a real Secret Service, isolated config dirs."""

pytest_plugins = ["tests.fixtures.devserver", "tests.fixtures.secret_service"]
