"""Every hint kt prints is a command that works as printed (issue 12, defect 4).

Two halves. Statically, every `run_hint("kt", …)` in kt_login is parsed by kt's own click
command tree (a flag a command lacks, a missing value, a verb that does not exist would fail), and
no hint names a kt command in prose, outside `run_hint`. Dynamically, the real `kt` is driven into
each failure that prints a command — a keyring that cannot be used on every command that meets it,
no session, a session for another API, an expired session, an MFA account, a wrong MFA code, a
device code that expired — and the printed command is run, on a pseudo-terminal as the person
who read it would, and must not be a usage error ("No such option" and the like)."""

from __future__ import annotations

import ast
import os
import re
import select
import shlex
import time
from pathlib import Path

import click
import pytest

from kt_login.cli import cli, common_options_last
from kt_login.store import FileStore
from kt_login.store.index import update_index
from tests.kt_process import ALICE, BOB, REPO, Result, base_env, kt, password_login
from tests.sample_sessions import make_session
from tests.terminal import Terminal

SOURCE = REPO / "kt_login"
# What click prints for a command line it cannot parse.
USAGE_ERROR = re.compile(
    r"Try 'kt|No such option|No such command|Missing option|Missing argument|Invalid value"
    r"|unexpected extra argument|requires an argument"
)
KT_COMMAND_IN_PROSE = re.compile(r"\bkt (auth|config) ")
# Signs that a command was accepted and is now waiting for the person: enough to stop it.
WAITING = re.compile(r"Authentication code:|To sign in, open|Open this URL|Opened your browser")


# --- every run_hint("kt", …) in the source parses -------------------------------------------


def _run_hint_calls() -> list[tuple[str, list[str]]]:
    """(file:line, the words) of each run_hint("kt", …) call; a word not written literally is a
    placeholder value, and a flag built at run time (f"--{method}") is left out."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "run_hint"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == "kt"
            ):
                continue
            words: list[str] = []
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    words.append(arg.value)
                elif isinstance(arg, ast.Starred) or isinstance(arg, ast.JoinedStr):
                    continue
                else:
                    words.append("1")  # a value that parses as a number or as text
            found.append((f"{path.relative_to(REPO)}:{node.lineno}", words))
    return found


def parse_with_click(words: list[str]) -> None:
    """Parse `kt WORDS` down to its command, as click would before running it."""
    assert words[0] == "kt"
    ctx = cli.make_context("kt", words[1:])
    while isinstance(ctx.command, click.Group):
        args = [*ctx._protected_args, *ctx.args]
        assert args, f"{shlex.join(words)} names a group, not a command"
        name, command, rest = ctx.command.resolve_command(ctx, args)
        assert command is not None and name is not None
        ctx = command.make_context(name, rest, parent=ctx)


CALLS = _run_hint_calls()


def test_the_static_inventory_found_the_hints():
    assert len(CALLS) >= 10, CALLS


@pytest.mark.parametrize("where, words", CALLS, ids=[where for where, _ in CALLS])
def test_each_run_hint_in_the_source_is_a_command_kt_parses(where, words):
    try:
        parse_with_click(words)
    except click.ClickException as exc:
        pytest.fail(f"{where}: {shlex.join(words)}: {exc.format_message()}")


def test_no_hint_names_a_kt_command_in_prose():
    """A command to run is written by run_hint (`run: kt …`), so it can be pasted and tested."""
    prose = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            values: list[ast.expr] = []
            if isinstance(node, ast.keyword) and node.arg == "hint":
                values = [node.value]
            elif isinstance(node, ast.Assign) and any(
                (isinstance(t, ast.Attribute) and t.attr == "hint")
                or (isinstance(t, ast.Name) and t.id.endswith("HINT"))
                for t in node.targets
            ):
                values = [node.value]
            for value in values:
                for part in ast.walk(value):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        if KT_COMMAND_IN_PROSE.search(part.value):
                            prose.append(f"{path.relative_to(REPO)}:{part.lineno}: {part.value}")
    assert prose == []


# --- the hints of real failures, run as printed -----------------------------------------------


def printed_command(result: Result) -> list[str]:
    """The `run: kt …` command at the end of the hint of a failed (human-mode) command."""
    lines = result.stderr.strip().splitlines()
    assert lines and "Traceback" not in result.stderr, result.stderr
    hint = lines[-1]
    assert "run: kt " in hint, result.stderr
    return shlex.split(hint.rpartition("run: ")[2])


def run_as_printed(words: list[str], env: dict[str, str], *, answer: str | None = None) -> str:
    """Run the printed command on a pseudo-terminal; it works if click accepts it (it may then
    prompt, wait for a sign-in, or fail for a reason of its own). A prompt gets `answer`."""
    assert words[0] == "kt"
    term = Terminal(words[1:], env)
    if answer is not None and "--password-stdin" in words:
        term.type(answer)  # read as a line, not by a prompt
        answer = None
    end = time.monotonic() + 15
    try:
        while time.monotonic() < end and term.proc.poll() is None:
            ready, _, _ = select.select([term.master], [], [], 0.2)
            if ready:
                try:
                    term.seen += os.read(term.master, 4096).decode(errors="replace")
                except OSError:
                    break
            if answer is not None and term.seen.rstrip().endswith(":"):
                term.type(answer)
                answer = None
            if WAITING.search(term.seen):
                break
    finally:
        if term.proc.poll() is None:
            term.proc.terminate()
        code = term.finish()
    assert not USAGE_ERROR.search(term.seen), (shlex.join(words), term.seen)
    assert code != 2 or "kt.usage" not in term.seen, (shlex.join(words), term.seen)
    assert "Traceback" not in term.seen
    return term.seen


def file_config(env: dict[str, str]) -> dict[str, str]:
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text('credential_store = "file"\n')
    return env


@pytest.mark.parametrize(
    "args",
    [
        ("auth", "whoami"),
        ("auth", "status"),
        ("auth", "logout"),
        ("auth", "token", "list"),
        ("auth", "whoami", "--profile", "work"),
        ("auth", "login", "--email", ALICE[0], "--password-stdin"),
        ("auth", "login", "--device", "--no-qr", "--profile", "work"),
    ],
    ids=" ".join,
)
def test_a_keyring_that_cannot_be_used_gets_a_command_that_works(tmp_path, devserver, args):
    """The keyring holding the sessions stops answering: --insecure-storage is suggested only
    where the command takes it, and otherwise the login that takes it."""
    env = base_env(
        tmp_path,
        KEEPTRUSTS_API_URL=devserver.url,
        PYTHON_KEYRING_BACKEND="tests.fake_keyrings.HangingKeyring",
        KEEPTRUSTS_KEYRING_TIMEOUT="0.5",
    )
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    for profile in ("default", "work"):  # where their sessions are: in the keyring
        update_index(cfg, profile, "keyring")
    r = kt(*args, env=env, input=ALICE[1] + "\n")
    assert r.code == 1, r.stderr
    assert "keyring" in r.stderr
    words = printed_command(r)
    assert "--insecure-storage" in words
    if "--profile" in args:
        assert words[words.index("--profile") + 1] == "work"
    if args[:2] == ("auth", "login"):
        assert words[:3] == ["kt", *args[:2]] and set(args[2:]) - {ALICE[1]} <= set(words)
    seen = run_as_printed(words, env, answer=ALICE[1])
    assert "Error: the OS keyring" not in seen


def test_no_session_gets_the_login_command_for_the_profile(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    r = kt("auth", "whoami", "--profile", "work", env=file_config(env))
    assert r.code == 3
    words = printed_command(r)
    assert words[:3] == ["kt", "auth", "login"] and words[-2:] == ["--profile", "work"]
    run_as_printed(words, env)


def test_a_session_for_another_api_gets_the_login_command_for_this_one(tmp_path, devserver):
    env = file_config(base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url))
    assert password_login(env).code == 0
    other = "http://127.0.0.1:9"
    r = kt("auth", "whoami", "--api-url", other, env=env)
    assert r.code == 3
    words = printed_command(r)
    assert words[words.index("--api-url") + 1] == other
    run_as_printed(words, env)


def test_an_expired_session_gets_the_login_command(tmp_path, devserver):
    env = file_config(base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url))
    FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).save(
        "default",
        make_session(
            api_url=devserver.url, expires_at=1.0, refresh_expires_at=2.0, obtained_at=0.5
        ),
    )
    r = kt("auth", "status", env=env)
    assert r.code == 3
    run_as_printed(printed_command(r), env)


def test_an_mfa_account_and_a_wrong_code_get_the_challenge_command(tmp_path, devserver):
    env = file_config(base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url))
    r = password_login(env, BOB, "--profile", "work")
    assert r.code == 4
    words = printed_command(r)
    assert words[:4] == ["kt", "auth", "mfa", "challenge"] and "--profile" in words
    wrong = kt(*words[1:], env=env, input="000000\n")
    assert wrong.code == 4
    again = printed_command(wrong)
    assert again == words
    run_as_printed(again, env)  # prompts for the code: it works as printed


def test_a_device_code_that_expired_gets_the_same_sign_in_again(tmp_path, devserver_factory):
    server = devserver_factory("--device-code-ttl", "2", "--device-interval", "1")
    env = file_config(base_env(tmp_path, KEEPTRUSTS_API_URL=server.url))
    r = kt("auth", "login", "--device", "--no-qr", "--profile", "work", env=env)
    assert r.code == 3, r.stderr
    words = printed_command(r)
    assert words == ["kt", "auth", "login", "--device", "--no-qr", "--profile", "work"]
    run_as_printed(words, env)


# --- every command's --help has examples, and each one parses --------------------------------


def _leaf_commands() -> list[tuple[str, click.Command]]:
    found = []

    def walk(command: click.Command, path: list[str], ctx: click.Context) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name], click.Context(sub, parent=ctx, info_name=name))
        else:
            found.append((" ".join(path), command))

    walk(cli, ["kt"], click.Context(cli, info_name="kt"))
    return found


COMMANDS = _leaf_commands()
KT_IN_EXAMPLE = re.compile(r"(^|\$\(|\| ?)kt ")


def kt_commands_in(line: str) -> list[list[str]]:
    """The kt command lines in an example: the whole line, or the part after a pipe, or inside
    $( ), each up to the shell's next operator."""
    found = []
    for match in KT_IN_EXAMPLE.finditer(line):
        rest = line[match.end() - 3 :]
        if match.group(1) == "$(":
            rest = rest.split(")", 1)[0]
        lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = []
        for token in lexer:
            if token and all(c in "|;<>()&" for c in token):
                break
            words.append(token)
        found.append(["kt", *common_options_last(words[1:])])
    return found


@pytest.mark.parametrize("path, command", COMMANDS, ids=[path for path, _ in COMMANDS])
def test_each_command_has_examples_that_parse(path, command):
    shown = kt(
        *path.split()[1:], "--help", env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    )
    assert shown.code == 0, shown.stderr
    assert "Examples:" in shown.stdout, path
    section = shown.stdout.split("Examples:", 1)[1].split("Options:", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip()]
    commands = [words for line in lines for words in kt_commands_in(line)]
    assert any(words[: len(path.split())] == path.split() for words in commands), (path, lines)
    for words in commands:
        try:
            parse_with_click(words)
        except click.ClickException as exc:
            pytest.fail(f"{path} --help: {shlex.join(words)}: {exc.format_message()}")
