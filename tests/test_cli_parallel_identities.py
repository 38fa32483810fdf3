"""Per-invocation identity (issue 12): eight agents run kt at once, in one config dir against one
kt-devserver, each with its own identity — chosen by --profile, by KEEPTRUSTS_PROFILE or by
KEEPTRUSTS_API_TOKEN — and each sees only its own, also while their sessions refresh at once
(30 s access tokens sit inside the refresh window: every session command refreshes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from kt_login.store import FileStore
from tests.kt_process import (
    ALICE,
    BOB,
    Result,
    base_env,
    create_token,
    kt,
    kt_at_once,
    password_login,
    token_login,
)

AGENTS = 8


@dataclass(frozen=True)
class Agent:
    email: str
    token_name: str | None  # the API token it uses, or None for a password session
    args: tuple[str, ...]  # how it names its identity on the command line ...
    env: dict[str, str]  # ... or in its environment
    profile: str | None  # the profile whose stored credential it uses (None: the env token)


def run_all(agents: list[Agent], *args: str, base: dict[str, str]) -> list[Result]:
    """Start one `kt ARGS` per agent at once, then wait for all."""
    return kt_at_once(
        [([*args, *agent.args], {**base, **agent.env}) for agent in agents], timeout=120
    )


def test_eight_agents_at_once_each_see_only_their_own_identity(tmp_path: Path, devserver_factory):
    server = devserver_factory("--access-token-ttl", "30")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)

    # Two people with password sessions: alice, and bob (MFA) through the challenge.
    assert password_login(env, ALICE, "--insecure-storage", "--profile", "alice").code == 0
    mfa = password_login(env, BOB, "--insecure-storage", "--profile", "bob", "--json")
    assert mfa.code == 4
    r = kt(
        "auth",
        "mfa",
        "challenge",
        "--token",
        mfa.error()["mfa_token"],
        "--insecure-storage",
        "--profile",
        "bob",
        env=env,
        input=totp.code(BOB_TOTP_SECRET) + "\n",
    )
    assert r.code == 0, r.stderr

    # Six agents with API tokens of their own: four kept in profiles, two in the environment.
    tokens = {f"agent-{i}": create_token(env, f"agent-{i}", "alice") for i in range(6)}
    for i in range(4):
        r = token_login(env, tokens[f"agent-{i}"], f"agent-{i}")
        assert r.code == 0, r.stderr

    agents = [
        Agent(ALICE[0], None, ("--profile", "alice"), {}, "alice"),
        Agent(BOB[0], None, (), {"KEEPTRUSTS_PROFILE": "bob"}, "bob"),
        Agent(ALICE[0], "agent-0", ("--profile", "agent-0"), {}, "agent-0"),
        Agent(ALICE[0], "agent-1", (), {"KEEPTRUSTS_PROFILE": "agent-1"}, "agent-1"),
        Agent(ALICE[0], "agent-2", ("--profile", "agent-2"), {}, "agent-2"),
        Agent(ALICE[0], "agent-3", (), {"KEEPTRUSTS_PROFILE": "agent-3"}, "agent-3"),
        Agent(ALICE[0], "agent-4", (), {"KEEPTRUSTS_API_TOKEN": tokens["agent-4"]}, None),
        Agent(ALICE[0], "agent-5", (), {"KEEPTRUSTS_API_TOKEN": tokens["agent-5"]}, None),
    ]
    assert len(agents) == AGENTS
    before = {
        a.profile: FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load(a.profile)
        for a in agents
        if a.profile
    }

    for _ in range(2):  # the second round runs on the sessions the first one refreshed
        results = run_all(agents, "auth", "whoami", "--json", base=env)
        for agent, r in zip(agents, results, strict=True):
            assert r.code == 0, (agent, r.stderr)
            doc = r.json()
            assert doc["user"]["email"] == agent.email, agent
            if agent.token_name is None:
                assert doc["auth_method"] == "session" and doc["token"] is None, agent
                assert doc["mfa_authenticated"] is (agent.email == BOB[0])
            else:
                assert doc["auth_method"] == "api_token", agent
                assert doc["token"]["name"] == agent.token_name, agent
            assert doc["credential_source"] == (
                "environment" if agent.profile is None else "file (plaintext)"
            )
            if agent.profile is not None:
                assert doc["profile"] == agent.profile

    # print-access-token at once: eight different credentials, each the agent's own
    results = run_all(agents, "auth", "print-access-token", base=env)
    printed = [r.stdout.strip() for r in results]
    assert all(r.code == 0 for r in results), [r.stderr for r in results]
    assert len(set(printed)) == AGENTS
    store = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"]))
    for agent, token in zip(agents, printed, strict=True):
        if agent.profile is None:
            assert token == tokens[agent.token_name or ""]
            continue
        kept = store.load(agent.profile)
        assert kept is not None and kept.access_token == token
        assert kept.user_email == agent.email
        if agent.token_name is not None:
            assert token == tokens[agent.token_name]
        else:  # the password sessions were refreshed, each in its own profile
            old = before[agent.profile]
            assert old is not None and kept.refresh_token != old.refresh_token
