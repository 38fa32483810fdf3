"""Can a browser be used here? The rule behind `kt auth login` choosing browser or device."""

from __future__ import annotations

import pytest

from kt_login import browser
from kt_login.browser import no_browser_reason


@pytest.fixture(autouse=True)
def not_a_container(monkeypatch):
    monkeypatch.setattr(browser, "_in_container", lambda env: bool(env.get("container")))


@pytest.mark.parametrize(
    ("env", "platform", "usable"),
    [
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({}, "linux", False),
        ({"SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}, "linux", False),
        ({"SSH_TTY": "/dev/pts/1", "DISPLAY": "localhost:10.0"}, "linux", True),  # X forwarding
        ({"SSH_CLIENT": "1.2.3.4 5 22"}, "darwin", False),
        ({}, "darwin", True),
        ({}, "win32", True),
        ({"container": "podman", "DISPLAY": ":0"}, "linux", False),
        ({"BROWSER": "w3m"}, "linux", True),  # the user said which browser to use
        ({"BROWSER": "firefox", "SSH_CONNECTION": "x"}, "linux", True),
    ],
)
def test_rule(env, platform, usable):
    assert (no_browser_reason(env, platform) is None) is usable
