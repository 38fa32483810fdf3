"""Refresh and storage faults with the real `kt` process and the hostile provider.

A good session (from a real sign-in against the hostile AS) is made to expire soon; `kt auth
whoami` then refreshes it at the provider's token endpoint (the hostile AS is the API as well as
its issuer, and serves a trivial /v1/auth/whoami: the `api_box` machine). Afterwards the user
is either still signed in or told to sign in again — never left with a corrupt or half-written
store.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.kt_process import Result

from .conftest import Box
from .hostile_as import CLIENT_ID, DELETE

WHOAMI = ("auth", "whoami", "--json")


@pytest.fixture
def box(api_box: Box) -> Box:
    """Every machine here is signed in at the hostile AS as the API's own issuer."""
    return api_box


def api_env(box: Box) -> dict[str, str]:
    """The environment of a command that uses the session: its API is the issuer."""
    return {**box.env, "KEEPTRUSTS_API_URL": box.server.issuer}


def whoami(box: Box) -> Result:
    from tests.kt_process import kt

    return kt(*WHOAMI, env=api_env(box))


def stored(box: Box) -> dict[str, object] | None:
    if not box.credentials.exists():
        return None
    return json.loads(box.credentials.read_bytes())  # never half-written: this must parse


def no_temp_files(box: Box) -> bool:
    return not [p for p in box.config.rglob("*.tmp")]


def one_line_error(result: Result) -> dict[str, object]:
    assert "Traceback" not in result.stderr, result.stderr
    error = result.error()
    assert "\n" not in str(error["message"])
    return error


def test_LC_01_oidcc_client_test_refresh_token_happy_path(box: Box) -> None:
    old = box.expire_soon()
    result = whoami(box)
    assert result.code == 0, result.stderr
    assert len(box.server.token_calls("refresh_token")) == 1
    new = stored(box)
    assert new is not None and new["refresh_token"] != old["refresh_token"]
    assert new["subject"] == old["subject"]
    (seen,) = box.server.calls("GET", "/v1/auth/whoami")
    assert seen.headers["Authorization"] == f"Bearer {new['access_token']}"  # HY-03: header


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param({"iss": "https://evil.example"}, id="iss"),
        pytest.param({"sub": "user-2"}, id="sub"),
        pytest.param({"aud": "someone-else"}, id="aud"),
        pytest.param({"aud": [CLIENT_ID, "untrusted"], "azp": CLIENT_ID}, id="aud-extra"),
        pytest.param({"azp": "someone-else"}, id="azp"),
        pytest.param({"auth_time": 1}, id="auth_time-earlier"),
        pytest.param({"exp": DELETE}, id="exp-missing"),
    ],
)
def test_ID_06_oidcc_client_test_refresh_token_invalid(
    box: Box, mutation: dict[str, object]
) -> None:
    """A refreshed ID token naming another sign-in is refused and the new access token is never
    used. The provider has already rotated the stored refresh token, so the session is not kept
    with it (issue 10, case 6): the tokens the refresh brought are revoked, the session is
    cleared, and the person is told to sign in again (exit 3)."""
    old = box.expire_soon()
    box.server.behaviour.refresh_claims.update(mutation)
    result = whoami(box)
    assert result.code == 3, result.stderr
    error = one_line_error(result)
    assert "ID token is not valid" in str(error["message"])
    assert "kt auth login" in str(error.get("hint", ""))
    assert len(box.server.token_calls("refresh_token")) == 1
    assert not box.server.calls("GET", "/v1/auth/whoami")
    assert stored(box) is None and no_temp_files(box)
    revoked = [r.form["token"] for r in box.server.calls("POST", "/revoke")]
    assert len(revoked) == 2 and revoked[0].startswith("rt-") and revoked[1].startswith("at-")
    assert old["refresh_token"] not in revoked and old["access_token"] not in revoked


def test_LC_04_invalid_grant_clears_and_says_sign_in_again(box: Box) -> None:
    doc = box.expire_soon()
    box.server._spent_refresh.add(str(doc["refresh_token"]))  # the AS saw it used already
    result = whoami(box)
    assert result.code == 3, result.stderr
    error = one_line_error(result)
    assert "kt auth login" in str(error.get("hint", ""))
    assert len(box.server.token_calls("refresh_token")) == 1
    assert stored(box) is None and no_temp_files(box)


# --------------------------------------------------------------------------- SIGKILL mid-refresh


def _start(box: Box, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kt_login", *args],
        env=api_env(box),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("reuse_detection", [True, False], ids=["reuse-detection", "grace"])
def test_ST_05_LC_03_sigkill_while_the_refresh_is_in_flight(
    box: Box, reuse_detection: bool
) -> None:
    """kt is killed while the provider holds its refresh request: the store keeps the old
    session, intact; the next command either works (AS with a grace period) or says sign in
    again (AS with reuse detection), and leaves no corrupt store."""
    box.expire_soon()
    b = box.server.behaviour
    b.reuse_detection = reuse_detection
    b.refresh_hold = threading.Event()
    before = box.snapshot()
    proc = _start(box, *WHOAMI)
    try:
        assert b.refresh_arrived.wait(30), "kt never asked for a refresh"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        b.refresh_hold.set()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert box.snapshot() == before  # the old session, whole
    b.refresh_hold = None
    result = whoami(box)
    if reuse_detection:
        assert result.code == 3, result.stderr
        assert "kt auth login" in str(one_line_error(result).get("hint", ""))
        assert stored(box) is None
    else:
        assert result.code == 0, result.stderr
        assert stored(box) is not None
    assert no_temp_files(box)


def test_ST_05_LC_03_sigkill_after_the_refresh_was_saved(box: Box) -> None:
    """Killed while using the new access token: the new session is stored whole and works."""
    old = box.expire_soon()
    b = box.server.behaviour
    b.whoami_hold = threading.Event()
    proc = _start(box, *WHOAMI)
    try:
        assert b.whoami_arrived.wait(30), "kt never called whoami"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        b.whoami_hold.set()
        proc.communicate()
    new = stored(box)
    assert new is not None and new["refresh_token"] != old["refresh_token"]
    assert no_temp_files(box)
    b.whoami_hold = None
    result = whoami(box)
    assert result.code == 0, result.stderr
    assert len(box.server.token_calls("refresh_token")) == 1  # no second refresh was needed


# --------------------------------------------------------------------------- write failure


def _limit_file_size() -> None:
    # A real write failure with no LD_PRELOAD: past RLIMIT_FSIZE, write() fails with EFBIG
    # (CPython ignores SIGXFSZ), much like ENOSPC on a full disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


def test_LC_03_write_failure_after_a_successful_refresh(box: Box) -> None:
    """The provider rotated the refresh token but kt cannot save it: non-zero exit with
    're-login required', no second refresh with the spent token, the store as it was (the old
    file intact, no temp file); the next command says sign in again."""
    box.expire_soon()
    before = box.snapshot()
    proc = subprocess.run(
        [sys.executable, "-m", "kt_login", *WHOAMI],
        env=api_env(box),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_file_size,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert result.code == 1, result.stderr
    error = one_line_error(result)
    assert "could not be saved" in str(error["message"])
    assert "kt auth login" in str(error.get("hint", ""))
    assert len(box.server.token_calls("refresh_token")) == 1
    assert not box.server.calls("GET", "/v1/auth/whoami")
    assert box.snapshot() == before
    result = whoami(box)
    assert result.code == 3, result.stderr  # the old refresh token is spent (reuse detection)
    assert stored(box) is None and no_temp_files(box)


# --------------------------------------------------------------------------- unsafe files


def test_ST_05_world_readable_credentials_are_refused(box: Box) -> None:
    os.chmod(box.credentials, 0o644)
    before = box.snapshot()
    result = whoami(box)
    assert result.code == 1, result.stderr
    error = one_line_error(result)
    assert "mode 0644" in str(error["message"])
    assert box.snapshot() == before  # not silently repaired, not deleted
    assert not box.server.requests  # nothing sent with a token others could read


def test_ST_05_symlinked_credentials_are_refused(box: Box, tmp_path: Path) -> None:
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_bytes(box.credentials.read_bytes())
    elsewhere.chmod(0o600)
    box.credentials.unlink()
    box.credentials.symlink_to(elsewhere)
    before = box.snapshot()
    result = whoami(box)
    assert result.code == 1, result.stderr
    assert "symbolic link" in str(one_line_error(result)["message"])
    assert box.snapshot() == before
    assert not box.server.requests


# --------------------------------------------------------------------------- revocation


def test_LC_05_revocation_503_is_reported_not_revoked(box: Box) -> None:
    box.server.behaviour.revocation_status = 503
    result = box.kt("auth", "logout", "--json")
    assert result.code == 5, result.stderr
    error = one_line_error(result)
    assert "could not revoke" in str(error["message"])
    doc = result.json()
    assert doc["logged_out"][0]["server_revoked"] is False
    revokes = box.server.calls("POST", "/revoke")
    assert revokes and all(r.form.get("client_id") == CLIENT_ID for r in revokes)
    assert {r.form.get("token_type_hint") for r in revokes} >= {"refresh_token"}
