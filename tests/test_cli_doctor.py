"""`kt auth doctor` through the real `kt` (issue 13 item 5): every check passes on a healthy setup
(kt-devserver, the real Secret Service, a session), then each one fails once, alone where it
can, with the fix it prints; that fix, run, makes it pass."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.adversarial.hostile_as import DELETE, HostileAS
from tests.fixtures.devserver import DevServer, start_devserver
from tests.kt_process import ALICE, Result, base_env, free_port, kt, password_login

CHECKS = [
    "config",
    "api_url",
    "tls",
    "clock",
    "proxy",
    "keyring",
    "loopback",
    "browser",
    "sessions",
    "issuer",
]


@pytest.fixture(scope="module")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_devserver(tmp_path_factory.mktemp("devserver"))
    yield server
    server.stop()


@pytest.fixture
def healthy(tmp_path: Path, devserver: DevServer, secret_service: dict[str, str]):
    """A machine where signing in works: the dev server, an unlocked keyring, a browser, and a
    session (in the keyring) for a profile of the test's own."""
    env = base_env(
        tmp_path,
        KEEPTRUSTS_API_URL=devserver.url,
        KEEPTRUSTS_PROFILE=f"dr-{uuid.uuid4().hex[:10]}",
        BROWSER="true",
        **secret_service,
    )
    assert password_login(env, ALICE).code == 0
    yield env
    kt("auth", "logout", env=env)


def doctor(env: dict[str, str], *args: str) -> tuple[Result, dict[str, dict[str, Any]]]:
    r = kt("auth", "doctor", "--json", *args, env=env)
    assert "Traceback" not in r.stderr
    doc = r.json()
    assert [c["name"] for c in doc["checks"]] == CHECKS
    for check in doc["checks"]:
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in ("ok", "warn", "fail")
        assert (check["fix"] is None) == (check["status"] == "ok"), check
    assert doc["ok"] is (r.code == 0)
    if r.code:
        assert r.code == 1
        assert r.error()["code"] == "kt.doctor_found_problems"
    return r, {c["name"]: c for c in doc["checks"]}


def not_ok(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: c["status"] for name, c in checks.items() if c["status"] != "ok"}


def run_fix(fix: str, env: dict[str, str]) -> dict[str, str]:
    """Apply a printed `run: export NAME=VALUE` to `env`, as a shell would."""
    assert fix.startswith("run: export "), fix
    name, _, value = fix.removeprefix("run: export ").partition("=")
    return dict(env, **{name: value.strip("'")})


def test_a_healthy_setup_passes_every_check(healthy):
    r, checks = doctor(healthy)
    assert r.code == 0, checks
    assert not_ok(checks) == {}
    assert "SecretService" in checks["keyring"]["detail"]
    assert "logged in, in keyring" in checks["sessions"]["detail"]
    assert "PKCE S256" in checks["issuer"]["detail"]
    assert "device grant" in checks["issuer"]["detail"]
    human = kt("auth", "doctor", env=healthy)
    assert human.code == 0 and human.stderr == ""
    assert [line.split()[:2] for line in human.stdout.splitlines()] == [["ok", c] for c in CHECKS]


def test_the_keyring_probe_leaves_nothing_behind(healthy):
    import secretstorage
    from jeepney.io.blocking import open_dbus_connection

    doctor(healthy)
    with open_dbus_connection(healthy["DBUS_SESSION_BUS_ADDRESS"]) as conn:
        collection = secretstorage.get_default_collection(conn)
        left = list(collection.search_items({"username": "kt:doctor-probe"}))
    assert left == []


class _SkewedApi(BaseHTTPRequestHandler):
    skew = 0.0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(time.time() + self.skew, usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def skewed_api() -> Iterator[tuple[str, type[_SkewedApi]]]:
    """An API whose Date header is off by `handler.skew` seconds (bound before it is returned)."""
    handler = type("Skewed", (_SkewedApi,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def write_config(env: dict[str, str], text: str) -> Path:
    directory = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("skew", [-600.0, 600.0])
def test_a_wrong_clock_warns_with_the_skew(healthy, devserver, skewed_api, skew):
    url, handler = skewed_api
    handler.skew = skew
    # the API is the skewed server; the issuer stays the dev server
    write_config(
        healthy, f'[profiles.{healthy["KEEPTRUSTS_PROFILE"]}]\nissuer = "{devserver.url}"\n'
    )
    r, checks = doctor(healthy, "--api-url", url)
    assert r.code == 1
    assert not_ok(checks) == {"clock": "warn"}
    detail = checks["clock"]["detail"]
    assert "10 min " + ("behind" if skew > 0 else "ahead of") in detail, detail
    assert checks["clock"]["fix"] == "run: sudo timedatectl set-ntp true"
    handler.skew = 30.0
    r, checks = doctor(healthy, "--api-url", url)
    assert r.code == 0 and "within 60 s" in checks["clock"]["detail"]


def test_a_locked_keyring_fails(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, BROWSER="true")
    assert password_login(env, ALICE, "--insecure-storage").code == 0  # a session, in a file
    locked = dict(env, PYTHON_KEYRING_BACKEND="tests.fake_keyrings.LockedKeyring")
    r, checks = doctor(locked)
    assert r.code == 1
    assert not_ok(checks) == {"keyring": "fail"}
    assert checks["keyring"]["detail"].startswith("the OS keyring is locked")
    assert "unlock your keyring" in checks["keyring"]["fix"]


def test_the_real_locked_secret_service_fails(tmp_path, devserver, locked_secret_service):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, BROWSER="true")
    assert password_login(env, ALICE, "--insecure-storage").code == 0
    r, checks = doctor(dict(env, **locked_secret_service))
    assert not_ok(checks) == {"keyring": "fail"}
    assert "locked" in checks["keyring"]["detail"]


def test_a_keyring_is_not_needed_by_a_profile_that_uses_the_file(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, BROWSER="true")
    write_config(env, 'credential_store = "file"\n')
    assert password_login(env, ALICE).code == 0
    r, checks = doctor(env)
    assert r.code == 0, not_ok(checks)
    assert checks["keyring"]["detail"].startswith('not used (credential_store = "file")')


def test_loose_config_permissions_fail_and_the_printed_fix_works(healthy):
    path = write_config(healthy, 'credential_store = "keyring"\n')
    path.chmod(0o666)
    r, checks = doctor(healthy)
    assert r.code == 1
    assert checks["config"]["status"] == "fail"
    assert "other users may change it" in checks["config"]["detail"]
    assert checks["config"]["fix"] == f"run: chmod go-w {path}"
    # what depends on the settings is not checked until then; the rest still is
    for name in ("api_url", "tls", "clock", "sessions", "issuer"):
        assert checks[name]["status"] == "warn" and "not checked" in checks[name]["detail"]
    for name in ("proxy", "keyring", "loopback", "browser"):
        assert checks[name]["status"] == "ok"
    os.system(checks["config"]["fix"].removeprefix("run: "))  # noqa: S605 - the printed fix
    assert doctor(healthy)[0].code == 0


def test_unknown_config_keys_warn_with_the_unset_command(healthy):
    profile = healthy["KEEPTRUSTS_PROFILE"]
    write_config(healthy, f'colour = "blue"\n[profiles.{profile}]\nissuerr = "x"\n')
    r, checks = doctor(healthy)
    assert not_ok(checks) == {"config": "warn"}
    assert "colour, profiles." + profile + ".issuerr" in checks["config"]["detail"]
    assert checks["config"]["fix"] == "run: kt config unset colour"


def test_a_proxy_without_loopback_bypass_warns_and_the_fix_passes(healthy):
    port = free_port()
    proxied = dict(healthy, HTTPS_PROXY=f"http://user:pw-CANARY@127.0.0.1:{port}", NO_PROXY="corp")
    r, checks = doctor(proxied)
    assert r.code == 1
    assert not_ok(checks) == {"proxy": "warn"}  # kt itself still reaches loopback directly
    detail = checks["proxy"]["detail"]
    assert "CANARY" not in r.stdout + r.stderr and "user" not in detail
    assert f"HTTPS_PROXY=http://127.0.0.1:{port}" in detail
    assert "is reached directly" in detail
    assert "NO_PROXY does not list localhost, 127.0.0.1, ::1" in detail
    fix = checks["proxy"]["fix"]
    assert fix == "run: export NO_PROXY=corp,localhost,127.0.0.1,::1"
    r, checks = doctor(run_fix(fix, proxied))
    assert r.code == 0, not_ok(checks)
    assert "NO_PROXY lists loopback" in checks["proxy"]["detail"]


def test_a_socks_proxy_fails(healthy):
    r, checks = doctor(dict(healthy, ALL_PROXY="socks5://127.0.0.1:1080"))
    assert checks["proxy"]["status"] == "fail" and "SOCKS" in checks["proxy"]["detail"]
    assert checks["api_url"]["status"] == "fail"


def test_an_api_that_does_not_answer_fails(healthy, devserver):
    write_config(
        healthy, f'[profiles.{healthy["KEEPTRUSTS_PROFILE"]}]\nissuer = "{devserver.url}"\n'
    )
    url = f"http://127.0.0.1:{free_port()}"
    r, checks = doctor(healthy, "--api-url", url)
    assert not_ok(checks) == {"api_url": "fail", "clock": "warn"}
    assert "connection refused" in checks["api_url"]["detail"]
    assert (
        checks["api_url"]["fix"]
        == "is the server running, and is the address (host and port) right?"
    )


def test_an_unusable_ssl_cert_file_fails_tls(healthy, tmp_path):
    bad = tmp_path / "not-a-bundle.pem"
    bad.write_text("not a certificate\n")
    r, checks = doctor(dict(healthy, SSL_CERT_FILE=str(bad)))
    assert checks["tls"]["status"] == "fail"
    assert "SSL_CERT_FILE" in checks["tls"]["detail"]
    assert checks["tls"]["fix"].endswith("run: unset SSL_CERT_FILE")


def test_no_browser_over_ssh_warns_with_the_device_login(healthy):
    env = {k: v for k, v in healthy.items() if k != "BROWSER"}
    env["SSH_CONNECTION"] = "10.0.0.2 50000 10.0.0.1 22"
    r, checks = doctor(env)
    assert not_ok(checks) == {"browser": "warn"}
    assert "SSH session without a display" in checks["browser"]["detail"]
    assert checks["browser"]["fix"] == "run: kt auth login --device"


def test_an_expired_session_warns_with_the_login_to_run(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, BROWSER="true")
    write_config(env, 'credential_store = "file"\n')
    assert password_login(env, ALICE).code == 0
    path = Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "credentials" / "default.json"
    stored = json.loads(path.read_text())
    stored.update(expires_at=1_000_000_000.0, refresh_expires_at=1_000_000_100.0)
    path.write_text(json.dumps(stored))
    r, checks = doctor(env)
    assert not_ok(checks) == {"sessions": "warn"}
    assert "default (active): expired" in checks["sessions"]["detail"]
    assert "refresh token until 2001-09-09T01:48:20Z" in checks["sessions"]["detail"]
    assert checks["sessions"]["fix"] == "run: kt auth login"


def test_an_unreadable_session_fails(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, BROWSER="true")
    write_config(env, 'credential_store = "file"\n')
    assert password_login(env, ALICE).code == 0
    (Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "credentials" / "default.json").write_text("{")
    r, checks = doctor(env)
    assert not_ok(checks) == {"sessions": "fail"}
    assert "corrupt" in checks["sessions"]["detail"]
    assert checks["sessions"]["fix"] == "run: kt auth login"


@pytest.fixture
def hostile() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


def test_an_issuer_without_device_grant_or_revocation_warns(healthy, hostile):
    hostile.behaviour.metadata.update(
        device_authorization_endpoint=DELETE,
        revocation_endpoint=DELETE,
        authorization_response_iss_parameter_supported=DELETE,
    )
    write_config(
        healthy, f'[profiles.{healthy["KEEPTRUSTS_PROFILE"]}]\nissuer = "{hostile.issuer}"\n'
    )
    r, checks = doctor(healthy)
    assert not_ok(checks) == {"issuer": "warn"}
    detail = checks["issuer"]["detail"]
    assert "no device grant" in detail and "no revocation endpoint" in detail
    assert "RFC 9207" in detail


def test_an_issuer_without_pkce_s256_fails(healthy, hostile):
    hostile.behaviour.metadata.update(code_challenge_methods_supported=["plain"])
    write_config(
        healthy, f'[profiles.{healthy["KEEPTRUSTS_PROFILE"]}]\nissuer = "{hostile.issuer}"\n'
    )
    r, checks = doctor(healthy)
    assert not_ok(checks) == {"issuer": "fail"}
    assert "does not support PKCE with S256" in checks["issuer"]["detail"]


def test_an_unusable_ssl_cert_file_is_a_usage_error_not_a_crash(healthy, tmp_path):
    for path in (tmp_path / "missing.pem", tmp_path):
        r = kt("auth", "whoami", env=dict(healthy, SSL_CERT_FILE=str(path)))
        assert r.code == 2, r.stderr
        assert "Traceback" not in r.stderr and "unexpected" not in r.stderr
        assert f"SSL_CERT_FILE names '{path}'" in r.stderr
        assert "run: unset SSL_CERT_FILE" in r.stderr


def test_a_taken_sign_in_port_fails(healthy):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        write_config(healthy, f"[profiles.{healthy['KEEPTRUSTS_PROFILE']}]\nport = {port}\n")
        r, checks = doctor(healthy)
        assert not_ok(checks) == {"loopback": "fail"}
        assert f"port {port} (config file) cannot be listened on" in checks["loopback"]["detail"]
        assert f"lsof -iTCP:{port} -sTCP:LISTEN" in checks["loopback"]["fix"]
    r, checks = doctor(healthy)  # closed: free again
    assert r.code == 0 and f"port {port} (config file) is free" in checks["loopback"]["detail"]
