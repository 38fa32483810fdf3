"""Profiles without editing TOML: `kt auth status --all`, `kt auth switch`, `kt config
get/set/unset`, and profile names on Tab — the real `kt` against a real kt-devserver."""

from __future__ import annotations

import dataclasses
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from kt_login.store import FileStore
from tests.kt_process import ALICE, base_env, kt, password_login


def cfg(env: dict[str, str]) -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"])


def config_file(env: dict[str, str]) -> Path:
    return cfg(env) / "config.toml"


def login(env: dict[str, str], profile: str, who: tuple[str, str] = ALICE) -> None:
    r = password_login(env, who, "--insecure-storage", "--profile", profile)
    assert r.code == 0, r.stderr


def write_config(env: dict[str, str], text: str) -> None:
    cfg(env).mkdir(mode=0o700, parents=True, exist_ok=True)
    config_file(env).write_text(text)
    config_file(env).chmod(0o600)


# --------------------------------------------------------------------------- status --all


def test_status_all_lists_every_profile_and_why_one_is_active(env, devserver):
    login(env, "work")
    login(env, "other")
    write_config(env, '[profiles.staging]\napi_url = "https://staging.example.com"\n')
    # make "other" expired beyond refresh: its row says so
    store = FileStore(cfg(env))
    other = store.load("other")
    assert other is not None
    past = time.time() - 60
    store.save("other", dataclasses.replace(other, expires_at=past, refresh_expires_at=past))

    r = kt("auth", "status", "--all", "--json", "--profile", "work", env=env)
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["active_profile"] == "work" and doc["active_because"] == "flag"
    rows = {row["profile"]: row for row in doc["profiles"]}
    assert sorted(rows) == ["default", "other", "staging", "work"]
    assert rows["work"]["active"] and rows["work"]["state"] == "logged in"
    assert rows["work"]["account"] == ALICE[0]
    assert rows["work"]["credential_store"] == "file (plaintext)"
    assert rows["work"]["api_url"] == devserver.url
    assert rows["work"]["expires_at"].endswith("Z")
    assert rows["other"]["state"] == "expired" and not rows["other"]["logged_in"]
    assert rows["staging"]["state"] == "not logged in"
    assert not any(row["active"] for name, row in rows.items() if name != "work")
    for row in rows.values():  # never a token
        assert not any("kta_" in str(v) for v in row.values())

    r = kt("auth", "status", "--all", env={**env, "KEEPTRUSTS_PROFILE": "other"})
    assert r.code == 3  # the active profile has no usable session: as `kt auth status` says
    assert "Active profile: other (from $KEEPTRUSTS_PROFILE)" in r.stdout
    assert r.stderr.splitlines()[-1] == "run: kt auth login"

    r = kt("auth", "status", "--all", "--json", env={**env, "KEEPTRUSTS_PROFILE": "other"})
    assert r.code == 3
    assert r.json()["active_because"] == "environment"
    assert r.error()["exit_code"] == 3

    r = kt("auth", "status", "--all", env=env)
    assert r.code == 3  # default: never signed in
    assert "Active profile: default (from default)" in r.stdout
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PROFILE", "ACCOUNT", "API", "URL", "STORE", "EXPIRES", "STATE"]
    assert any(line.startswith("*") and " default " in line for line in lines)


def test_status_all_with_an_api_token_in_the_environment(env):
    r = kt("auth", "status", "--all", "--json", env={**env, "KEEPTRUSTS_API_TOKEN": "kt_live_x"})
    assert r.code == 0, r.stderr
    assert r.json()["api_token_in_environment"] is True
    assert "kt_live_x" not in r.stdout


# --------------------------------------------------------------------------- switch


def test_switch_sets_the_default_profile_in_the_config_file(env):
    login(env, "work")
    write_config(env, '# my settings\ncredential_store = "file"  # no keyring here\n')
    r = kt("auth", "switch", "work", env=env)
    assert r.code == 0, r.stderr
    assert (
        r.stdout.strip()
        == f"Switched to profile 'work' ({ALICE[0]} at {env['KEEPTRUSTS_API_URL']})."
    )
    text = config_file(env).read_text()
    assert text.startswith("# my settings\n")
    assert 'credential_store = "file"  # no keyring here\n' in text
    assert tomllib.loads(text) == {"credential_store": "file", "profile": "work"}
    assert stat.S_IMODE(config_file(env).stat().st_mode) == 0o600

    # every later command uses it
    r = kt("auth", "whoami", "--json", env=env)
    assert r.code == 0 and r.json()["profile"] == "work"
    r = kt("auth", "status", "--all", "--json", env=env)
    assert r.json()["active_profile"] == "work" and r.json()["active_because"] == "config file"

    # KEEPTRUSTS_PROFILE still wins, and kt says so
    r = kt("auth", "switch", "default", env={**env, "KEEPTRUSTS_PROFILE": "work"})
    assert r.code == 0
    assert "KEEPTRUSTS_PROFILE=work is set here and wins over the config file" in r.stderr


def test_switch_refuses_an_unknown_profile_with_the_list(env):
    login(env, "work")
    write_config(env, '[profiles.staging]\napi_url = "https://staging.example.com"\n')
    before = config_file(env).read_bytes()
    for args in (("nope",), ("nope", "--json")):
        r = kt("auth", "switch", *args, env=env)
        assert r.code == 2
        assert r.stdout == ""
    assert "known profiles: default, staging, work" in r.error()["message"]
    assert r.error()["hint"] == "run: kt auth login --profile nope"
    assert config_file(env).read_bytes() == before
    r = kt("auth", "switch", "../etc", env=env)
    assert r.code == 2 and "invalid profile name" in r.stderr


# --------------------------------------------------------------------------- config get/set/unset


def test_config_set_get_unset_round_trip_keeping_comments(env):
    write_config(
        env,
        "# kt settings, by hand\n"
        'profile = "work"\n'
        "\n"
        "[profiles.work]\n"
        "# the company API\n"
        'api_url = "https://api.example.com"   # prod\n'
        'client_id = "kt-cli"\n'
        "\n"
        "[profiles.other]\n"
        'credential_store = "file"\n',
    )
    r = kt("config", "set", "api_url", "https://api2.example.com/", env=env)
    assert r.code == 0, r.stderr
    assert "Set profiles.work.api_url = https://api2.example.com" in r.stdout
    text = config_file(env).read_text()
    assert 'api_url = "https://api2.example.com"   # prod\n' in text  # normalized, comment kept
    assert text.startswith("# kt settings, by hand\n")
    assert "# the company API\n" in text

    r = kt("config", "set", "issuer", "https://sso.example.org", "--profile", "new", env=env)
    assert r.code == 0, r.stderr
    r = kt("config", "set", "credential_store", "keyring", env=env)
    assert r.code == 0, r.stderr
    assert tomllib.loads(config_file(env).read_text()) == {
        "profile": "work",
        "credential_store": "keyring",
        "profiles": {
            "work": {"api_url": "https://api2.example.com", "client_id": "kt-cli"},
            "other": {"credential_store": "file"},
            "new": {"issuer": "https://sso.example.org"},
        },
    }
    assert stat.S_IMODE(config_file(env).stat().st_mode) == 0o600

    r = kt("config", "get", "api_url", env=env)
    assert (r.code, r.stdout) == (0, "https://api2.example.com\n")
    r = kt("config", "get", "issuer", "--profile", "new", "--json", env=env)
    assert r.json() == {
        "key": "issuer",
        "profile": "new",
        "value": "https://sso.example.org",
        "config_file": str(config_file(env)),
    }
    # what kt reads is what was set
    r = kt("config", "show", "--json", "--profile", "new", env={**env, "KEEPTRUSTS_API_URL": ""})
    assert r.json()["issuer"] == {"value": "https://sso.example.org", "source": "config file"}

    r = kt("config", "unset", "client_id", "--profile", "work", env=env)
    assert r.code == 0 and "Removed profiles.work.client_id" in r.stdout
    r = kt("config", "unset", "client_id", "--profile", "work", env=env)
    assert r.code == 0 and "was not set" in r.stdout
    for args in ((), ("--json",)):
        r = kt("config", "get", "client_id", "--profile", "work", *args, env=env)
        assert r.code == 1 and r.stdout == ""
    assert r.error()["code"] == "kt.config_not_set"
    assert "client_id" not in tomllib.loads(config_file(env).read_text())["profiles"]["work"]
    assert "# prod" in config_file(env).read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("api_url", "http://api.example.com"), "refusing plain http"),
        (("api_url", "not a url"), "must be an https URL"),
        (("credential_store", "vault"), 'must be "keyring" or "file"'),
        (("issuer", "https://sso.example.org/?x=1", "--profile", "p"), "no query or fragment"),
        (("client_id", "two words", "--profile", "p"), "one word"),
        (("profile", "../x"), "invalid profile name"),
        (("profile", "work", "--profile", "p"), "not a profile's setting"),
        (("api_urll", "https://x.example"), "unknown setting 'api_urll'"),
        (("api_url", "https://x.example", "--profile", "bad/name"), "invalid profile name"),
    ],
)
def test_config_set_refuses_what_kt_would_refuse_to_read(env, args, says):
    write_config(env, 'profile = "work"  # keep\n')
    before = config_file(env).read_bytes()
    for extra in ((), ("--json",)):
        r = kt("config", "set", *args, *extra, env=env)
        assert r.code == 2, r.stderr
        assert r.stdout == ""
    assert says in r.error()["message"]
    assert config_file(env).read_bytes() == before


def test_config_set_repairs_a_value_kt_refuses(env):
    write_config(env, 'credential_store = "vault"\n')
    assert kt("auth", "status", env=env).code == 2  # the file is refused as it is
    r = kt("config", "set", "credential_store", "file", env=env)
    assert r.code == 0, r.stderr
    assert kt("auth", "status", env=env).code == 3  # readable again: just not logged in


def test_config_set_leaves_a_file_it_cannot_edit_safely_untouched(env):
    write_config(env, 'profiles = { work = { api_url = "https://a.example.com" } }\n')
    before = config_file(env).read_bytes()
    r = kt("config", "set", "client_id", "x", "--profile", "work", env=env)
    assert r.code == 2
    assert "cannot change" in r.stderr and "nothing was written" in r.stderr
    assert config_file(env).read_bytes() == before


def test_config_set_refuses_a_config_file_others_may_change(env):
    write_config(env, 'profile = "work"\n')
    config_file(env).chmod(0o666)
    r = kt("config", "set", "profile", "other", env=env)
    assert r.code == 2
    assert "other users may change it" in r.stderr
    assert r.stderr.splitlines()[-1] == f"run: chmod go-w {config_file(env)}"
    assert tomllib.loads(config_file(env).read_text()) == {"profile": "work"}


def test_config_set_creates_the_config_dir_owner_only(tmp_path):
    env = base_env(tmp_path)
    r = kt("config", "set", "api_url", "https://api.example.com", "--profile", "p", env=env)
    assert r.code == 0, r.stderr
    assert stat.S_IMODE(cfg(env).stat().st_mode) == 0o700
    assert stat.S_IMODE(config_file(env).stat().st_mode) == 0o600
    assert config_file(env).read_text() == '[profiles.p]\napi_url = "https://api.example.com"\n'
    leftovers = [p.name for p in cfg(env).iterdir() if p.name not in ("config.toml", "locks")]
    assert leftovers == []  # the temporary file of the atomic replace is gone
    assert stat.S_IMODE((cfg(env) / "locks").stat().st_mode) == 0o700


def test_config_sets_at_once_all_land(tmp_path):
    env = base_env(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kt_login", "config", "set", "api_url"]
            + [f"https://api{i}.example.com", "--profile", f"p{i}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    profiles = tomllib.loads(config_file(env).read_text())["profiles"]
    assert profiles == {f"p{i}": {"api_url": f"https://api{i}.example.com"} for i in range(8)}


def test_config_set_warns_when_the_environment_wins(env):
    r = kt("config", "set", "api_url", "https://api.example.com", "--profile", "p", env=env)
    assert r.code == 0
    assert "KEEPTRUSTS_API_URL is set here and wins over the config file's api_url" in r.stderr


# --------------------------------------------------------------------------- Tab


def complete(env: dict[str, str], words: str) -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    proc = subprocess.run(
        [sys.executable, "-m", "kt_login"],
        env={**env, "_KT_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def test_profile_names_complete_on_tab(env):
    login(env, "work")
    write_config(env, '[profiles.staging]\napi_url = "https://staging.example.com"\n')
    assert complete(env, "kt auth switch ") == ["plain,default", "plain,staging", "plain,work"]
    assert complete(env, "kt auth switch st") == ["plain,staging"]
    assert complete(env, "kt auth whoami --profile w") == ["plain,work"]
    assert complete(env, "kt config set api_url x --profile ") == [
        "plain,default",
        "plain,staging",
        "plain,work",
    ]
    # a config file kt refuses completes nothing rather than failing
    config_file(env).write_text("not toml [")
    assert complete(env, "kt auth switch ") == []
