"""The `kt-devserver` command as a process: readiness, bind policy, signals, the `totp` subcommand,
and what ends up on disk and in its logs."""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys

import httpx2
import pytest
from click.testing import CliRunner

from kt_devserver import demo, totp
from kt_devserver.__main__ import main

READY = re.compile(r"^kt-devserver listening on http://127\.0\.0\.1:(\d+)$")


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kt_devserver", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_one_readiness_line_and_stops_cleanly(devserver_factory, sig):
    server = devserver_factory()
    match = READY.match(server.ready_line)
    assert match is not None, server.ready_line
    port = int(match.group(1))
    assert port != 0
    assert server.url == f"http://127.0.0.1:{port}"
    assert httpx2.get(server.url + "/healthz").json() == {"status": "ok"}

    server.process.send_signal(sig)
    assert server.process.stdout is not None
    assert server.process.stdout.read() == ""  # nothing after the one line
    assert server.process.wait(timeout=10) == 0
    assert "Traceback" not in server.stderr()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com", ""])
def test_refuses_a_non_loopback_host_without_public(tmp_path, host):
    result = run_cli("--host", host, "--port", "0", "--db", str(tmp_path / "dev.db"))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0]
    if host:
        assert "--public" in lines[0]


def test_a_busy_port_is_a_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("--port", str(port), "--db", str(tmp_path / "dev.db"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(port) in result.stderr


def test_localhost_binds_the_ipv4_loopback_literal(devserver_factory):
    server = devserver_factory("--host", "localhost")
    assert READY.match(server.ready_line), server.ready_line


def test_totp_subcommand_prints_bobs_current_code(tmp_path):
    db = str(tmp_path / "dev.db")
    before = totp.code(demo.BOB_TOTP_SECRET)
    result = run_cli("--db", db, "totp", demo.BOB_EMAIL)
    after = totp.code(demo.BOB_TOTP_SECRET)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d{6}\n", result.stdout)
    assert result.stdout.strip() in {before, after}

    also = run_cli("totp", "--db", db, demo.BOB_EMAIL)
    assert also.returncode == 0 and re.fullmatch(r"\d{6}\n", also.stdout)

    for email in (demo.ALICE_EMAIL, "nobody@example.com"):
        refused = run_cli("--db", db, "totp", email)
        assert refused.returncode == 1
        assert refused.stdout == ""
        assert len(refused.stderr.strip().splitlines()) == 1


def test_totp_code_matches_a_running_servers_database(devserver):
    result = run_cli("--db", str(devserver.db_path), "totp", demo.BOB_EMAIL)
    with httpx2.Client(base_url=devserver.url) as http:
        mfa_token = http.post(
            "/v1/auth/login", json={"email": demo.BOB_EMAIL, "password": demo.BOB_PASSWORD}
        ).json()["error"]["mfa_token"]
        response = http.post(
            "/v1/auth/mfa/challenge", json={"mfa_token": mfa_token, "code": result.stdout.strip()}
        )
    assert response.status_code == 200, response.text


def test_help_documents_the_test_knobs():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--db",
        "--public",
        "--access-token-ttl",
        "--refresh-token-ttl",
        "--mfa-token-ttl",
        "totp",
    ):
        assert option in result.output


def test_data_survives_a_restart_and_seeding_is_idempotent(devserver_factory):
    first = devserver_factory()
    with httpx2.Client(base_url=first.url) as http:
        session = http.post(
            "/v1/auth/login", json={"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD}
        ).json()
        http.post(
            "/v1/auth/tokens",
            json={"name": "kept", "scopes": ["tokens:read"]},
            headers={"Authorization": f"Bearer {session['access_token']}"},
        )
    assert first.stop() == 0

    second = devserver_factory()
    with httpx2.Client(base_url=second.url) as http:
        listing = http.get(
            "/v1/auth/tokens", headers={"Authorization": f"Bearer {session['access_token']}"}
        )
    assert [t["name"] for t in listing.json()["tokens"]] == ["kept"]
    with sqlite3.connect(second.db_path) as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM organizations").fetchone() == (1,)


def test_no_secret_reaches_the_logs_or_the_database_in_clear(devserver):
    secrets_seen: list[str] = [demo.ALICE_PASSWORD, demo.BOB_PASSWORD, demo.BOB_TOTP_SECRET]
    with httpx2.Client(base_url=devserver.url) as http:

        def post(path: str, body: object, token: str | None = None) -> httpx2.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return http.post(path, json=body, headers=headers)

        wrong = "canary-wrong-password-7f3a"
        secrets_seen.append(wrong)
        post("/v1/auth/login", {"email": demo.ALICE_EMAIL, "password": wrong})
        post("/v1/auth/login", {"email": "canary-nobody@example.com", "password": wrong})
        session = post(
            "/v1/auth/login", {"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD}
        ).json()
        secrets_seen += [session["access_token"], session["refresh_token"]]
        refreshed = post("/v1/auth/refresh", {"refresh_token": session["refresh_token"]}).json()
        secrets_seen += [refreshed["access_token"], refreshed["refresh_token"]]
        post("/v1/auth/refresh", {"refresh_token": session["refresh_token"]})  # replay: logged

        error = post(
            "/v1/auth/login", {"email": demo.BOB_EMAIL, "password": demo.BOB_PASSWORD}
        ).json()["error"]
        code = totp.code(demo.BOB_TOTP_SECRET)
        secrets_seen += [error["mfa_token"], code]
        bob = post("/v1/auth/mfa/challenge", {"mfa_token": error["mfa_token"], "code": code}).json()
        secrets_seen.append(bob["access_token"])
        created = post(
            "/v1/auth/tokens", {"name": "canary", "scopes": ["tokens:read"]}, bob["access_token"]
        ).json()
        secrets_seen.append(created["secret"])
        http.get(
            "/v1/auth/whoami?access_token=" + created["secret"],
            headers={"Authorization": f"Bearer {created['secret']}"},
        )
        rotated = http.post(
            f"/v1/auth/tokens/{created['token']['id']}/rotate",
            headers={"Authorization": f"Bearer {bob['access_token']}"},
        ).json()
        secrets_seen.append(rotated["secret"])
        http.post(
            "/v1/auth/login",
            content=b'{"password": "canary-bad-json',
            headers={"Content-Type": "application/json"},
        )
        secrets_seen.append("canary-bad-json")
    # Malformed HTTP: aiohttp's parser errors quote the raw bytes unless the server withholds them.
    port = int(devserver.url.rsplit(":", 1)[1])
    for raw in (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization Bearer canary-raw-header\r\n\r\n",
        b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"canary-raw-chunk\r\n",
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(raw)
            assert sock.recv(100).startswith(b"HTTP/1.")
    secrets_seen += ["canary-raw-header", "canary-raw-chunk"]
    assert devserver.stop() == 0

    stderr = devserver.stderr()
    assert "refresh token replayed" in stderr  # the log is really captured
    assert "details withheld" in stderr
    db_bytes = devserver.db_path.read_bytes()
    for secret in secrets_seen:
        assert secret not in stderr
    # The database keeps hashes: no password, token or code in clear (the TOTP seed must stay).
    for secret in secrets_seen:
        if secret not in (demo.BOB_TOTP_SECRET, code):
            assert secret.encode() not in db_bytes, secret[:6]
    assert stat.S_IMODE(devserver.db_path.stat().st_mode) == 0o600
