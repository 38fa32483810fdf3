"""kt steps up from the API's WWW-Authenticate challenge (issue 14 item 3, RFC 9470 / RFC 6750)
and hands a step-up over when nobody is at the terminal (issue 12, step-up handoff).

Against a real kt-devserver run with `--mfa-max-age 300`: bob's browser session is made older
than that, and rotating a token then answers 401 `insufficient_user_authentication`,
`acr_values="urn:keeptrusts:acr:mfa", max_age=300`. With a person at the terminal kt signs in
again in the browser with exactly those, checks the new ID token's acr and auth_time, keeps the
session and retries once; without one (the real `kt`, no TTY) the JSON error carries a started
two-step sign-in, and finishing it with the printed command lets the retry through. A scope the
session lacks is asked for once, with every scope it had — never a loop."""

from __future__ import annotations

import contextlib
import json
import shlex
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kt_devserver import demo, totp
from kt_login.cli import cli, main
from kt_login.cli.app import App
from kt_login.store import FileStore
from tests.adversarial.hostile_api import HostileAPI, Reply, Seen, json_reply
from tests.adversarial.hostile_as import HostileAS
from tests.fixtures.devserver import DevServer
from tests.fixtures.oauth_client import Person
from tests.kt_process import ALICE, BOB, base_env, create_token, kt, password_login

MFA_ACR = "urn:keeptrusts:acr:mfa"


@pytest.fixture
def server(devserver_factory) -> DevServer:
    devserver: DevServer = devserver_factory("--mfa-max-age", "300")
    return devserver


def bob() -> Person:
    return Person(demo.BOB_EMAIL, demo.BOB_PASSWORD, demo.BOB_TOTP_SECRET)


def age_sessions(server: DevServer, seconds: int = 3600) -> None:
    """Time passes: every sign-in (and so its MFA) is `seconds` older."""
    with contextlib.closing(sqlite3.connect(server.db_path)) as db, db:
        db.execute("UPDATE sessions SET created_at = created_at - ?", (seconds,))


def in_process(tmp_path: Path, server: DevServer, person: Person, capsys, *args: str):
    """The kt command in this process with a person at the terminal and `person` as browser."""
    app = App(
        env={
            "KEEPTRUSTS_CONFIG_DIR": str(tmp_path / "cfg"),
            "KEEPTRUSTS_API_URL": server.url,
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        },
        interactive=lambda: True,
        opener=person.opener,
    )
    code = main(list(args), obj=app)
    out, err = capsys.readouterr()
    return code, out, err


def stored(tmp_path: Path):
    session = FileStore(tmp_path / "cfg").load("default")
    assert session is not None
    return session


def test_a_browser_session_steps_up_with_exactly_what_the_api_asked(tmp_path, server, capsys):
    person = bob()
    code, _, err = in_process(
        tmp_path, server, person, capsys, "auth", "login", "--browser", "--insecure-storage"
    )
    assert code == 0, err
    first = stored(tmp_path)
    code, out, err = in_process(
        tmp_path,
        server,
        person,
        capsys,
        "auth",
        "token",
        "create",
        "--name",
        "ci",
        "--scope",
        "tokens:read",
        "--json",
    )
    assert code == 0, err
    token_id = json.loads(out)["token"]["id"]
    age_sessions(server)
    pages_before = len(person.pages)

    # (a person at the terminal: not --json, which is for agents)
    code, out, err = in_process(
        tmp_path, server, person, capsys, "auth", "token", "rotate", "--id", token_id
    )
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("kt_live_")  # the retry went through
    assert "needs a stronger or more recent sign-in" in err
    # one browser step-up: a fresh password (prompt=login / max_age) and the code
    assert person.pages[pages_before:][:2] == ["login", "mfa"]
    asked = person.authorizations[-1]
    if "request_uri" not in asked:  # not pushed (RFC 9126): the request is in the URL
        assert (asked["acr_values"], asked["max_age"]) == (MFA_ACR, "300")
        assert "login" in asked["prompt"].split()
    # the session kept is the new sign-in's, and its ID token showed the level asked for
    after = stored(tmp_path)
    assert after.access_token != first.access_token
    assert after.acr == MFA_ACR
    assert after.auth_time is not None and after.auth_time > time.time() - 120


def test_a_scope_the_provider_does_not_offer_is_not_asked_for(tmp_path, server, capsys):
    person = bob()  # a member: no gateways:write, and kt-devserver's consent cannot add it
    code, _, err = in_process(
        tmp_path, server, person, capsys, "auth", "login", "--browser", "--insecure-storage"
    )
    assert code == 0, err
    signed_in = len(person.authorizations)
    code, out, err = in_process(
        tmp_path, server, person, capsys,
        "auth", "token", "create", "--name", "gw", "--scope", "gateways:write", "--json",
    )  # fmt: skip
    assert code == 1, err
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert (error["code"], error["required_scope"]) == ("auth.scope_not_allowed", "gateways:write")
    assert "so no new consent can add it" in error["message"]
    assert out == "" and len(person.authorizations) == signed_in  # no sign-in started


# --- insufficient_scope at an API whose provider grants what is asked (RFC 6750 §3.1) -----------

INSUFFICIENT = Reply(
    403,
    json.dumps({"error": {"code": "auth.insufficient_scope", "message": "needs tokens:write"}}),
    headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="tokens:write"'},
)
CREATED = json_reply(
    {"token": {"id": "tok_new", "name": "x", "scopes": ["tokens:read"]}, "secret": "kt_live_new"},
    201,
)


@pytest.fixture
def provider() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


@pytest.fixture
def api() -> Iterator[HostileAPI]:
    server = HostileAPI().start()
    yield server
    server.stop()


def at_provider(tmp_path: Path, provider: HostileAS, api: HostileAPI, capsys, *args: str):
    app = App(
        env={
            "KEEPTRUSTS_CONFIG_DIR": str(tmp_path / "cfg"),
            "KEEPTRUSTS_API_URL": api.url,
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        },
        interactive=lambda: True,
        opener=provider.browser,
    )
    code = main(list(args), obj=app)
    out, err = capsys.readouterr()
    return code, out, err


def signed_in_at_provider(tmp_path, provider, api, capsys) -> str:
    provider.behaviour.grants_scopes = (  # and grants what is asked for, no more
        "openid", "profile", "email", "offline_access", "tokens:read", "tokens:write",
    )  # fmt: skip
    code, _, err = at_provider(
        tmp_path, provider, api, capsys,
        "auth", "login", "--browser", "--issuer", provider.issuer, "--client-id",
        provider.client_id, "--scope", "openid offline_access tokens:read", "--insecure-storage",
    )  # fmt: skip
    assert code == 0, err
    return stored(tmp_path).access_token


def bearer_of(seen: Seen) -> str:
    return {k.lower(): v for k, v in seen.headers.items()}["authorization"]


def test_insufficient_scope_asks_for_every_scope_it_had_and_the_one_required(
    tmp_path, provider, api, capsys
):
    first = signed_in_at_provider(tmp_path, provider, api, capsys)
    api.routes[("POST", "/v1/auth/tokens")] = lambda seen: (
        INSUFFICIENT if bearer_of(seen) == f"Bearer {first}" else CREATED
    )
    code, out, err = at_provider(
        tmp_path, provider, api, capsys,
        "auth", "token", "create", "--name", "x", "--scope", "tokens:read",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "kt_live_new"
    asked = [seen.query["scope"].split() for seen in provider.calls("GET", "/authorize")]
    assert len(asked) == 2  # the sign-in, and one more for the scope
    assert asked[1][: len(asked[0])] == asked[0]  # nothing it had is dropped
    assert "tokens:write" in asked[1]
    assert api.calls().count("POST /v1/auth/tokens") == 2
    assert stored(tmp_path).scopes == tuple(asked[1])


def test_an_insufficient_scope_that_would_loop_stops_after_one_retry(
    tmp_path, provider, api, capsys
):
    signed_in_at_provider(tmp_path, provider, api, capsys)
    api.routes[("POST", "/v1/auth/tokens")] = INSUFFICIENT  # whatever the token: never enough
    code, out, err = at_provider(
        tmp_path, provider, api, capsys,
        "auth", "token", "create", "--name", "x", "--scope", "tokens:read", "--json",
    )  # fmt: skip
    # --json: nobody to sign in, so the way on is the command to ask for the scopes
    assert code == 1, err
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert error["required_scope"] == "tokens:write"
    assert shlex.split(error["hint"].removeprefix("run: ")) == [
        "kt", "auth", "login", "--browser", "--start", "--scope",
        "openid offline_access tokens:read tokens:write",
    ]  # fmt: skip
    assert len(provider.calls("GET", "/authorize")) == 1 and out == ""

    code, out, err = at_provider(
        tmp_path, provider, api, capsys,
        "auth", "token", "create", "--name", "x", "--scope", "tokens:read",
    )  # fmt: skip
    assert code == 1, err
    assert "still, after signing in again for tokens:write" in err
    assert len(provider.calls("GET", "/authorize")) == 2  # one more sign-in, then the error
    assert api.calls().count("POST /v1/auth/tokens") == 3  # (the --json run's one, then two)


def test_without_a_person_the_step_up_is_handed_over_and_completes(tmp_path, server):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    person = bob()
    started = kt("auth", "login", "--browser", "--start", "--insecure-storage", "--json", env=env)
    assert started.code == 0, started.stderr
    person.sign_in(started.json()["sign_in_url"])
    done = kt("auth", "login", "--complete", started.json()["handle"], "--json", env=env)
    assert done.code == 0, done.stderr
    created = kt(
        "auth", "token", "create", "--name", "ci", "--scope", "tokens:read", "--json", env=env
    )
    assert created.code == 0, created.stderr
    token_id = created.json()["token"]["id"]
    age_sessions(server)

    rotate = ("auth", "token", "rotate", "--id", token_id, "--json")
    r = kt(*rotate, env=env)  # no terminal: nobody to sign in
    assert r.code == 4, r.stderr
    assert r.stdout == ""
    error = r.error()
    assert (error["code"], error["exit_code"]) == ("auth.mfa_required", 4)
    assert (error["acr_values"], error["max_age"]) == (MFA_ACR, 300)
    step_up: dict[str, Any] = error["step_up"]
    assert step_up["sign_in_url"].startswith("http://127.0.0.1:")
    assert error["hint"] == f"run: {step_up['complete_command']}"
    assert step_up["complete_command"] == f"kt auth login --complete {step_up['handle']}"

    # the agent gives its person the link, runs the printed command, and retries
    person.sign_in(step_up["sign_in_url"])
    asked = person.authorizations[-1]
    if "request_uri" not in asked:
        assert (asked["acr_values"], asked["max_age"]) == (MFA_ACR, "300")
        assert "login" in asked["prompt"].split()
    finished = kt(*shlex.split(error["hint"].removeprefix("run: "))[1:], "--json", env=env)
    assert finished.code == 0, finished.stderr
    r = kt(*rotate, env=env)
    assert r.code == 0, r.stderr
    assert r.json()["revoked"]["id"] == token_id


def test_an_api_token_without_the_scope_says_which(tmp_path, server):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    assert password_login(env, ALICE, "--insecure-storage").code == 0
    read_only = create_token(env, "ro", "default", scope="tokens:read")
    r = kt(
        "auth", "token", "create", "--name", "x", "--scope", "tokens:read", "--json",
        env={**env, "KEEPTRUSTS_API_TOKEN": read_only},
    )  # fmt: skip
    assert r.code == 1, r.stderr
    error = r.error()
    assert error["code"] == "auth.insufficient_scope"
    assert error["required_scope"] == "tokens:write"


def test_a_password_session_answers_the_challenge_with_the_code_prompt(tmp_path, server):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    first = password_login(env, BOB, "--insecure-storage", "--json")
    assert first.code == 4
    r = kt(
        *shlex.split(first.error()["hint"].removeprefix("run: "))[1:],
        env=env,
        input=totp.code(demo.BOB_TOTP_SECRET) + "\n",
    )
    assert r.code == 0, r.stderr
    created = kt(
        "auth", "token", "create", "--name", "ci", "--scope", "tokens:read", "--json", env=env
    )
    token_id = created.json()["token"]["id"]
    age_sessions(server)
    # the person at the terminal gets the code prompt for the 401 step-up, and kt retries once
    app = App(env=env, interactive=lambda: True)
    code = totp.code(demo.BOB_TOTP_SECRET, time.time() + 30)  # the next code: each is good once
    result = CliRunner().invoke(
        cli, ["auth", "token", "rotate", "--id", token_id], obj=app, input=code + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "needs multi-factor authentication" in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("kt_live_")


def test_a_dpop_session_stays_dpop_bound_through_its_step_up(tmp_path, server, capsys):
    person = bob()
    code, _, err = in_process(
        tmp_path, server, person, capsys,
        "auth", "login", "--browser", "--dpop", "--insecure-storage",
    )  # fmt: skip
    assert code == 0, err
    first = stored(tmp_path)
    assert first.dpop_key is not None
    code, out, err = in_process(
        tmp_path, server, person, capsys,
        "auth", "token", "create", "--name", "ci", "--scope", "tokens:read", "--json",
    )  # fmt: skip
    assert code == 0, err
    age_sessions(server)
    code, out, err = in_process(
        tmp_path,
        server,
        person,
        capsys,
        "auth",
        "token",
        "rotate",
        "--id",
        json.loads(out)["token"]["id"],
    )
    assert code == 0, err  # the stepped-up token, DPoP-bound, was sent with its proof
    after = stored(tmp_path)
    assert after.access_token != first.access_token
    assert after.dpop_key is not None and after.dpop_key != first.dpop_key
