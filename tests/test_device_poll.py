"""RFC 8628 polling with a fake clock: no real time passes (SECURITY.md DV-01…DV-04)."""

from __future__ import annotations

import httpx2
import pytest

from kt_login.errors import NetworkError, OAuthError, ServerError, ValidationFailed
from kt_login.flows.device import DeviceAuthorization, parse_device_authorization, poll

ISSUER = "https://as.example"
TOKENS = {"access_token": "at", "token_type": "Bearer", "expires_in": 600}


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


class Server:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.posts: list[httpx2.Request] = []

    def send(self, request: httpx2.Request) -> httpx2.Response:
        self.posts.append(request)
        answer = self.answers.pop(0) if self.answers else "authorization_pending"
        if isinstance(answer, Exception):
            raise answer
        if answer == "ok":
            return httpx2.Response(200, json=TOKENS)
        return httpx2.Response(400, json={"error": answer})


def auth(interval=5.0, expires_in=600.0) -> DeviceAuthorization:
    return DeviceAuthorization(
        device_code="dc-CANARY",
        user_code="BCDF-GHJK",
        verification_uri=ISSUER + "/device",
        verification_uri_complete=None,
        expires_in=expires_in,
        interval=interval,
    )


def run(server, clock, **kw):
    return poll(
        auth(**kw),
        token_endpoint=ISSUER + "/token",
        client_id="kt-cli",
        send=server.send,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )


def test_dv01_pending_slow_down_slow_down_pending_success():
    clock, server = (
        Clock(),
        Server("authorization_pending", "slow_down", "slow_down", "authorization_pending", "ok"),
    )
    assert run(server, clock).access_token == "at"
    # a wait of `interval` before the first poll, then between polls: 5, 10, 15, 15
    assert clock.sleeps == [5, 5, 10, 15, 15]
    assert len(server.posts) == 5
    form = server.posts[0].content.decode()
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code" in form


@pytest.mark.parametrize("error", ["access_denied", "expired_token", "invalid_grant", "bogus"])
def test_dv01_stops_on_other_errors(error):
    clock, server = Clock(), Server("authorization_pending", error, "ok")
    with pytest.raises(OAuthError) as info:
        run(server, clock)
    assert len(server.posts) == 2  # nothing after the error
    assert info.value.exit_code == 3


def test_dv01_connection_failure_doubles_the_next_wait():
    boom = NetworkError("down")
    clock, server = Clock(), Server("authorization_pending", boom, boom, "ok")
    run(server, clock)
    assert clock.sleeps == [5, 5, 10, 20]


@pytest.mark.parametrize("interval", [0, -3, "5", None, True])
def test_dv01_nonsense_interval_means_five_seconds(interval):
    body = {
        "device_code": "d",
        "user_code": "ABCD",
        "verification_uri": ISSUER + "/device",
        "expires_in": 600,
    }
    if interval is not None:
        body["interval"] = interval
    assert parse_device_authorization(body, ISSUER).interval == 5.0


def test_dv02_stops_at_expires_in_without_restarting():
    clock, server = Clock(), Server()  # pending forever
    with pytest.raises(OAuthError) as info:
        run(server, clock, expires_in=30.0)
    assert info.value.error == "expired_token"
    assert clock.now - 1000.0 <= 30.0 + 5.0
    assert len(server.posts) == 6


def test_server_error_is_not_retried():
    clock = Clock()

    def send(request):
        return httpx2.Response(502, content=b"<html>secret-body")

    with pytest.raises(ServerError) as info:
        poll(
            auth(),
            token_endpoint=ISSUER + "/token",
            client_id="kt-cli",
            send=send,
            sleep=clock.sleep,
            monotonic=clock.monotonic,
        )
    assert "secret-body" not in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("verification_uri", "javascript:alert(1)"),
        ("verification_uri", "https://evil.example/device"),
        ("verification_uri", "http://as.example/device"),
        ("verification_uri_complete", "https://as.example@evil.example/device?user_code=X"),
        ("user_code", "\x1b]8;;http://evil\x07CODE"),
        ("user_code", "A" * 100),
    ],
)
def test_dv03_unsafe_values_refused(field, value):
    body = {
        "device_code": "d",
        "user_code": "BCDF-GHJK",
        "verification_uri": ISSUER + "/device",
        "expires_in": 600,
        field: value,
    }
    with pytest.raises(ValidationFailed):
        parse_device_authorization(body, ISSUER)


def test_dv04_device_code_not_in_repr():
    assert "dc-CANARY" not in repr(auth())
