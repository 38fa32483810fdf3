"""RFC 8628 polling, the flow stepped by hand with a fake clock: no real time passes
(SECURITY.md DV-01…DV-04). The last tests run it through `drive` with a MockTransport."""

from __future__ import annotations

from typing import TypeVar

import httpx2
import pytest

from kt_login.errors import NetworkError, OAuthError, ServerError, ValidationFailed
from kt_login.flows import Wait, WaitingFlow, drive
from kt_login.flows.device import DeviceAuthorization, parse_device_authorization, poll
from tests.fixtures.clock import FakeClock

T = TypeVar("T")
ISSUER = "https://as.example"
TOKENS = {"access_token": "at", "token_type": "Bearer", "expires_in": 600}
START = 1000.0  # the fake clock's reading when a test begins


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


def step(flow: WaitingFlow[T], send, clock: FakeClock, waits: list[Wait] | None = None) -> T:
    """What a driver does, by hand: a Wait advances the fake clock and is answered with the
    elapsed time; a request goes to `send`, whose NetworkError is thrown into the flow."""
    started = clock.monotonic()
    try:
        effect = next(flow)
        while True:
            if isinstance(effect, Wait):
                if waits is not None:
                    waits.append(effect)
                clock.sleep(effect.seconds)
                effect = flow.send(clock.monotonic() - started)
                continue
            try:
                response = send(effect)
            except NetworkError as exc:
                effect = flow.throw(exc)
            else:
                effect = flow.send(response)
    except StopIteration as done:
        return done.value


def run(server, clock, **kw):
    return step(
        poll(auth(**kw), token_endpoint=ISSUER + "/token", client_id="kt-cli"), server.send, clock
    )


def test_dv01_pending_slow_down_slow_down_pending_success():
    clock, server = (
        FakeClock(START),
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
    clock, server = FakeClock(START), Server("authorization_pending", error, "ok")
    with pytest.raises(OAuthError) as info:
        run(server, clock)
    assert len(server.posts) == 2  # nothing after the error
    assert info.value.exit_code == 3


def test_dv01_connection_failure_doubles_the_next_wait():
    boom = NetworkError("down")
    clock, server = FakeClock(START), Server("authorization_pending", boom, boom, "ok")
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
    clock, server = FakeClock(START), Server()  # pending forever
    with pytest.raises(OAuthError) as info:
        run(server, clock, expires_in=30.0)
    assert info.value.error == "expired_token"
    assert clock.now - START <= 30.0 + 5.0
    assert len(server.posts) == 6


def test_server_error_is_not_retried():
    clock = FakeClock(START)

    def send(request):
        return httpx2.Response(502, content=b"<html>secret-body")

    with pytest.raises(ServerError) as info:
        step(poll(auth(), token_endpoint=ISSUER + "/token", client_id="kt-cli"), send, clock)
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


def test_each_wait_says_how_long_is_left_for_the_countdown():
    clock, server, waits = FakeClock(START), Server("authorization_pending", "ok"), []
    flow = poll(auth(expires_in=60.0), token_endpoint=ISSUER + "/token", client_id="kt-cli")
    step(flow, server.send, clock, waits)
    assert waits == [Wait(5.0, remaining=60.0), Wait(5.0, remaining=55.0)]


def test_a_poll_that_would_start_after_expiry_is_not_sent():
    """Slow answers count too: the flow never polls once the driver's clock is past expires_in."""
    clock, posts = FakeClock(START), []

    def slow(request):
        posts.append(request)
        clock.now += 12  # each answer takes 12 s
        return httpx2.Response(400, json={"error": "authorization_pending"})

    flow = poll(auth(expires_in=30.0), token_endpoint=ISSUER + "/token", client_id="kt-cli")
    with pytest.raises(OAuthError) as info:
        step(flow, slow, clock)
    assert info.value.error == "expired_token"
    assert len(posts) == 2  # at 5 s and 22 s; the next would be at 39 s, past 30 s
    assert clock.now - START <= 30.0 + 12 + 5


def test_drive_performs_the_waits_and_reports_a_refused_connection_to_the_flow():
    clock, answers, waits = FakeClock(START), ["pending", "refused", "ok"], []

    def handler(request: httpx2.Request) -> httpx2.Response:
        answer = answers.pop(0)
        if answer == "refused":
            raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)
        if answer == "ok":
            return httpx2.Response(200, json=TOKENS)
        return httpx2.Response(400, json={"error": "authorization_pending"})

    with httpx2.Client(transport=httpx2.MockTransport(handler)) as http:
        tokens = drive(
            poll(auth(), token_endpoint=ISSUER + "/token", client_id="kt-cli"),
            http,
            sleep=clock.sleep,
            monotonic=clock.monotonic,
            on_wait=waits.append,
        )
    assert tokens.access_token == "at"
    assert clock.sleeps == [5, 5, 10]
    assert [w.remaining for w in waits] == [600, 595, 590]


def test_the_flow_by_hand_waits_polls_slows_down_and_backs_off():
    flow = poll(auth(), token_endpoint=ISSUER + "/token", client_id="kt-cli")
    assert next(flow) == Wait(5.0, remaining=600.0)
    request = flow.send(5.0)
    assert isinstance(request, httpx2.Request) and request.url == ISSUER + "/token"
    slow_down = httpx2.Response(400, json={"error": "slow_down"})
    assert flow.send(slow_down) == Wait(10.0, remaining=595.0)
    assert isinstance(flow.send(15.0), httpx2.Request)
    assert flow.throw(NetworkError("down")) == Wait(20.0, remaining=585.0)
    assert isinstance(flow.send(35.0), httpx2.Request)
    with pytest.raises(StopIteration) as done:
        flow.send(httpx2.Response(200, json=TOKENS))
    assert done.value.value.access_token == "at"


def _authorization(**members: object) -> DeviceAuthorization:
    body: dict[str, object] = {
        "device_code": "d",
        "user_code": "ABCD",
        "verification_uri": ISSUER + "/device",
        "expires_in": 86400,
        **members,
    }
    return parse_device_authorization(body, ISSUER)


@pytest.mark.parametrize("interval", [10, 61, 120, 3600])
def test_dv01_the_server_s_interval_is_waited_however_long(interval):
    """RFC 8628 §3.5: kt must not poll faster than asked (it used to cap at 60 s)."""
    authorization = _authorization(interval=interval)
    assert authorization.interval == interval and not authorization.interval_capped
    clock, waits = FakeClock(START), []
    flow = poll(authorization, token_endpoint=ISSUER + "/token", client_id="kt-cli")
    step(flow, Server("authorization_pending", "ok").send, clock, waits)
    assert [w.seconds for w in waits] == [interval, interval]


def test_dv01_a_connection_failure_never_shortens_a_long_interval():
    boom = NetworkError("down")
    clock, server = FakeClock(START), Server(boom, "ok")
    run(server, clock, interval=120.0, expires_in=3600.0)
    assert clock.sleeps == [120, 120]


@pytest.mark.parametrize("interval", [3601, 86400, 1e300, 10**400])
def test_dv01_only_an_absurd_interval_is_capped_and_flagged(interval):
    authorization = _authorization(interval=interval)
    assert authorization.interval == 3600.0 and authorization.interval_capped


@pytest.mark.parametrize("expires_in", [86401, 1e300, 10**400])
def test_nu01_an_absurd_device_code_lifetime_is_refused(expires_in):
    with pytest.raises(ServerError) as info:
        _authorization(expires_in=expires_in)
    assert "out of range" in info.value.message and info.value.exit_code == 6
