"""Issue 12's friction list, through the real `kt` against kt-devserver: the common options
anywhere on the line, a new sign-in that says whom it replaced, --scope never silently ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kt_login.cli import common_options_last
from kt_login.store import FileStore
from tests.kt_process import ALICE, kt, password_login
from tests.sample_sessions import make_session


@pytest.fixture
def env(env):
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text('credential_store = "file"\n')
    return env


def test_common_options_before_the_verbs_work(env):
    assert password_login(env, ALICE, "--profile", "work").code == 0
    who = kt("--profile", "work", "auth", "whoami", env=env)
    assert who.code == 0, who.stderr
    assert ALICE[0] in who.stdout
    status = kt("--json", "auth", "--profile=work", "status", env=env)
    assert status.code == 0, status.stderr
    assert status.json()["profile"] == "work"
    other = kt("auth", "--profile", "nobody", "whoami", env=env)
    assert other.code == 3 and "profile 'nobody'" in other.stderr


@pytest.mark.parametrize(
    "given, read",
    [
        (["--profile", "w", "auth", "whoami"], ["auth", "whoami", "--profile", "w"]),
        (
            ["auth", "--json", "token", "list", "--all"],
            ["auth", "token", "list", "--all", "--json"],
        ),
        (["--api-url=http://x", "config", "show"], ["config", "show", "--api-url=http://x"]),
        (["auth", "whoami", "--profile", "w"], ["auth", "whoami", "--profile", "w"]),
        (["--help"], ["--help"]),
        (["--profile"], ["--profile"]),  # no value: click says so
        (["auth", "login", "--email", "a", "--json"], ["auth", "login", "--email", "a", "--json"]),
    ],
)
def test_where_the_common_options_are_read(given, read):
    assert common_options_last(given) == read


def test_a_sign_in_as_someone_else_says_whom_it_replaced(env):
    assert password_login(env, ALICE).code == 0
    again = password_login(env, ALICE, "--json")
    assert again.code == 0 and again.json()["replaced"] is None  # the same account: nothing to say
    carol = make_session(
        api_url=env["KEEPTRUSTS_API_URL"], user_email="carol@example.com", user_id="usr_carol"
    )
    store = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"]))
    store.save("default", carol)
    human = password_login(env, ALICE)
    assert human.code == 0, human.stderr
    assert (
        f"This replaced the session of carol@example.com at {env['KEEPTRUSTS_API_URL']} "
        "(profile 'default'), which was signed out." in human.stdout
    )
    store.save("default", carol)
    doc = password_login(env, ALICE, "--json").json()
    assert doc["replaced"] == {"user": "carol@example.com", "api_url": env["KEEPTRUSTS_API_URL"]}


def test_scope_is_refused_for_a_password_sign_in(env):
    r = password_login(env, ALICE, "--scope", "tokens:read")
    assert r.code == 2
    assert "--scope is for --browser and --device" in r.stderr
    assert kt("auth", "status", env=env).code == 3  # nothing was signed in


def test_config_show_and_status_name_the_store_in_the_same_words(env):
    assert password_login(env, ALICE).code == 0  # credential_store = "file" in config.toml
    status = kt("auth", "status", env=env)
    shown = kt("config", "show", env=env)
    assert "Stored in: file (plaintext)" in status.stdout
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()}
    assert lines["credential_store"].split("  (")[0].split(None, 1)[1] == "file (plaintext)"
    assert lines["session_stored_in"].split("  (")[0].split(None, 1)[1] == "file (plaintext)"
    assert kt("config", "show", "--json", env=env).json()["credential_store"]["value"] == "file"


@pytest.mark.parametrize(
    "url, fix",
    [
        ("http://api.example.com/api", "use https://api.example.com/api"),
        ("api.example.com", "use https://api.example.com"),
        ("https://api.example.com/v1?x=1", "use https://api.example.com/v1"),
    ],
)
def test_a_bad_api_url_is_named_with_the_fix(tmp_path, url, fix):
    from tests.kt_process import base_env

    for env in (base_env(tmp_path, KEEPTRUSTS_API_URL=url), base_env(tmp_path)):
        args = (
            ("auth", "status")
            if "KEEPTRUSTS_API_URL" in env
            else ("auth", "status", "--api-url", url)
        )
        r = kt(*args, env=env)
        assert r.code == 2, r.stderr
        error, hint = r.stderr.strip().splitlines()[-2:]
        assert repr(url) in error and hint == fix
        fixed = kt("auth", "status", "--api-url", fix.removeprefix("use "), env=base_env(tmp_path))
        assert fixed.code == 3  # the suggested URL is accepted: only no session is left


def test_unknown_config_keys_are_warned_about_with_the_nearest_key(tmp_path):
    from tests.kt_process import base_env

    env = base_env(tmp_path)
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text(
        'credentail_store = "file"\nprofile = "work"\n'
        '[profiles.work]\napi-url = "https://api.example.com"\nprofile = "x"\ncolour = "red"\n'
    )
    r = kt("auth", "status", env=env)
    assert r.code == 3
    warnings = [line for line in r.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 4, r.stderr
    assert (
        "unknown key 'credentail_store' at the top level is ignored (did you mean "
        "'credential_store'?)" in warnings[0]
    )
    assert (
        "unknown key 'api-url' in [profiles.work] is ignored (did you mean 'api_url'?)"
        in (warnings[1])
    )
    assert "'profile' is not read in [profiles.work]" in warnings[2]
    assert "unknown key 'colour'" in warnings[3] and "known keys: api_url" in warnings[3]
    as_json = kt("auth", "status", "--json", env=env)
    lines = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert [line["warning"]["code"] for line in lines[:4]] == ["kt.config_unknown_key"] * 4
    clean = kt("auth", "status", env=base_env(tmp_path / "clean"))
    assert "Warning" not in clean.stderr
