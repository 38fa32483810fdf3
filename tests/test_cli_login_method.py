"""`login_method` in a profile and `KEEPTRUSTS_LOGIN_METHOD` (issue 13 item 3): `kt auth login`
without a method flag signs in the way they say (flags win, then the environment, then the
profile), so nobody has to pass `--device` every time. The real `kt` against kt-devserver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.kt_process import ALICE, kt, start_kt
from tests.terminal import Terminal


def first_progress(env: dict[str, str], *args: str) -> tuple[str, dict[str, Any]]:
    """`kt auth login ARGS --json --insecure-storage`, without a terminal, until it shows how to
    sign in (the device code, or the browser's sign-in link); then it is stopped."""
    proc = start_kt("auth", "login", *args, "--insecure-storage", "--json", env=env)
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith("{"):
                doc = json.loads(line)
                if "verification_uri" in doc:
                    return "device", doc
                if "sign_in_url" in doc:
                    return "browser", doc
        raise AssertionError("kt showed no way to sign in: " + proc.communicate()[1])
    finally:
        proc.kill()
        proc.communicate()


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    # A machine where a browser could be opened: only the setting makes kt use the device flow.
    return {**env, "DISPLAY": ":0", "BROWSER": "true"}


def test_the_environment_picks_the_device_flow(env):
    method, doc = first_progress({**env, "KEEPTRUSTS_LOGIN_METHOD": "device"})
    assert method == "device" and doc["user_code"]
    shown = kt("config", "show", "--json", env={**env, "KEEPTRUSTS_LOGIN_METHOD": "device"})
    assert shown.json()["login_method"] == {"value": "device", "source": "environment"}


def test_the_profile_s_login_method_is_used_and_says_so(env):
    assert kt("config", "set", "login_method", "device", env=env).code == 0
    assert first_progress(env)[0] == "device"
    assert kt("config", "show", "--json", env=env).json()["login_method"] == {
        "value": "device",
        "source": "config file",
    }
    proc = start_kt("auth", "login", "--insecure-storage", env=env)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().strip() == "Using device sign-in (login_method in config)."
    finally:
        proc.kill()
        proc.communicate()


def test_without_a_terminal_the_profile_s_method_is_enough_to_go_on(env):
    # Without a setting, no terminal and no flag is a usage error (EH-06) ...
    refused = kt("auth", "login", "--json", env=env)
    assert refused.code == 2 and "nothing to sign in with" in refused.error()["message"]
    # ... with one, kt signs in the way it names.
    assert kt("config", "set", "login_method", "browser", env=env).code == 0
    assert first_progress(env)[0] == "browser"


def test_the_environment_wins_over_the_profile_and_flags_win_over_both(env):
    assert kt("config", "set", "login_method", "browser", env=env).code == 0
    device_env = {**env, "KEEPTRUSTS_LOGIN_METHOD": "device"}
    assert first_progress(device_env)[0] == "device"
    assert first_progress(device_env, "--browser")[0] == "browser"
    assert kt("config", "set", "login_method", "device", env=env).code == 0
    assert first_progress(env, "--browser")[0] == "browser"
    assert first_progress({**env, "KEEPTRUSTS_LOGIN_METHOD": "browser"})[0] == "browser"


def test_a_method_that_is_not_one_is_refused_in_one_line(env):
    bad_env = kt("auth", "login", "--json", env={**env, "KEEPTRUSTS_LOGIN_METHOD": "sms"})
    assert bad_env.code == 2, bad_env.stderr
    assert bad_env.error()["message"] == (
        'KEEPTRUSTS_LOGIN_METHOD must be "device", "browser" or "paste", not \'sms\''
    )
    bad_set = kt("config", "set", "login_method", "sms", "--json", env=env)
    assert bad_set.code == 2
    assert (
        bad_set.error()["message"]
        == 'login_method must be "device", "browser" or "paste", not \'sms\''
    )
    for result in (bad_env, bad_set):
        assert "Traceback" not in result.stderr


def test_email_still_signs_in_with_the_password(env):
    """--email names a method too: the setting never turns it into another."""
    email, password = ALICE
    result = kt(
        "auth", "login", "--email", email, "--password-stdin", "--insecure-storage", "--json",
        env={**env, "KEEPTRUSTS_LOGIN_METHOD": "device"}, input=password + "\n",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert result.json()["user"]["email"] == email


def test_paste_is_the_remote_sign_in(env):
    """ "paste": --remote's sign-in, the link to open anywhere and kt-devserver's "copy this
    line" page pasted back (issue 13 item 1); it needs a terminal, like --remote."""
    paste = {**env, "KEEPTRUSTS_LOGIN_METHOD": "paste"}
    without_terminal = kt("auth", "login", "--insecure-storage", env=paste)
    assert without_terminal.code == 2, without_terminal.stderr
    assert "Using paste-back (--remote) sign-in (KEEPTRUSTS_LOGIN_METHOD)." in (
        without_terminal.stderr
    )
    assert "needs a terminal" in without_terminal.stderr
    assert kt("config", "set", "login_method", "paste", env=env).code == 0
    term = Terminal(["auth", "login", "--insecure-storage"], env, columns=400)
    try:
        seen = term.expect("Paste here and press Enter: ")
    finally:
        term.proc.kill()
        term.proc.wait()
    assert "Using paste-back (--remote) sign-in (login_method in config)." in seen
    assert "remote-callback" in seen  # the provider's own page is the redirect, no listener
