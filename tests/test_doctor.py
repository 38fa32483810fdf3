"""kt_login.doctor's checks in process, for what the real `kt` cannot be made to meet on this
machine (a loopback that cannot be bound, a keyring that answers slowly, a trust-store variable
kt does not read). tests/test_cli_doctor.py runs the rest through the real `kt`."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx2
import pytest

from kt_login import doctor
from kt_login.api import make_http_client
from kt_login.store import SessionStore
from tests.fake_keyrings import MemoryKeyring, SizeLimitedKeyring
from tests.sample_sessions import make_session

API = "http://127.0.0.1:9"


def surroundings(tmp_path: Path, handler, backend=None, **env: str) -> doctor.Surroundings:
    keyring = backend if backend is not None else MemoryKeyring()
    return doctor.Surroundings(
        env={"KEEPTRUSTS_CONFIG_DIR": str(tmp_path), "KEEPTRUSTS_API_URL": API, "BROWSER": "x"}
        | env,
        profile_flag=None,
        api_url_flag=None,
        http=lambda: make_http_client(httpx2.MockTransport(handler)),
        store=lambda d: SessionStore(d, keyring_backend=keyring),
        clock=lambda: 1_800_000_000.0,
    )


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def answer(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(
        200, json={"status": "ok"}, headers={"Date": "Fri, 15 Jan 2027 08:00:00 GMT"}
    )


def without_ipv6_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine where ::1 cannot be listened on: doctor's binds on IPv6 fail as they do there."""
    real = doctor._bind
    monkeypatch.setattr(
        doctor,
        "_bind",
        lambda family, host, port=0: (
            "Cannot assign requested address"
            if family == socket.AF_INET6
            else real(family, host, port)
        ),
    )


def test_an_ipv6_loopback_that_cannot_be_bound_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    without_ipv6_loopback(monkeypatch)
    check = doctor._loopback(None)
    assert check.status == "warn" and "::1 cannot (Cannot assign requested address)" in check.detail


def test_a_redirect_to_ipv6_without_ipv6_loopback_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_ipv6_loopback(monkeypatch)
    from kt_login import config

    settings = config.resolve({"KEEPTRUSTS_CONFIG_DIR": str(tmp_path)}, redirect_host_flag="[::1]")
    check = doctor._loopback(settings)
    assert check.status == "fail" and "redirects to [::1]" in check.detail
    assert check.fix == "run: kt config set redirect_host 127.0.0.1 --profile default"


def test_no_ipv4_loopback_fails_with_the_device_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "_bind", lambda family, host, port=0: "Permission denied")
    check = doctor._loopback(None)
    assert check.status == "fail" and check.fix == "run: kt auth login --device"


def test_requests_ca_bundle_is_not_read_and_the_fix_says_so() -> None:
    fix = doctor._tls_fix({"REQUESTS_CA_BUNDLE": "/etc/corp/ca.pem"})
    assert fix == "run: export SSL_CERT_FILE=/etc/corp/ca.pem"
    assert "SSL_CERT_FILE" in doctor._tls_fix({})


def test_a_proxy_url_is_shown_without_its_credentials() -> None:
    shown = doctor._without_credentials("http://ada:s3cret@proxy.corp:3128/")
    assert shown == "http://proxy.corp:3128/"
    assert "s3cret" not in doctor._without_credentials("http://ada:s3cret@[::1]:3128")


def test_the_clock_compares_the_date_header(tmp_path: Path) -> None:
    # Date is 2027-01-15T08:00:00Z = 1_800_000_000 + 0 (the injected clock)
    checks = by_name(doctor.diagnose(surroundings(tmp_path, answer)))
    assert checks["clock"].status == "ok", checks["clock"]

    def late(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"Date": "Fri, 15 Jan 2027 07:50:00 GMT"})

    check = by_name(doctor.diagnose(surroundings(tmp_path, late)))["clock"]
    assert check.status == "warn" and "10 min ahead of" in check.detail

    def undated(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200)

    check = by_name(doctor.diagnose(surroundings(tmp_path, undated)))["clock"]
    assert check.status == "ok" and "not compared" in check.detail


def test_a_slow_keyring_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(0, 1000, 2))
    monkeypatch.setattr("kt_login.store.keyring_store.time.monotonic", lambda: float(next(ticks)))
    check = by_name(doctor.diagnose(surroundings(tmp_path, answer)))["keyring"]
    assert check.status == "warn" and "slow" in check.detail


def test_the_keyring_check_names_the_envelope_limit(tmp_path: Path) -> None:
    where = surroundings(tmp_path, answer)
    where.store = lambda d: SessionStore(
        d, keyring_backend=SizeLimitedKeyring(), keyring_max_bytes=512
    )
    check = by_name(doctor.diagnose(where))["keyring"]
    assert check.status == "ok"
    assert "sessions over 512 bytes (KEEPTRUSTS_KEYRING_MAX_BYTES) are sealed" in check.detail


def test_a_session_of_another_profile_that_expired_is_named(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    sessions = SessionStore(tmp_path, keyring_backend=backend)
    sessions.save("default", make_session(), into=sessions.in_keyring)
    old = make_session(expires_at=1_000.0, refresh_expires_at=2_000.0)
    sessions.save("old", old, into=sessions.in_keyring)
    check = by_name(doctor.diagnose(surroundings(tmp_path, answer, backend)))["sessions"]
    assert check.status == "warn"
    assert check.detail.startswith("default (active): logged in, in keyring")
    assert "old: expired" in check.detail
    assert check.fix == "run: kt auth login --profile old"
