"""Exit codes mean the same with `--json` (issue 12: gh's `auth status --json` exits 0 on
failure; kt must not). Each failure runs through the real `kt` twice, with and without --json:
the same non-zero code both times, and under --json one JSON error on stderr that names it,
and nothing on stdout but JSON."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.adversarial.hostile_api import HostileAPI, Reply
from tests.fixtures.devserver import DevServer, start_devserver
from tests.kt_process import ALICE, BOB, base_env, kt, password_login


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int
    input: str | None = None
    env: dict[str, str] | None = None  # added to the test's environment
    signed_in: bool = False  # alice logged in first (default profile, file store)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NOWHERE = f"http://127.0.0.1:{unused_port()}"

CASES = {
    # 1: an error the API answered, or a setting that is not there
    "token revoke of an unknown id": Case(
        ("auth", "token", "revoke", "--id", "tok_nope", "--yes"), 1, signed_in=True
    ),
    "config get of an unset key": Case(("config", "get", "api_url", "--profile", "p"), 1),
    "refresh of an API token": Case(("auth", "refresh"), 1, env={"KEEPTRUSTS_API_TOKEN": "x"}),
    # 2: usage
    "unknown command": Case(("auth", "bogus"), 2),
    "unknown flag": Case(("auth", "whoami", "--bogus"), 2),
    "login with nothing to sign in with": Case(("auth", "login"), 2),
    "plain http API URL": Case(("auth", "whoami", "--api-url", "http://api.example.com"), 2),
    "bad --min-ttl": Case(("auth", "print-access-token", "--min-ttl", "soon"), 2),
    "config set of a bad value": Case(("config", "set", "credential_store", "vault"), 2),
    "switch to an unknown profile": Case(("auth", "switch", "nope"), 2),
    "with-token given nothing": Case(
        ("auth", "login", "--with-token", "--insecure-storage"), 2, input=""
    ),
    # 3: not logged in / login required
    "whoami without a session": Case(("auth", "whoami"), 3),
    "status without a session": Case(("auth", "status"), 3),
    "status --all without a session": Case(("auth", "status", "--all"), 3),
    "print-access-token without a session": Case(("auth", "print-access-token"), 3),
    "refresh without a session": Case(("auth", "refresh"), 3),
    "token list without a session": Case(("auth", "token", "list"), 3),
    "wrong password": Case(
        ("auth", "login", "--email", ALICE[0], "--password-stdin", "--insecure-storage"),
        3,
        input="not-her-password\n",
    ),
    "a refused API token": Case(
        ("auth", "whoami"), 3, env={"KEEPTRUSTS_API_TOKEN": "kt_live_refused"}
    ),
    "with-token refused": Case(
        ("auth", "login", "--with-token", "--insecure-storage"), 3, input="kt_live_nope\n"
    ),
    # 4: MFA required
    "an MFA account without a terminal": Case(
        ("auth", "login", "--email", BOB[0], "--password-stdin", "--insecure-storage"),
        4,
        input=BOB[1] + "\n",
    ),
    # 5: network
    "unreachable API": Case(
        ("auth", "whoami"), 5, env={"KEEPTRUSTS_API_URL": NOWHERE, "KEEPTRUSTS_API_TOKEN": "x"}
    ),
    "unreachable API at login": Case(
        ("auth", "login", "--email", ALICE[0], "--password-stdin", "--insecure-storage"),
        5,
        input=ALICE[1] + "\n",
        env={"KEEPTRUSTS_API_URL": NOWHERE},
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    started = start_devserver(tmp_path_factory.mktemp("devserver"))
    yield started
    started.stop()


def run_both(case: Case, env_for: Callable[[str], dict[str, str]]) -> None:
    results = []
    for mode in ("text", "json"):
        env = env_for(mode)
        if case.signed_in:
            assert password_login(env, ALICE, "--insecure-storage").code == 0
        env = {**env, **(case.env or {})}
        args = (*case.args, "--json") if mode == "json" else case.args
        results.append(kt(*args, env=env, input=case.input))
    text, as_json = results
    assert text.code == case.code, (text.code, text.stderr)
    assert as_json.code == text.code, (as_json.code, as_json.stderr)
    error = as_json.error()  # the last stderr line is one JSON object
    assert error["exit_code"] == case.code
    assert error["code"] and error["message"]
    if as_json.stdout.strip():
        json.loads(as_json.stdout)  # a partial result is still JSON
    assert not text.stderr.lstrip().startswith("{")  # humans get words


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_exit_code_with_and_without_json(name, server, tmp_path: Path):
    run_both(
        CASES[name],
        lambda mode: base_env(tmp_path / mode, KEEPTRUSTS_API_URL=server.url),
    )


def test_a_server_error_is_6_with_and_without_json(tmp_path):
    api = HostileAPI().start()
    try:
        api.routes[("GET", "/v1/auth/whoami")] = Reply(503, b"{}")
        run_both(
            Case(("auth", "whoami"), 6, env={"KEEPTRUSTS_API_TOKEN": "kt_live_x"}),
            lambda mode: base_env(tmp_path / mode, KEEPTRUSTS_API_URL=api.url),
        )
    finally:
        api.stop()


def test_success_is_0_with_and_without_json(server, tmp_path):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    assert password_login(env, ALICE, "--insecure-storage").code == 0
    for args in (
        ("auth", "status"),
        ("auth", "status", "--all"),
        ("auth", "whoami"),
        ("auth", "print-access-token"),
        ("config", "show"),
    ):
        text = kt(*args, env=env)
        as_json = kt(*args, "--json", env=env)
        assert (text.code, as_json.code) == (0, 0), (args, text.stderr, as_json.stderr)
        json.loads(as_json.stdout)


def test_a_validation_failure_is_7_with_and_without_json(tmp_path):
    """A provider whose metadata names another issuer (SECURITY.md: issuer pinned)."""
    api = HostileAPI().start()
    try:
        metadata = {
            "issuer": "http://127.0.0.1:1/not-this-one",
            "authorization_endpoint": f"{api.url}/authorize",
            "token_endpoint": f"{api.url}/token",
            "device_authorization_endpoint": f"{api.url}/device",
            "jwks_uri": f"{api.url}/jwks",
        }
        for path in (
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ):
            api.routes[("GET", path)] = Reply(200, json.dumps(metadata).encode())
        run_both(
            Case(("auth", "login", "--device", "--insecure-storage", "--issuer", api.url), 7),
            lambda mode: base_env(tmp_path / mode, KEEPTRUSTS_API_URL=api.url),
        )
    finally:
        api.stop()
