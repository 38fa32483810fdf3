"""A person at a terminal: prompts without echo, the MFA code prompt, step-up and its one retry."""

from __future__ import annotations

import time

import httpx2
from click.testing import CliRunner

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from kt_login.cli import cli
from kt_login.cli.app import App
from tests.kt_process import base_env, kt
from tests.terminal import Terminal


def test_interactive_mfa_login_prompts_and_never_echoes(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    term = Terminal(["auth", "login", "--email", "bob@example.com", "--insecure-storage"], env)
    term.expect("Password:")
    term.type("bob-password")
    term.expect("Authentication code:")
    term.type("000000")  # wrong first: kt asks again
    term.expect("not accepted")
    term.expect("Authentication code:", times=2)
    code = totp.code(BOB_TOTP_SECRET)
    term.type(code)
    assert term.finish() == 0, term.seen
    assert "bob-password" not in term.seen and code not in term.seen
    assert "Logged in to" in term.seen and "bob@example.com" in term.seen
    who = kt("auth", "whoami", "--json", env=env)
    assert who.json()["mfa_authenticated"] is True


def test_interactive_wrong_password(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    term = Terminal(["auth", "login", "--email", "alice@example.com", "--insecure-storage"], env)
    term.expect("Password:")
    term.type("not-her-password")
    assert term.finish() == 3
    assert "not-her-password" not in term.seen
    assert "Traceback" not in term.seen


class StepUpServer:
    """Answers rotate with 403 auth.mfa_required until a challenge was made, then succeeds."""

    def __init__(self, *, always_require: bool = False):
        self.calls: list[str] = []
        self.challenged = False
        self.always_require = always_require

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if request.url.path == "/v1/auth/mfa/challenge":
            self.challenged = True
            return httpx2.Response(200, json=_session("kta_new", mfa=True))
        if request.url.path == "/v1/auth/logout":
            return httpx2.Response(200, json={"revoked": True})
        if request.url.path.endswith("/rotate"):
            if self.always_require or not self.challenged:
                return httpx2.Response(
                    403,
                    json={
                        "error": {
                            "code": "auth.mfa_required",
                            "message": "MFA needed",
                            "mfa_token": "mfa_step_up",
                            "expires_in": 300,
                        }
                    },
                )
            assert request.headers["Authorization"] == "Bearer kta_new"
            return httpx2.Response(
                200,
                json={
                    "token": {"id": "tok_2", "name": "ci", "scopes": ["tokens:read"]},
                    "secret": "kt_live_new_secret",
                    "revoked": {"id": "tok_1"},
                },
            )
        return httpx2.Response(404, json={"error": {"code": "auth.not_found", "message": "?"}})


def _session(access: str, *, mfa: bool) -> dict:
    return {
        "access_token": access,
        "refresh_token": "ktr_" + access,
        "token_type": "Bearer",
        "expires_in": 900,
        "mfa_authenticated": mfa,
        "role": "member",
        "user": {"id": "usr_b", "email": "bob@example.com"},
        "organization": {"name": "Acme"},
    }


def _logged_in_app(tmp_path, server) -> App:
    from kt_login.api import session_from_reply
    from kt_login.store import FileStore

    api = "https://api.example"
    FileStore(tmp_path).save(
        "default",
        session_from_reply(
            _session("kta_old", mfa=False), api_url=api, method="password", now=time.time()
        ),
    )
    return App(
        env={"KEEPTRUSTS_CONFIG_DIR": str(tmp_path), "KEEPTRUSTS_API_URL": api},
        transport=httpx2.MockTransport(server),
        interactive=lambda: True,
    )


def test_step_up_prompts_once_and_retries_once(tmp_path):
    server = StepUpServer()
    app = _logged_in_app(tmp_path, server)
    result = CliRunner().invoke(
        cli, ["auth", "token", "rotate", "--id", "tok_1"], obj=app, input="123456\n"
    )
    assert result.exit_code == 0, result.output
    assert server.calls == [
        "POST /v1/auth/tokens/tok_1/rotate",
        "POST /v1/auth/mfa/challenge",
        "POST /v1/auth/logout",  # the replaced session is ended on the server
        "POST /v1/auth/tokens/tok_1/rotate",
    ]
    assert result.stdout.strip().splitlines()[-1] == "kt_live_new_secret"


def test_step_up_is_not_a_loop(tmp_path):
    server = StepUpServer(always_require=True)
    app = _logged_in_app(tmp_path, server)
    result = CliRunner().invoke(
        cli, ["auth", "token", "rotate", "--id", "tok_1"], obj=app, input="123456\n"
    )
    assert result.exit_code != 0
    assert server.calls.count("POST /v1/auth/tokens/tok_1/rotate") == 2
    assert server.calls.count("POST /v1/auth/mfa/challenge") == 1


def test_no_method_on_a_headless_terminal_picks_device_sign_in(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)  # no DISPLAY, no BROWSER
    term = Terminal(["auth", "login", "--insecure-storage", "--no-qr"], env)
    term.expect("Using device sign-in: ")
    term.proc.terminate()
    term.finish()


def test_no_method_without_a_terminal_exits_with_guidance(tmp_path):
    r = kt("auth", "login", "--json", env=base_env(tmp_path))
    assert r.code == 2
    assert "--device" in r.error()["message"] and "--browser" in r.error()["message"]
