"""Issue 10 case 8: the API is not the issuer. A session records the Keeptrusts API it was signed
in for and the provider that issued its tokens apart; the issuer is remembered only when the
person named one, and the default issuer follows the API URL.

Played with the real `kt` process: kt-devserver (a real Keeptrusts API) or a hostile AS as the
API, and the hostile AS (tests/adversarial/hostile_as.py) as a foreign OpenID provider. Every
hint kt prints for a session of another API is run as printed."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.devserver import DevServer
from tests.kt_process import Result, kt

from .conftest import Box
from .hostile_as import CLIENT_ID, EMAIL, SUBJECT, HostileAS


@pytest.fixture(scope="module")
def other_as() -> Iterator[HostileAS]:
    """A second provider (and API): where KEEPTRUSTS_API_URL is moved to."""
    server = HostileAS().start()
    yield server
    server.stop()


def stored(box: Box) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(box.credentials.read_bytes())
    return doc


def moved(box: Box, api_url: str) -> dict[str, str]:
    """The person points KEEPTRUSTS_API_URL at another server."""
    return {**box.env, "KEEPTRUSTS_API_URL": api_url}


def run_hint(hint: str, env: dict[str, str]) -> Result:
    """The command a hint prints, run as printed (`run: kt …`, possibly after an explanation)."""
    command = shlex.split(hint.split("run: ", 1)[1])
    assert command[:2] == ["kt", "auth"], hint
    return kt(*command[1:], env=env)


def whoami_asked(server: HostileAS) -> int:
    return len(server.calls("GET", "/v1/auth/whoami"))


def account_described(server: HostileAS) -> int:
    """whoami calls with a credential: the API describing an account. (A sign-in with no issuer
    named also asks whoami without one, for the 401's RFC 9728 resource_metadata.)"""
    return len([c for c in server.calls("GET", "/v1/auth/whoami") if "Authorization" in c.headers])


def test_8_foreign_issuer_sign_in_keeps_the_api_url(
    hostile_as: HostileAS, devserver: DevServer, tmp_path: Path
) -> None:
    """--issuer/--client-id at a provider that is not the API (kt-devserver here): the session
    records the API URL and the issuer apart, status shows both, whoami names the person from
    the sign-in and says the API was not asked — nothing goes to <issuer>/v1/auth/whoami."""
    box = Box(tmp_path, hostile_as, api_url=devserver.url)
    hostile_as.reset()
    login = box.login()
    assert login.code == 0, login.stderr
    doc = login.json()
    assert doc["api_url"] == devserver.url and doc["identity"]["issuer"] == hostile_as.issuer
    session = stored(box)
    assert session["api_url"] == devserver.url and session["issuer"] == hostile_as.issuer
    assert session["organization"] == "" and session["subject"] == SUBJECT

    status = box.kt("auth", "status")
    assert status.code == 0, status.stderr
    assert f"API URL: {devserver.url}\n" in status.stdout
    assert f"Identity: {SUBJECT} at {hostile_as.issuer} (client {CLIENT_ID})" in status.stdout
    assert "Warning" not in status.stdout

    who = box.kt("auth", "whoami")
    assert who.code == 0, who.stderr
    assert who.stdout.startswith(f"Signed in at {hostile_as.issuer} as {EMAIL} (subject {SUBJECT}")
    assert f"API: {devserver.url} was not asked" in who.stdout
    doc = box.kt("auth", "whoami", "--json").json()
    assert doc["api_asked"] is False and doc["api_url"] == devserver.url
    assert doc["issuer"] == hostile_as.issuer and doc["user"]["email"] == EMAIL
    assert whoami_asked(hostile_as) == 0  # the old bug: <issuer>/v1/auth/whoami


def test_8_the_login_line_names_the_provider_and_the_api(
    hostile_as: HostileAS, devserver: DevServer, tmp_path: Path
) -> None:
    box = Box(tmp_path, hostile_as, api_url=devserver.url)
    hostile_as.reset()
    login = box.kt(
        "auth", "login", "--browser", "--issuer", hostile_as.issuer, "--client-id", CLIENT_ID,
        "--insecure-storage", "--timeout", "20",
    )  # fmt: skip
    assert login.code == 0, login.stderr
    assert login.stdout == (
        f"Signed in at {hostile_as.issuer} as {EMAIL}. Session stored in: file (plaintext); "
        f"API commands use {devserver.url}.\n"
    )


def test_8_an_api_that_refuses_the_providers_token_says_so_without_a_loop(
    hostile_as: HostileAS, devserver: DevServer, tmp_path: Path
) -> None:
    """API commands use the API URL. kt-devserver does not accept the foreign provider's token:
    kt says so, naming both, keeps the session, and the hint signs in at the API's own issuer
    (not at the same provider again, which would bring the same refusal)."""
    box = Box(tmp_path, hostile_as, api_url=devserver.url)
    hostile_as.reset()
    assert box.login().code == 0
    tokens = box.kt("auth", "token", "list", "--json")
    assert tokens.code == 3, tokens.stderr
    error = tokens.error()
    assert error["message"].startswith(
        f"the Keeptrusts API at {devserver.url} does not accept this session's token, which is "
        f"from the identity provider {hostile_as.issuer} ("
    )
    assert (
        error["hint"] == f"sign in with the API itself: run: kt auth login --issuer {devserver.url}"
    )
    assert hostile_as.issuer not in error["hint"]
    assert whoami_asked(hostile_as) == 0 and not hostile_as.calls("GET", "/v1/tokens")
    assert stored(box)["issuer"] == hostile_as.issuer  # kept: the provider did not end it


def test_8_the_api_url_moves_and_the_named_issuer_is_remembered(
    hostile_as: HostileAS, devserver_factory: Callable[..., DevServer], tmp_path: Path
) -> None:
    """A session from a named issuer, then KEEPTRUSTS_API_URL points at another API: kt says the
    session is another API's; the login command it prints, run as printed, signs in at the
    issuer the person named, for the new API — after which whoami works (no loop)."""
    first, second = devserver_factory(), devserver_factory()
    box = Box(tmp_path, hostile_as, api_url=first.url)
    hostile_as.reset()
    assert box.login().code == 0
    env = moved(box, second.url)
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 3, who.stderr
    error = who.error()
    assert error["message"] == f"profile 'default' is logged in to {first.url}, not {second.url}"
    assert error["hint"] == f"run: kt auth login --browser --api-url {second.url}"

    hostile_as.requests.clear()
    again = run_hint(error["hint"], env)
    assert again.code == 0, again.stderr
    assert hostile_as.calls("GET", "/authorize")  # the named issuer, remembered
    session = stored(box)
    assert session["api_url"] == second.url and session["issuer"] == hostile_as.issuer
    who = kt("auth", "whoami", env=env)
    assert who.code == 0, who.stderr
    assert f"API: {second.url} was not asked" in who.stdout


def test_8_the_default_issuer_follows_the_api_url(
    hostile_as: HostileAS, other_as: HostileAS, tmp_path: Path
) -> None:
    """The reverse: signed in at the API's own issuer (no --issuer), then KEEPTRUSTS_API_URL
    points at another server. The issuer was not named, so it is not remembered: the printed
    login goes to the new API's issuer, not the old server, and whoami then asks that API."""
    box = Box(tmp_path, hostile_as, api_url=hostile_as.issuer)
    hostile_as.reset()
    login = box.kt(
        "auth", "login", "--browser", "--client-id", CLIENT_ID, "--insecure-storage", "--json"
    )
    assert login.code == 0, login.stderr
    session = stored(box)
    assert session["api_url"] == session["issuer"] == hostile_as.issuer
    assert account_described(hostile_as) == 1  # an API session: the API described its account
    assert whoami_asked(hostile_as) == 2  # and, first, the probe for resource metadata

    other_as.reset()
    env = moved(box, other_as.issuer)
    status = kt("auth", "status", env=env)
    assert f"API URL: {hostile_as.issuer}\n" in status.stdout
    assert f"Warning: the configured API URL is {other_as.issuer}" in status.stdout
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 3, who.stderr
    hint = who.error()["hint"]
    assert hint == f"run: kt auth login --browser --api-url {other_as.issuer}"

    hostile_as.requests.clear()
    again = run_hint(hint, env)
    assert again.code == 0, again.stderr
    assert other_as.calls("GET", "/authorize") and not hostile_as.calls("GET", "/authorize")
    session = stored(box)
    assert session["api_url"] == session["issuer"] == other_as.issuer
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    assert who.json()["api_asked"] is True and who.json()["api_url"] == other_as.issuer
    assert account_described(other_as) == 2 and whoami_asked(other_as) == 3
    assert whoami_asked(hostile_as) == 0


def test_8_a_session_stored_before_the_two_were_kept_apart_is_read(
    hostile_as: HostileAS, tmp_path: Path
) -> None:
    """Older kt stored a foreign issuer as the session's API URL. Such a session stays readable
    (status shows it, exit 0); kt treats it as a session of the API it names, and the login it
    prints replaces it for the configured API."""
    box = Box(tmp_path, hostile_as)  # generic mode: the API is https://api.invalid
    hostile_as.reset()
    assert box.login().code == 0
    old = {**stored(box), "api_url": hostile_as.issuer}
    box.credentials.write_text(json.dumps(old))
    status = box.kt("auth", "status", "--json")
    assert status.code == 0, status.stderr
    assert status.json()["api_url"] == hostile_as.issuer
    who = box.kt("auth", "whoami", "--json")
    assert who.code == 3, who.stderr
    assert who.error()["hint"] == "run: kt auth login --browser --api-url https://api.invalid"
