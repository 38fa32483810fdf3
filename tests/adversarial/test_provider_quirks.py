"""Issue 10: providers that conform to the standards but not to kt's habits, played by the hostile
provider and signed in to with the real `kt` process. Each test asserts what the person sees (the
message and exit code), what is stored, and what was revoked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.kt_process import Result, kt

from .conftest import Box
from .hostile_as import CLIENT_ID, DELETE, EMAIL, SUBJECT

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def stored(box: Box) -> dict[str, Any] | None:
    if not box.credentials.exists():
        return None
    doc: dict[str, Any] = json.loads(box.credentials.read_bytes())
    return doc


def api_env(box: Box) -> dict[str, str]:
    """A command that uses the session: the hostile provider also serves /v1/auth/whoami."""
    return {**box.env, "KEEPTRUSTS_API_URL": box.server.issuer}


def revoked(box: Box) -> list[str]:
    """The tokens sent to the revocation endpoint, in order."""
    return [r.form.get("token", "") for r in box.server.calls("POST", "/revoke")]


def device_login(box: Box, *extra: str) -> Result:
    return box.kt(
        "auth", "login", "--device", "--issuer", box.server.issuer,
        "--client-id", CLIENT_ID, "--insecure-storage", "--json", *extra,
    )  # fmt: skip


def human_login(box: Box, *extra: str) -> Result:
    """A browser sign-in with the human-readable output (no --json)."""
    return box.kt(
        "auth", "login", "--browser", "--issuer", box.server.issuer,
        "--client-id", CLIENT_ID, "--insecure-storage", "--timeout", "20", *extra,
    )  # fmt: skip


# --------------------------------------------------------------------------- 1. no email claim

NO_EMAIL = [
    pytest.param(
        {"preferred_username": "jdoe", "name": "Jane Doe"}, "jdoe", id="preferred_username"
    ),
    pytest.param({"name": "Jane Doe"}, "Jane Doe", id="name"),
    pytest.param({}, SUBJECT, id="sub"),
    pytest.param({"preferred_username": "j\x1b[31mdoe"}, "j\\x1b[31mdoe", id="cleaned"),
]


@pytest.mark.parametrize(("claims", "shown"), NO_EMAIL)
def test_1_no_email_names_the_person_by_the_next_claim(
    box: Box, claims: dict[str, str], shown: str
) -> None:
    """Only `openid` granted: no email in the ID token or userinfo. The login line, status and
    whoami name the person by preferred_username, name or sub, cleaned for the terminal."""
    b = box.server.behaviour
    b.id_claims.update({"email": DELETE, **claims})
    b.userinfo_claims.update({"email": DELETE})
    b.whoami_user.update({"email": DELETE})
    result = human_login(box)
    assert result.code == 0, result.stderr
    assert f"as {shown}. Session stored in" in result.stdout, result.stdout
    assert "as ." not in result.stdout and "\x1b" not in result.stdout
    doc = stored(box)
    assert doc is not None and doc["user_email"] == "" and doc["display_name"] == shown

    status = box.kt("auth", "status")
    assert status.code == 0, status.stderr
    assert f"Account: {shown}\n" in status.stdout and "Account: ?" not in status.stdout
    assert box.kt("auth", "status", "--json").json()["user"]["name"] == shown

    who = kt("auth", "whoami", env=api_env(box))
    assert who.code == 0, who.stderr
    assert f"as {shown}" in who.stdout and "as ?" not in who.stdout


def test_1_email_wins_when_there_is_one(box: Box) -> None:
    box.server.behaviour.id_claims.update({"preferred_username": "jdoe"})
    result = human_login(box)
    assert result.code == 0, result.stderr
    assert f"as {EMAIL}. Session stored in" in result.stdout
