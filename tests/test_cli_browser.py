"""`kt auth login --browser` against a scripted issuer (httpx2.MockTransport) whose "browser"
answers the real loopback listener, and as a real process for Ctrl-C and headless machines.

Each refused case must leave the credential store byte-for-byte as it was (EH-04)."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from kt_login.cli import main
from kt_login.cli.app import App
from tests.kt_process import base_env, start_kt

ISSUER = "https://id.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


class Issuer:
    """A scripted OpenID provider. `id_claims` / `token_reply` / `callback` can be bent per test."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.id_claims: dict = {}
        self.token_reply: dict | None = None
        self.token_error: Exception | None = None
        self.callback_params: dict = {}
        self.metadata: dict = {}
        self.nonce: str | None = None

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if path == "/.well-known/openid-configuration":
            doc = {
                "issuer": ISSUER,
                "authorization_endpoint": ISSUER + "/authorize",
                "token_endpoint": ISSUER + "/token",
                "jwks_uri": ISSUER + "/jwks",
                "revocation_endpoint": ISSUER + "/revoke",
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
                "id_token_signing_alg_values_supported": ["RS256"],
            }
            doc.update(self.metadata)
            return httpx2.Response(200, json=doc)
        if path == "/jwks":
            return httpx2.Response(200, json={"keys": [KEY.as_dict(private=False)]})
        if path == "/token":
            if self.token_error is not None:
                raise self.token_error
            now = time.time()
            claims = {
                "iss": ISSUER,
                "sub": "user-1",
                "aud": "kt-cli",
                "iat": now,
                "exp": now + 300,
                "nonce": self.nonce,
                "email": "u@id.example",
            }
            claims.update(self.id_claims)
            claims = {k: v for k, v in claims.items() if v is not None}
            reply = {
                "access_token": "at-CANARY",
                "token_type": "Bearer",
                "expires_in": 600,
                "refresh_token": "rt-CANARY",
                "id_token": jwt.encode({"alg": "RS256", "kid": "k1"}, claims, KEY),
            }
            if self.token_reply is not None:
                reply = self.token_reply
            return httpx2.Response(200, json=reply)
        if path == "/revoke":
            return httpx2.Response(200)
        return httpx2.Response(404)

    def browser(self, url: str) -> bool:
        """Plays the person's browser: follows kt's one-time link to the authorization request,
        'signs in' and follows the redirect to kt's listener (in a thread: kt's listener runs
        in the thread that calls the opener)."""

        def follow() -> None:
            authorize = httpx2.get(url).headers["location"]  # the listener's 302
            q = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
            self.nonce = q["nonce"]
            params = {"code": "code-CANARY", "state": q["state"], "iss": ISSUER}
            params.update(self.callback_params)
            params = {k: v for k, v in params.items() if v is not None}
            httpx2.get(q["redirect_uri"], params=params, headers={"Sec-Fetch-Mode": "navigate"})

        threading.Thread(target=follow, daemon=True).start()
        return True


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run(tmp_path, issuer: Issuer, capsys, *extra: str, flags=None) -> tuple[int, str, str]:
    app = App(
        env={
            "KEEPTRUSTS_CONFIG_DIR": str(tmp_path / "cfg"),
            "KEEPTRUSTS_API_URL": "https://api.example",
        },
        transport=httpx2.MockTransport(issuer.handler),
        interactive=lambda: False,
        opener=issuer.browser,
    )
    code = main(
        [
            "auth",
            "login",
            "--browser",
            "--issuer",
            ISSUER,
            "--client-id",
            "kt-cli",
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


def test_generic_issuer_sign_in_stores_identity(tmp_path, capsys):
    issuer = Issuer()
    code, out, err = run(tmp_path, issuer, capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["identity"]["issuer"] == ISSUER and doc["identity"]["subject"] == "user-1"
    assert doc["user"]["email"] == "u@id.example"
    assert "CANARY" not in out + err
    assert issuer.calls.count("POST /token") == 1


@pytest.mark.parametrize(
    ("case", "bend", "exit_code"),
    [
        ("oidcc-client-nonce-invalid", lambda i: i.id_claims.update(nonce="other"), 7),
        ("fapi2-invalid-aud", lambda i: i.id_claims.update(aud="someone-else"), 7),
        ("fapi2-invalid-iss", lambda i: i.id_claims.update(iss="https://evil.example"), 7),
        ("fapi2-invalid-expired-exp", lambda i: i.id_claims.update(exp=time.time() - 3600), 7),
        ("fapi1-iat-is-week-in-past", lambda i: i.id_claims.update(iat=time.time() - 604800), 7),
        (
            "no-id-token",
            lambda i: setattr(i, "token_reply", {"access_token": "a", "token_type": "Bearer"}),
            7,
        ),
        (
            "az04-invalid-authorization-response-iss",
            lambda i: i.callback_params.update(iss="https://evil.example"),
            7,
        ),
        ("az04-remove-authorization-response-iss", lambda i: i.callback_params.update(iss=None), 7),
        ("access_denied", lambda i: i.callback_params.update(code=None, error="access_denied"), 3),
        ("id01-discovery-issuer-mismatch", lambda i: i.metadata.update(issuer=ISSUER + "/"), 7),
        (
            "az08-foreign-authorization-endpoint",
            lambda i: i.metadata.update(authorization_endpoint="https://evil.example/authorize"),
            7,
        ),
        (
            "az09-token-endpoint-timeout",
            lambda i: setattr(i, "token_error", httpx2.ReadTimeout("slow")),
            5,
        ),
    ],
)
def test_refused_sign_ins_leave_the_store_unchanged(tmp_path, capsys, case, bend, exit_code):
    # an earlier session exists; a refused sign-in must not touch it
    first = Issuer()
    assert run(tmp_path, first, capsys)[0] == 0
    before = snapshot(tmp_path / "cfg")
    issuer = Issuer()
    bend(issuer)
    code, out, err = run(tmp_path, issuer, capsys)
    assert code == exit_code, err
    assert snapshot(tmp_path / "cfg") == before
    assert out == "" and "CANARY" not in err
    assert issuer.calls.count("POST /token") <= 1  # the code is never exchanged twice (AZ-09)
    if case.startswith(("az04", "access_denied", "id01", "az08")):
        assert "POST /token" not in issuer.calls


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


def test_the_profile_remembers_its_issuer_and_client(tmp_path, capsys):
    assert run(tmp_path, Issuer(), capsys)[0] == 0
    again = Issuer()
    code, out, err = run(tmp_path, again, capsys, flags=[])  # no --issuer / --client-id
    assert code == 0, err
    assert "GET /.well-known/openid-configuration" in again.calls
    assert json.loads(out)["identity"]["issuer"] == ISSUER
