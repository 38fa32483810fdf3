"""`kt auth login --browser` in process against the stub OpenID provider (HostileAS, a real
loopback server) whose "browser" answers the real loopback listener, and as a real process for
Ctrl-C and headless machines.

Each refused case must leave the credential store byte-for-byte as it was (EH-04)."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest

import kt_login.api
from kt_login.cli import main
from kt_login.cli.app import App
from tests.adversarial.hostile_as import DELETE, EMAIL, SUBJECT, Behaviour, HostileAS
from tests.kt_process import base_env, start_kt


@pytest.fixture
def issuer() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run(
    tmp_path, issuer: HostileAS, capsys, *extra: str, flags: list[str] | None = None
) -> tuple[int, str, str]:
    """`kt auth login --browser` in process; `flags` replaces `--issuer … --client-id …`."""
    app = App(
        env={
            "KEEPTRUSTS_CONFIG_DIR": str(tmp_path / "cfg"),
            "KEEPTRUSTS_API_URL": "https://api.invalid",  # generic mode: the issuer is not the API
        },
        interactive=lambda: False,
        opener=issuer.browser,
    )
    if flags is None:
        flags = ["--issuer", issuer.issuer, "--client-id", issuer.client_id]
    code = main(
        [
            "auth",
            "login",
            "--browser",
            *flags,
            "--insecure-storage",
            "--timeout",
            "10",
            "--json",
            *extra,
        ],
        obj=app,
    )
    out, err = capsys.readouterr()
    return code, out, err


def leaked(issuer: HostileAS, text: str) -> list[str]:
    """The codes and tokens the provider issued that appear in `text`."""
    return [secret for secret in issuer.issued if secret in text]


def test_generic_issuer_sign_in_stores_identity(tmp_path, capsys, issuer):
    code, out, err = run(tmp_path, issuer, capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["identity"]["issuer"] == issuer.issuer and doc["identity"]["subject"] == SUBJECT
    assert doc["user"]["email"] == EMAIL
    assert issuer.issued and not leaked(issuer, out + err)
    assert len(issuer.token_calls("authorization_code")) == 1


def _token_endpoint_times_out(b: Behaviour, issuer: HostileAS) -> None:
    b.token_hold = threading.Event()  # the reply never comes while kt waits


Bend = Callable[[Behaviour, HostileAS], None]
CASES: list[tuple[str, Bend, int]] = [
    ("oidcc-client-nonce-invalid", lambda b, i: b.id_claims.update(nonce="other"), 7),
    ("fapi2-invalid-aud", lambda b, i: b.id_claims.update(aud="someone-else"), 7),
    ("fapi2-invalid-iss", lambda b, i: b.id_claims.update(iss="https://evil.example"), 7),
    ("fapi2-invalid-expired-exp", lambda b, i: b.id_claims.update(exp=time.time() - 3600), 7),
    ("fapi1-iat-is-week-in-past", lambda b, i: b.id_claims.update(iat=time.time() - 604800), 7),
    ("no-id-token", lambda b, i: setattr(b, "code_id_token", False), 7),
    (
        "az04-invalid-authorization-response-iss",
        lambda b, i: b.callback.update(iss="https://evil.example"),
        7,
    ),
    ("az04-remove-authorization-response-iss", lambda b, i: b.callback.update(iss=DELETE), 7),
    ("access_denied", lambda b, i: b.callback.update(code=DELETE, error="access_denied"), 3),
    ("id01-discovery-issuer-mismatch", lambda b, i: b.metadata.update(issuer=i.issuer + "/"), 7),
    (
        "az08-foreign-authorization-endpoint",
        lambda b, i: b.metadata.update(authorization_endpoint="https://evil.example/authorize"),
        7,
    ),
    ("az09-token-endpoint-timeout", _token_endpoint_times_out, 5),
]


@pytest.mark.parametrize(("case", "bend", "exit_code"), CASES, ids=[c[0] for c in CASES])
def test_refused_sign_ins_leave_the_store_unchanged(
    tmp_path, capsys, monkeypatch, issuer, case, bend, exit_code
):
    # an earlier session exists; a refused sign-in must not touch it
    assert run(tmp_path, issuer, capsys)[0] == 0
    before = snapshot(tmp_path / "cfg")
    behaviour = issuer.reset()
    bend(behaviour, issuer)
    if behaviour.token_hold is not None:  # kt's read timeout, cut short for the test
        monkeypatch.setattr(kt_login.api, "TIMEOUT", httpx2.Timeout(1.0))
    try:
        code, out, err = run(tmp_path, issuer, capsys)
    finally:
        if behaviour.token_hold is not None:
            behaviour.token_hold.set()
    assert code == exit_code, err
    assert snapshot(tmp_path / "cfg") == before
    assert out == "" and not leaked(issuer, err)
    exchanges = issuer.token_calls("authorization_code")
    assert len(exchanges) <= 1  # the code is never exchanged twice (AZ-09)
    if case.startswith(("az04", "access_denied", "id01", "az08")):
        assert exchanges == []
    if case.startswith(("id01", "az08")):  # refused before a browser was opened
        assert issuer.opened == []


def _port_of(url: str) -> int:
    """The listener's port: the printed URL is its one-time link (issue 11 case 1)."""
    port = urlsplit(url).port
    assert port is not None and urlsplit(url).hostname == "127.0.0.1"
    return port


def test_headless_prints_url_and_ctrl_c_closes_everything(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)  # no DISPLAY, no BROWSER
    proc = start_kt("auth", "login", "--browser", "--insecure-storage", env=env)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.strip().startswith("http"):
            break
    text = "".join(seen)
    assert "Cannot open a browser here" in text and "--device" in text
    port = _port_of(seen[-1].strip())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and out == ""
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    assert not (Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "credentials").exists() or not any(
        (Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "credentials").iterdir()
    )


def test_the_profile_remembers_its_issuer_and_client(tmp_path, capsys, issuer):
    assert run(tmp_path, issuer, capsys)[0] == 0
    issuer.reset()
    code, out, err = run(tmp_path, issuer, capsys, flags=[])  # no --issuer / --client-id
    assert code == 0, err
    assert issuer.calls("GET", "/.well-known/openid-configuration")
    assert json.loads(out)["identity"]["issuer"] == issuer.issuer
