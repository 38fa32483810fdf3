"""`kt auth login --dpop` against a provider that does DPoP badly or strictly (RFC 9449): a
Bearer token for a DPoP token request is refused and nothing is kept (§5); a provider that
changes its nonce without saying so, mid-sign-in and mid-session, is answered with exactly one
retry per refusal at the token endpoint, UserInfo and the API (§8, §9), never a loop."""

from __future__ import annotations

from pathlib import Path

from .conftest import Box
from .hostile_as import CLIENT_ID, HostileAS

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def device_login(box: Box) -> object:
    return box.kt(
        "auth", "login", "--device", "--dpop", "--issuer", box.server.issuer,
        "--client-id", CLIENT_ID, "--insecure-storage", "--json",
    )  # fmt: skip


def test_a_bearer_token_for_a_dpop_request_is_refused(box: Box) -> None:
    before = box.snapshot()
    result = device_login(box)
    assert result.code == 7, result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    message = result.error()["message"]  # type: ignore[attr-defined]
    assert "Bearer token" in message and "not bound" in message
    assert box.snapshot() == before  # the earlier session is kept as it was
    (poll,) = box.server.token_calls(DEVICE_GRANT)
    assert poll.headers.get("DPoP", "").count(".") == 2  # the request did carry a proof


def test_a_nonce_changed_mid_session_costs_one_retry_each_time(
    hostile_as: HostileAS, tmp_path: Path
) -> None:
    box = Box(tmp_path, hostile_as, api_url=hostile_as.issuer)
    hostile_as.reset().dpop_nonce_every = 1  # a new nonce after every proof it accepted
    login = device_login(box)
    assert login.code == 0, login.stderr  # type: ignore[attr-defined]
    assert login.json()["dpop_jkt"]  # type: ignore[attr-defined]
    # the first poll had no nonce, and the nonce each later request held had been used up
    assert hostile_as.dpop_refusals == ["/token", "/userinfo", "/v1/auth/whoami"]
    assert len(hostile_as.token_calls(DEVICE_GRANT)) == 2
    assert len(hostile_as.calls("GET", "/userinfo")) == 2
    assert len(hostile_as.calls("GET", "/v1/auth/whoami")) == 2

    hostile_as.dpop_refusals.clear()
    whoami = box.kt("auth", "whoami")
    assert whoami.code == 0, whoami.stderr
    assert hostile_as.dpop_refusals == ["/v1/auth/whoami"]
    hostile_as.dpop_refusals.clear()
    refreshed = box.kt("auth", "refresh", "--json")
    assert refreshed.code == 0, refreshed.stderr
    assert hostile_as.dpop_refusals[0] == "/token"
    (refresh, again) = hostile_as.token_calls("refresh_token")
    assert refresh.form["refresh_token"] == again.form["refresh_token"]  # not spent by it
    for seen in hostile_as.calls("GET", "/v1/auth/whoami"):
        assert seen.headers["Authorization"].startswith("DPoP at-")
