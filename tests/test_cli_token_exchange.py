"""`kt auth token exchange` (issue 15 part 3): the signed-in session turned into a short-lived,
down-scoped token for an agent (RFC 8693 delegation), through the real `kt` against a real
kt-devserver: whoami with it names the agent and the person, the server's refusals (a scope beyond
the session's, a longer lifetime) are clear, the token ends with the session, and an agent
process that is given only the derived token works without ever seeing the session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.devserver import DevServer
from tests.kt_process import ALICE, base_env, kt, password_login


@pytest.fixture
def alice(env: dict[str, str]) -> dict[str, str]:
    assert password_login(env, ALICE, "--insecure-storage").code == 0
    return env


def exchange(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    r = kt("auth", "token", "exchange", *args, env=env)
    return r.code, r.stdout, r.stderr


def test_the_agent_token_names_the_agent_on_behalf_of_the_person(alice: dict[str, str]) -> None:
    code, out, err = exchange(
        alice, "--scope", "gateways:read", "--ttl", "15m", "--actor", "agent:bot"
    )
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token.startswith("kta_")
    assert "Delegated token for agent bot (scopes: gateways:read" in err
    assert "15 minutes" in err and token not in err
    as_agent = {**alice, "KEEPTRUSTS_API_TOKEN": token}
    who = kt("auth", "whoami", env=as_agent)
    assert who.code == 0, who.stderr
    assert "as agent bot on behalf of alice@example.com" in who.stdout
    assert "Scopes: gateways:read\n" in who.stdout
    doc = kt("auth", "whoami", "--json", env=as_agent).json()
    assert doc["act"] == {"sub": "agent:bot"}
    assert doc["on_behalf_of"] == "alice@example.com"
    assert doc["auth_method"] == "delegated" and doc["scopes"] == ["gateways:read"]


def test_json_describes_the_token(alice: dict[str, str]) -> None:
    r = kt(
        "auth", "token", "exchange", "--scope", "gateways:read,configurations:read",
        "--ttl", "600", "--actor", "agent:triage", "--json", env=alice,
    )  # fmt: skip
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["actor"] == "agent:triage"
    assert doc["scopes"] == ["configurations:read", "gateways:read"]
    assert 590 <= doc["expires_in"] <= 600 and doc["expires_at"].endswith("Z")
    assert doc["access_token"].startswith("kta_") and doc["token_type"] == "Bearer"


def test_a_scope_beyond_the_session_is_refused(alice: dict[str, str], devserver: DevServer) -> None:
    assert devserver.admin("role", ALICE[0], "member").returncode == 0  # no gateways:write now
    code, out, err = exchange(alice, "--scope", "gateways:write", "--actor", "agent:bot")
    assert code == 1, err
    assert "refused to make that delegated token" in err and "gateways:write" in err
    assert out == "" and "Traceback" not in err


def test_a_longer_lifetime_than_the_server_allows_is_refused(alice: dict[str, str]) -> None:
    code, out, err = exchange(
        alice, "--scope", "gateways:read", "--ttl", "2h", "--actor", "agent:bot"
    )
    assert code == 1, err
    assert "at most 3600 seconds" in err
    assert out == ""


def test_a_delegated_token_is_not_delegated_again(alice: dict[str, str]) -> None:
    _, token, _ = exchange(alice, "--scope", "gateways:read", "--actor", "agent:bot")
    again = kt(
        "auth", "token", "exchange", "--scope", "gateways:read", "--actor", "agent:sub",
        "--json", env={**alice, "KEEPTRUSTS_API_TOKEN": token.strip()},
    )  # fmt: skip
    assert again.code == 3
    assert "cannot be exchanged again" in again.error()["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "gateways:read", "--actor", "bot"], "KIND:NAME"),
        (["--scope", "gateways:read", "--actor", "agent:bot", "--ttl", "soon"], "not a duration"),
        (["--actor", "agent:bot"], "--scope"),
    ],
)
def test_usage_errors(alice: dict[str, str], args: list[str], message: str) -> None:
    code, out, err = exchange(alice, *args)
    assert code == 2, err
    assert message in err and out == ""


def test_without_a_session_it_says_how_to_sign_in(env: dict[str, str]) -> None:
    code, _, err = exchange(env, "--scope", "gateways:read", "--actor", "agent:bot")
    assert code == 3
    assert "run: kt auth login" in err


def test_logging_out_revokes_what_was_derived(alice: dict[str, str]) -> None:
    _, token, _ = exchange(alice, "--scope", "gateways:read", "--actor", "agent:bot")
    as_agent = {**alice, "KEEPTRUSTS_API_TOKEN": token.strip()}
    assert kt("auth", "whoami", env=as_agent).code == 0
    assert kt("auth", "logout", env=alice).code == 0
    after = kt("auth", "whoami", env=as_agent)
    assert after.code == 3
    assert "KEEPTRUSTS_API_TOKEN was refused" in after.stderr


AGENT = """
import json, subprocess, sys
def kt(*args):
    done = subprocess.run([sys.executable, "-m", "kt_login", *args], capture_output=True, text=True)
    return done.returncode, done.stdout
code, out = kt("auth", "whoami", "--json")
listed, _ = kt("auth", "token", "list")  # needs tokens:read, which it was not given
print(json.dumps({"whoami": json.loads(out) if code == 0 else None, "token_list_exit": listed}))
"""


def test_an_agent_process_only_ever_sees_the_derived_token(
    tmp_path: Path, alice: dict[str, str], devserver: DevServer
) -> None:
    session_token = kt("auth", "print-access-token", env=alice).stdout.strip()
    _, derived, _ = exchange(alice, "--scope", "gateways:read", "--actor", "agent:runner")
    agent_home = tmp_path / "agent"
    agent_home.mkdir()
    # The agent's own machine account: its own home and config dir, the derived token only.
    agent_env = base_env(
        agent_home, KEEPTRUSTS_API_URL=devserver.url, KEEPTRUSTS_API_TOKEN=derived.strip()
    )
    assert not any(session_token in value for value in agent_env.values())
    done = subprocess.run(
        [sys.executable, "-c", AGENT], env=agent_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["whoami"]["act"] == {"sub": "agent:runner"}
    assert report["whoami"]["user"]["email"] == ALICE[0]
    assert report["whoami"]["credential_source"] == "environment"
    assert report["token_list_exit"] == 1  # down-scoped: tokens:read was not delegated
    assert session_token not in done.stdout + done.stderr
    assert not (agent_home / "config").exists() or not any((agent_home / "config").rglob("*.json"))
