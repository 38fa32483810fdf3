"""The MFA code prompt keeps asking while the server takes codes, and never ends without a way
on (issue 12, defect 5), through the real `kt` on a pseudo-terminal against kt-devserver."""

from __future__ import annotations

import shlex

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from tests.kt_process import BOB, kt, password_login
from tests.terminal import Terminal


def test_more_than_three_wrong_codes_are_asked_again_until_the_right_one(env):
    term = Terminal(["auth", "login", "--email", BOB[0], "--insecure-storage"], env)
    term.expect("Password:")
    term.type(BOB[1])
    for attempt in range(1, 5):  # four wrong codes: the server takes five per mfa_token
        term.expect("Authentication code:", times=attempt)
        term.type("000000")
        term.expect("not accepted", times=attempt)
    assert "attempt(s) left" in term.seen  # what the server said, passed on
    term.expect("Authentication code:", times=5)
    term.type(totp.code(BOB_TOTP_SECRET))
    assert term.finish() == 0, term.seen
    assert "Logged in to" in term.seen
    assert kt("auth", "whoami", "--json", env=env).json()["mfa_authenticated"] is True


def test_a_burnt_mfa_token_ends_with_the_login_command(env):
    term = Terminal(["auth", "login", "--email", BOB[0], "--insecure-storage"], env)
    term.expect("Password:")
    term.type(BOB[1])
    for attempt in range(1, 7):
        term.expect("Authentication code:", times=attempt)
        term.type("000000")
        if attempt < 6:
            term.expect("not accepted", times=attempt)
    assert term.finish() == 3, term.seen
    assert "run: kt auth login" in term.seen and "Traceback" not in term.seen


def test_a_wrong_piped_code_ends_with_the_command_that_continues(env):
    first = password_login(env, BOB, "--json", "--insecure-storage")
    assert first.code == 4
    mfa_token = first.error()["mfa_token"]
    wrong = kt(
        "auth",
        "mfa",
        "challenge",
        "--token",
        mfa_token,
        "--insecure-storage",
        env=env,
        input="000000\n",
    )
    assert wrong.code == 4, wrong.stderr
    hint = wrong.stderr.strip().splitlines()[-1]
    assert hint.startswith("run: kt auth mfa challenge --token ")
    words = shlex.split(hint.removeprefix("run: "))
    assert mfa_token in words and "--insecure-storage" in words
    again = kt(*words[1:], env=env, input=totp.code(BOB_TOTP_SECRET) + "\n")
    assert again.code == 0, again.stderr
    assert kt("auth", "whoami", "--json", env=env).json()["mfa_authenticated"] is True
