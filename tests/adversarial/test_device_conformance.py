"""DV-06: the device grant's ID token gets the same checks as the code flow's (the §C suite
re-run through `kt auth login --device`); with no nonce in RFC 8628, iat must be fresh.

The hostile provider approves at once (interval 1 s), so each case costs one poll."""

from __future__ import annotations

import time

import pytest

from .conftest import Box
from .hostile_as import CLIENT_ID, DELETE


def device_login(box: Box) -> object:
    return box.kt(
        "auth", "login", "--device", "--issuer", box.server.issuer,
        "--client-id", CLIENT_ID, "--insecure-storage", "--json",
    )  # fmt: skip


CASES = [
    pytest.param("id_sign", "rsa-evil", id="ID-03-invalid-sig-rs256"),
    pytest.param("id_sign", "none", id="ID-03-null-alg"),
    pytest.param("id_sign", "hs256-public-key", id="ID-03-hs256-public-key"),
    pytest.param("iss", "https://evil.example", id="ID-04-invalid-iss"),
    pytest.param("aud", "someone-else", id="ID-04-invalid-aud"),
    pytest.param("aud", [CLIENT_ID, "untrusted"], id="ID-04-secondary-aud"),
    pytest.param("sub", DELETE, id="ID-04-missing-sub"),
    pytest.param("exp", -400, id="ID-04-expired-exp"),
    pytest.param("iat", -7 * 86400, id="ID-04-iat-week-old"),
]


@pytest.mark.parametrize(("name", "value"), CASES)
def test_DV_06_device_id_token_refused(box: Box, name: str, value: object) -> None:
    b = box.server.behaviour
    if name == "id_sign":
        b.id_sign = str(value)
    elif name in ("exp", "iat"):
        assert isinstance(value, int)
        b.id_claims[name] = int(time.time()) + value
    else:
        b.id_claims[name] = value
    before = box.snapshot()
    result = device_login(box)
    assert result.code == 7, result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    assert "ID token is not valid" in result.error()["message"]  # type: ignore[attr-defined]
    assert len(box.server.token_calls("urn:ietf:params:oauth:grant-type:device_code")) == 1
    assert box.snapshot() == before
    assert not box.opener_calls  # the device flow never launches a browser


def test_DV_06_device_sign_in_accepted(box: Box) -> None:
    result = device_login(box)
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    assert result.json()["identity"]["subject"] == "user-1"  # type: ignore[attr-defined]
