"""The password path end to end: the real `kt` process against a real `kt-devserver` process."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from tests.kt_process import (
    ALICE,
    BOB,
    base_env,
    free_port,
    kt,
    login_blocked_on_password,
    password_login,
)


def login(env, who=ALICE, *extra):
    return password_login(env, who, "--insecure-storage", *extra)


def stored_files(env) -> list[Path]:
    root = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_login_whoami_status_logout(env):
    r = login(env, ALICE, "--json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["user"]["email"] == "alice@example.com"
    assert doc["credential_store"] == "file (plaintext)"
    assert "token" not in r.stdout.lower().replace("tokens:", "")
    assert "plaintext" in r.stderr  # the opt-in warning

    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    w = who.json()
    assert (w["role"], w["organization"]["name"], w["auth_method"]) == ("admin", "Acme", "session")
    assert w["credential_source"] == "file (plaintext)"

    human = kt("auth", "whoami", env=env)
    assert "alice@example.com" in human.stdout and "Acme" in human.stdout

    st = kt("auth", "status", "--json", env=env)
    assert st.code == 0
    s = st.json()
    assert (
        s["credential_source"] == "file (plaintext)" and s["user"]["email"] == "alice@example.com"
    )
    session_file = next(p for p in stored_files(env) if p.parent.name == "credentials")
    stored = json.loads(session_file.read_text())
    assert stored["access_token"] not in st.stdout + st.stderr
    assert stored["refresh_token"] not in st.stdout + st.stderr

    out = kt("auth", "logout", env=env)
    assert out.code == 0, out.stderr
    assert "Logged out" in out.stdout
    assert not session_file.exists()
    again = kt("auth", "whoami", "--json", env=env)
    assert again.code == 3
    assert again.error()["code"] == "auth.login_required"
    # logging out twice is fine
    assert kt("auth", "logout", env=env).code == 0


def test_file_store_permissions(env):
    assert login(env).code == 0
    (session_file,) = [p for p in stored_files(env) if p.parent.name == "credentials"]
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(session_file.parent.stat().st_mode) == 0o700


def test_session_is_refused_after_server_side_logout(env, devserver):
    assert login(env).code == 0
    stored = json.loads(
        next(p for p in stored_files(env) if p.parent.name == "credentials").read_text()
    )
    assert kt("auth", "logout", env=env).code == 0
    import httpx2

    r = httpx2.get(
        devserver.url + "/v1/auth/whoami",
        headers={"Authorization": f"Bearer {stored['access_token']}"},
    )
    assert r.status_code == 401


def test_no_keyring_fails_closed_and_writes_nothing(env):
    r = kt("auth", "login", "--email", ALICE[0], "--password-stdin", env=env, input=ALICE[1] + "\n")
    assert r.code == 1
    assert "--insecure-storage" in r.stderr
    assert "Traceback" not in r.stderr
    assert not [p for p in stored_files(env) if "credentials" in p.parts]


def test_credential_store_file_in_config(env):
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text('credential_store = "file"\n')
    r = kt("auth", "login", "--email", ALICE[0], "--password-stdin", env=env, input=ALICE[1])
    assert r.code == 0, r.stderr
    st = kt("auth", "status", env=env)
    assert "file (plaintext)" in st.stdout


def test_wrong_password(env):
    r = kt(
        "auth",
        "login",
        "--email",
        ALICE[0],
        "--password-stdin",
        "--insecure-storage",
        "--json",
        env=env,
        input="nope\n",
    )
    assert r.code == 3
    assert r.error()["code"] == "auth.invalid_credentials"
    assert r.stdout == ""
    assert "nope" not in r.stderr
    assert kt("auth", "status", env=env).code == 3


def test_wrong_password_keeps_existing_session(env):
    assert login(env).code == 0
    assert (
        kt("auth", "login", "--email", ALICE[0], "--password-stdin", env=env, input="wrong\n").code
        == 3
    )
    assert kt("auth", "whoami", env=env).code == 0


def test_password_flag_works_with_warning(env):
    r = kt(
        "auth",
        "login",
        "--email",
        ALICE[0],
        "--password",
        ALICE[1],
        "--insecure-storage",
        env=env,
    )
    assert r.code == 0, r.stderr
    assert "insecure" in r.stderr and "--password-stdin" in r.stderr


def test_mfa_login_non_interactive_then_challenge(env):
    r = login(env, BOB, "--json")
    assert r.code == 4
    err = r.error()
    assert err["code"] == "auth.mfa_required"
    command = err["hint"].removeprefix("run: ")
    assert command == f"kt auth mfa challenge --token {err['mfa_token']} --insecure-storage"
    args = command.split()[1:]

    bad = kt(*args, env=env, input="000000\n")
    assert bad.code == 4 and "Traceback" not in bad.stderr

    code = totp.code(BOB_TOTP_SECRET)
    ok = kt(*args, "--json", env=env, input=code)
    assert ok.code == 0, ok.stderr
    assert ok.json()["mfa_authenticated"] is True
    who = kt("auth", "whoami", "--json", env=env).json()
    assert who["mfa_authenticated"] is True and who["role"] == "member"


def test_expired_mfa_token(tmp_path, devserver_factory):
    server = devserver_factory("--mfa-token-ttl", "0")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    err = login(env, BOB, "--json").error()
    code = totp.code(BOB_TOTP_SECRET)
    r = kt(
        "auth",
        "mfa",
        "challenge",
        "--token",
        err["mfa_token"],
        "--insecure-storage",
        "--json",
        env=env,
        input=code,
    )
    assert r.code == 3
    assert r.error()["code"] == "auth.mfa_token_expired"


def test_server_down(tmp_path):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=f"http://127.0.0.1:{free_port()}")
    r = login(env, ALICE, "--json")
    assert r.code == 5
    assert "cannot reach" in r.error()["message"]
    human = login(env)
    assert human.code == 5
    assert "Traceback" not in human.stderr
    assert human.stderr.startswith("Warning") or human.stderr.startswith("Error")


def test_logout_with_server_down_removes_local_session(tmp_path, devserver):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    assert login(env).code == 0
    devserver.stop()
    r = kt("auth", "logout", env=env)
    assert r.code == 5
    assert "may stay valid" in r.stdout
    assert kt("auth", "status", env=env).code == 3


def test_plain_http_to_remote_host_refused(tmp_path):
    env = base_env(tmp_path, KEEPTRUSTS_API_URL="http://api.example.com")
    r = login(env, ALICE, "--json")
    assert r.code == 2
    assert "https" in r.error()["message"]


def test_corrupt_config_file(env):
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text("profile = [unclosed\n")
    r = kt("auth", "whoami", env=env)
    assert r.code == 2
    assert "config.toml" in r.stderr and "not valid TOML" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2 and "Traceback" not in r.stderr


def test_unwritable_config_dir(tmp_path, devserver):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url)
    env["KEEPTRUSTS_CONFIG_DIR"] = str(blocker / "config")
    r = login(env, ALICE, "--json")
    assert r.code != 0
    assert "Traceback" not in r.stderr
    err = r.error()
    assert err["code"] in ("kt.store_error", "kt.config")


def test_interrupt_during_login_exits_130_and_stores_nothing(env):
    with login_blocked_on_password(env) as login:
        result = login.interrupt(timeout=20)  # while kt is blocked reading the password
    assert result.code == 130
    assert "Traceback" not in result.stderr
    assert "plaintext" not in result.stderr  # no session, so no word about storing one
    assert not [p for p in stored_files(env) if "credentials" in p.parts]


def test_profiles_are_separate(env):
    assert login(env).code == 0
    assert kt("auth", "whoami", "--profile", "other", env=env).code == 3
    env2 = dict(env, KEEPTRUSTS_PROFILE="other")
    assert login(env2, BOB).code == 4  # bob needs MFA; other profile still empty
    assert kt("auth", "whoami", "--json", env=env).json()["user"]["email"] == ALICE[0]
    assert login(dict(env, KEEPTRUSTS_PROFILE="ci"), ALICE).code == 0
    # logout affects the active profile only; --all all of them
    assert kt("auth", "logout", "--profile", "ci", env=env).code == 0
    assert kt("auth", "whoami", env=env).code == 0
    assert login(dict(env, KEEPTRUSTS_PROFILE="ci"), ALICE).code == 0
    r = kt("auth", "logout", "--all", "--json", env=env)
    assert r.code == 0
    assert {p["profile"] for p in r.json()["logged_out"] if p["was_logged_in"]} == {"default", "ci"}
    assert kt("auth", "whoami", env=env).code == 3


def test_session_api_url_is_remembered(env):
    assert login(env).code == 0
    no_url = {k: v for k, v in env.items() if k != "KEEPTRUSTS_API_URL"}
    r = kt("auth", "whoami", "--json", env=no_url)
    assert r.code == 0, r.stderr
    shown = kt("config", "show", "--json", env=no_url).json()
    assert shown["api_url"]["source"] == "session"


def test_session_not_sent_to_another_api_url(env):
    assert login(env).code == 0
    r = kt("auth", "whoami", "--api-url", "https://api.example.com", "--json", env=env)
    assert r.code == 3
    assert "logged in to http://127.0.0.1" in r.error()["message"]


def test_config_show_sources(env):
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text(
        'profile = "work"\n[profiles.work]\napi_url = "https://work.example.com"\n'
    )
    doc = kt("config", "show", "--json", env=env).json()
    assert doc["profile"] == {"value": "work", "source": "config file"}
    assert doc["api_url"]["source"] == "environment"
    no_url = {k: v for k, v in env.items() if k != "KEEPTRUSTS_API_URL"}
    doc = kt("config", "show", "--json", "--profile", "x", env=no_url).json()
    assert doc["profile"] == {"value": "x", "source": "flag"}
    assert doc["api_url"] == {"value": "https://api.keeptrusts.com", "source": "default"}
    doc = kt("config", "show", "--json", env=no_url).json()
    assert doc["api_url"] == {"value": "https://work.example.com", "source": "config file"}
    assert doc["credential_store"] == {"value": "keyring", "source": "default"}


@pytest.mark.parametrize(
    "args",
    [
        ("auth", "whoami"),
        ("auth", "status"),
        ("auth", "token", "list"),
        ("auth", "token", "create", "--name", "x", "--scope", "tokens:read"),
        ("auth", "token", "revoke", "--token-id", "tok_x"),
        ("auth", "token", "rotate", "--id", "tok_x"),
    ],
)
def test_not_logged_in_json_error(env, args):
    r = kt(*args, "--json", env=env)
    assert r.code == 3
    assert r.error()["code"] == "auth.login_required"
    assert "Traceback" not in r.stderr


def test_usage_error_exit_2(env):
    r = kt("auth", "login", "--no-such-flag", env=env)
    assert r.code == 2
    r = kt("auth", "token", "create", "--name", "x", "--json", env=env)
    assert r.code == 2
    assert json.loads(r.stderr)["error"]["code"] == "kt.usage"


def test_version_and_help(env):
    r = kt("--version", env=env)
    assert r.code == 0 and r.stdout.startswith("kt, version")
    r = kt("auth", "token", "revoke", "--help", env=env)
    assert "--token-id, --id" in r.stdout


def test_status_does_not_print_secret_and_env_token_source(env):
    secret = "kt_live_canary_not_a_real_token_123456"
    r = kt("auth", "status", "--json", env=dict(env, KEEPTRUSTS_API_TOKEN=secret))
    assert r.code == 0
    assert r.json()["credential_source"] == "environment"
    assert secret not in r.stdout + r.stderr
    r = kt("config", "show", env=dict(env, KEEPTRUSTS_API_TOKEN=secret))
    assert secret not in r.stdout + r.stderr
