"""Can a browser be used here, and which way `kt auth login` signs in (choose_method)."""

from __future__ import annotations

import socket

import pytest

from kt_login import browser
from kt_login.browser import no_browser_reason
from kt_login.cli.login import MethodChoice, choose_method
from kt_login.config import CONFIG, DEFAULT, ENVIRONMENT, Setting
from kt_login.errors import UsageError


@pytest.fixture(autouse=True)
def not_a_container(monkeypatch):
    monkeypatch.setattr(browser, "_in_container", lambda env: bool(env.get("container")))
    monkeypatch.setattr(browser, "_proc_version", lambda: "Linux version 6.1 (gcc)")


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
            MethodChoice("device", "Using device sign-in: this looks like a container.", race=True),
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
        (
            {"preferred": Setting("paste", CONFIG), "interactive": False},
            MethodChoice("paste", "Using paste-back (--remote) sign-in (login_method in config)."),
        ),
        # the default ("auto") names nothing: kt chooses as before
        ({"preferred": Setting("auto", DEFAULT)}, MethodChoice("browser", BROWSER_NOTE)),
    ],
)
def test_choose_method_with_a_preferred_method(given, choice):
    assert choose_method(**{**NOTHING, **given}) == choice


# ------------------------------------------------------------ WSL and SSH (issue 13 item 3)


@pytest.fixture
def launcher_path(tmp_path):
    for name in ("cmd.exe", "powershell.exe"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    return str(tmp_path)


def test_wsl_with_a_windows_launcher_can_open_a_browser_without_a_display(launcher_path):
    wsl = {"WSL_DISTRO_NAME": "Ubuntu", "PATH": launcher_path}
    assert no_browser_reason(wsl, "linux") is None
    assert browser.wsl_launcher(wsl, "linux") == [f"{launcher_path}/cmd.exe", "/c", "start", ""]
    assert browser.local_opener(wsl, "linux")[1] == "cmd.exe"
    # no launcher on PATH: as any Linux without a display
    assert no_browser_reason({"WSL_DISTRO_NAME": "Ubuntu", "PATH": "/nonexistent"}, "linux")
    # over SSH into WSL, Windows' browser is not the person's
    assert no_browser_reason({**wsl, "SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}, "linux")
    # BROWSER says which browser to use
    assert browser.wsl_launcher({**wsl, "BROWSER": "firefox"}, "linux") is None
    assert browser.local_opener({"PATH": launcher_path}, "linux") == (browser.system_opener, None)


def test_wsl_is_recognised_by_proc_version_too(monkeypatch, launcher_path):
    assert not browser.in_wsl({}, "linux")
    monkeypatch.setattr(browser, "_proc_version", lambda: "Linux 5.15-microsoft-standard-WSL2")
    assert browser.in_wsl({}, "linux")
    assert not browser.in_wsl({}, "darwin")
    assert browser.wsl_launcher({"PATH": launcher_path}, "linux") is not None


def test_launchers_get_only_plain_urls(tmp_path):
    log = tmp_path / "argv"
    fake = tmp_path / "wslview"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\n')
    fake.chmod(0o755)
    opener, name = browser.local_opener({"WSL_DISTRO_NAME": "x", "PATH": str(tmp_path)}, "linux")
    assert name == "wslview"
    link = "http://127.0.0.1:8400/Xq9vR2mP7kL1nB8cZ3wD5f-_"
    assert opener(link) and log.read_text() == link + "\n"
    log.unlink()
    for url in ("http://127.0.0.1:1/a&calc", "http://127.0.0.1:1/a?state=x", 'http://a/"x'):
        assert not opener(url) and not log.exists()


@pytest.mark.parametrize(
    ("env", "tunnel"),
    [
        (
            {"SSH_CONNECTION": "203.0.113.7 5 198.51.100.4 22", "USER": "al"},
            ["ssh", "-L", "8400:127.0.0.1:8400", "al@198.51.100.4"],
        ),
        (
            {"SSH_CONNECTION": "::1 5 2001:db8::4 2200", "LOGNAME": "bo"},
            ["ssh", "-L", "8400:127.0.0.1:8400", "-p", "2200", "bo@2001:db8::4"],
        ),
        (  # not an address: the host name instead
            {"SSH_CONNECTION": "x y evil;host 22", "USER": "al", "SSH_TTY": "/dev/pts/1"},
            ["ssh", "-L", "8400:127.0.0.1:8400", "al@" + socket.gethostname()],
        ),
    ],
)
def test_the_ssh_tunnel_command(env, tunnel):
    session = browser.ssh_session(env)
    assert session is not None and session.tunnel(8400) == tunnel
    assert session.tunnel(8400, "[::1]")[2] == "8400:[::1]:8400"
    assert session.tunnel(8400, "localhost")[2] == "8400:127.0.0.1:8400"


def test_no_ssh_session_without_its_variables():
    assert browser.ssh_session({"USER": "al", "DISPLAY": ":0"}) is None
