"""Can a browser be used here, and which way `kt auth login` signs in (choose_method)."""

from __future__ import annotations

import pytest

from kt_login import browser
from kt_login.browser import no_browser_reason
from kt_login.cli.login import MethodChoice, choose_method
from kt_login.config import CONFIG, DEFAULT, ENVIRONMENT, Setting
from kt_login.errors import UsageError


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


# --------------------------------------------------------------------------- choose_method


BROWSER_NOTE = "Signing in with your browser (use --device to sign in from another device)."
NOTHING = {
    "email": None,
    "password_given": False,
    "browser": False,
    "device": False,
    "oauth_flags": False,
    "interactive": True,
    "why_no_browser": None,
}


@pytest.mark.parametrize(
    ("given", "choice"),
    [
        ({"email": "a@b"}, MethodChoice("password")),
        ({"password_given": True, "interactive": False}, MethodChoice("password")),
        ({"browser": True, "why_no_browser": "no display"}, MethodChoice("browser")),
        ({"device": True}, MethodChoice("device", "Using device sign-in (--device).")),
        ({}, MethodChoice("browser", BROWSER_NOTE)),
        (
            {"why_no_browser": "this looks like a container"},
            MethodChoice("device", "Using device sign-in: this looks like a container."),
        ),
        # no terminal, but --issuer/--client-id say an OAuth sign-in is meant
        ({"interactive": False, "oauth_flags": True}, MethodChoice("browser", BROWSER_NOTE)),
    ],
)
def test_choose_method(given, choice):
    assert choose_method(**{**NOTHING, **given}) == choice


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"browser": True, "device": True}, "either --browser or --device"),
        ({"browser": True, "email": "a@b"}, "drop --email/--password"),
        ({"device": True, "password_given": True}, "drop --email/--password"),
        ({"interactive": False}, "nothing to sign in with"),
    ],
)
def test_choose_method_refuses(given, says):
    with pytest.raises(UsageError) as info:
        choose_method(**{**NOTHING, **given})
    assert says in info.value.message


# ------------------------------------------- login_method / KEEPTRUSTS_LOGIN_METHOD (issue 13)


@pytest.mark.parametrize(
    ("given", "choice"),
    [
        # the profile's login_method, where nothing else says
        (
            {"preferred": Setting("device", CONFIG)},
            MethodChoice("device", "Using device sign-in (login_method in config)."),
        ),
        (
            {"preferred": Setting("browser", CONFIG), "why_no_browser": "no display"},
            MethodChoice("browser", "Using browser sign-in (login_method in config)."),
        ),
        # the environment (config.resolve already let it win over the profile)
        (
            {"preferred": Setting("device", ENVIRONMENT)},
            MethodChoice("device", "Using device sign-in (KEEPTRUSTS_LOGIN_METHOD)."),
        ),
        # it is something to go on without a terminal
        (
            {"preferred": Setting("browser", ENVIRONMENT), "interactive": False},
            MethodChoice("browser", "Using browser sign-in (KEEPTRUSTS_LOGIN_METHOD)."),
        ),
        # flags win
        ({"preferred": Setting("device", ENVIRONMENT), "browser": True}, MethodChoice("browser")),
        (
            {"preferred": Setting("browser", CONFIG), "device": True},
            MethodChoice("device", "Using device sign-in (--device)."),
        ),
        ({"preferred": Setting("device", CONFIG), "email": "a@b"}, MethodChoice("password")),
        # the default ("auto") names nothing: kt chooses as before
        ({"preferred": Setting("auto", DEFAULT)}, MethodChoice("browser", BROWSER_NOTE)),
    ],
)
def test_choose_method_with_a_preferred_method(given, choice):
    assert choose_method(**{**NOTHING, **given}) == choice
