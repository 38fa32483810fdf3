"""The two loops that do a flow's I/O, `drive` (httpx2.Client) and `adrive` (httpx2.AsyncClient):
what they send back for each effect, the one transport-error mapping, the reply-size cap."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest

from kt_login.api import ApiClient, make_http_client
from kt_login.errors import NetworkError, ServerError
from kt_login.flows import Flow, Wait, WaitingFlow, adrive, drive
from kt_login.flows.discovery import discover
from kt_login.flows.transport import MAX_BYTES, MAX_REPLY
from tests.adversarial.hostile_as import HostileAS
from tests.fixtures.clock import FakeClock
from tests.kt_process import free_port


def get_twice() -> WaitingFlow[list[object]]:
    """Records what the driver answers: a response, the elapsed time, a thrown error."""
    seen: list[object] = []
    first = yield httpx2.Request("GET", "https://as.example/one")
    assert isinstance(first, httpx2.Response)
    seen.append(first.status_code)
    seen.append((yield Wait(2.5, remaining=60.0)))
    seen.append((yield Wait(4.0)))
    try:
        yield httpx2.Request("GET", "https://down.example/two")
    except NetworkError as exc:
        seen.append(exc.message)
    return seen


def handler(request: httpx2.Request) -> httpx2.Response:
    if request.url.host == "down.example":
        raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)
    return httpx2.Response(204)


def test_drive_answers_each_effect():
    clock, waits = FakeClock(), []
    with httpx2.Client(transport=httpx2.MockTransport(handler)) as http:
        seen = drive(
            get_twice(), http, sleep=clock.sleep, monotonic=clock.monotonic, on_wait=waits.append
        )
    assert seen == [
        204,
        2.5,
        6.5,
        "cannot reach the identity provider at https://down.example (connection refused)",
    ]
    assert clock.sleeps == [2.5, 4.0]
    assert waits == [Wait(2.5, remaining=60.0), Wait(4.0)]


async def test_adrive_answers_each_effect_the_same():
    clock, waits = FakeClock(), []
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        seen = await adrive(
            get_twice(), http, sleep=clock.asleep, monotonic=clock.monotonic, on_wait=waits.append
        )
    assert seen == [
        204,
        2.5,
        6.5,
        "cannot reach the identity provider at https://down.example (connection refused)",
    ]
    assert waits == [Wait(2.5, remaining=60.0), Wait(4.0)]


def test_an_error_the_flow_does_not_catch_ends_the_drive_and_closes_the_flow():
    closed: list[bool] = []

    def flow() -> Flow[None]:
        try:
            yield httpx2.Request("GET", "https://down.example/")
        finally:
            closed.append(True)

    with httpx2.Client(transport=httpx2.MockTransport(handler)) as http:
        with pytest.raises(NetworkError, match="connection refused"):
            drive(flow(), http)
    assert closed == [True]


def test_a_refused_connection_reads_the_same_from_the_api_client_and_from_a_flow():
    url = f"http://127.0.0.1:{free_port()}"
    with make_http_client() as http:
        with pytest.raises(NetworkError) as from_api:
            ApiClient(url, http).request("GET", "/v1/auth/whoami")
        with pytest.raises(NetworkError) as from_flow:
            drive(discover(url), http)
    assert (
        from_api.value.message == f"cannot reach the Keeptrusts API at {url} (connection refused)"
    )
    assert (
        from_flow.value.message
        == f"cannot reach the identity provider at {url} (connection refused)"
    )
    assert from_api.value.exit_code == from_flow.value.exit_code == 5
    assert from_api.value.hint == from_flow.value.hint


@pytest.mark.parametrize("make_client", [httpx2.Client, make_http_client])
def test_a_timeout_reads_the_same_from_the_api_client_and_from_a_flow(
    make_client: Callable[..., httpx2.Client],
):
    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    url = "https://slow.example"
    with make_client(transport=httpx2.MockTransport(slow)) as http:
        with pytest.raises(NetworkError) as from_api:
            ApiClient(url, http).request("GET", "/v1/auth/whoami")
        with pytest.raises(NetworkError) as from_flow:
            drive(discover(url), http)
    assert from_api.value.message == f"cannot reach the Keeptrusts API at {url} (timed out)"
    assert from_flow.value.message == f"cannot reach the identity provider at {url} (timed out)"
    assert from_api.value.hint == from_flow.value.hint


def test_a_body_that_does_not_decode_is_a_server_error_not_a_crash():
    def broken(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip")

    with httpx2.Client(transport=httpx2.MockTransport(broken)) as http:
        with pytest.raises(ServerError, match="cannot be decoded"):
            drive(discover("https://as.example"), http)


def test_every_cap_is_within_the_transport_cap():
    assert MAX_REPLY == max(MAX_BYTES.values())
    assert MAX_BYTES["metadata"] < MAX_BYTES["token"]


async def test_adrive_against_a_real_server_abandons_a_huge_reply() -> None:
    """Against the stub provider over real loopback HTTP: its metadata is read, a 600 MiB one is
    abandoned soon after the cap, and a port nothing listens on is a refused connection."""
    server = HostileAS().start()
    try:
        async with httpx2.AsyncClient() as http:
            meta = await adrive(discover(server.issuer), http)
            assert meta.token_endpoint == server.issuer + "/token"
            server.behaviour.metadata_huge = 600 * 1024 * 1024
            with pytest.raises(ServerError, match="too large"):
                await adrive(discover(server.issuer), http)
            with pytest.raises(NetworkError, match="connection refused"):
                await adrive(discover(f"http://127.0.0.1:{free_port()}"), http)
    finally:
        server.stop()
    assert server.metadata_sent < 20 * MAX_REPLY
