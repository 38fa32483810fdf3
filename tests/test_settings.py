"""Settings precedence for the sign-in issuer and client: flag > profile config > the last
sign-in's > the API URL and kt-cli, each with its source; and the stored session's API URL."""

from __future__ import annotations

import pytest

from kt_login.config import (
    CONFIG,
    DEFAULT,
    ENVIRONMENT,
    FLAG,
    SESSION,
    Setting,
    api_url_with_session,
    resolve,
)

API = "https://api.example"


@pytest.fixture
def env(tmp_path):
    return {"KEEPTRUSTS_CONFIG_DIR": str(tmp_path), "KEEPTRUSTS_API_URL": API}


def write_profile(env, **values: str) -> None:
    lines = ["[profiles.default]"] + [f'{k} = "{v}"' for k, v in values.items()]
    with open(f"{env['KEEPTRUSTS_CONFIG_DIR']}/config.toml", "w") as f:
        f.write("\n".join(lines) + "\n")


def issuer_and_client(settings) -> tuple[Setting, Setting]:
    return settings.issuer, settings.client_id


def test_defaults_are_the_api_url_and_kt_cli(env):
    assert issuer_and_client(resolve(env)) == (Setting(API, DEFAULT), Setting("kt-cli", DEFAULT))


def test_the_last_sign_in_is_remembered(env):
    settings = resolve(env, session_issuer="https://idp.example", session_client_id="app")
    assert issuer_and_client(settings) == (
        Setting("https://idp.example", SESSION),
        Setting("app", SESSION),
    )


def test_the_profile_config_beats_the_last_sign_in(env):
    write_profile(env, issuer="https://sso.example", client_id="corp-cli")
    settings = resolve(env, session_issuer="https://idp.example", session_client_id="app")
    assert issuer_and_client(settings) == (
        Setting("https://sso.example", CONFIG),
        Setting("corp-cli", CONFIG),
    )


def test_flags_beat_everything_and_a_client_belongs_to_its_issuer(env):
    write_profile(env, issuer="https://sso.example", client_id="corp-cli")
    settings = resolve(env, issuer_flag="https://other.example", session_issuer="https://idp")
    # the config's client is a client at the config's issuer, not at the flag's
    assert issuer_and_client(settings) == (
        Setting("https://other.example", FLAG),
        Setting("kt-cli", DEFAULT),
    )
    both = resolve(env, issuer_flag="https://other.example", client_id_flag="mine")
    assert both.client_id == Setting("mine", FLAG)
    with_config_issuer = resolve(env, client_id_flag="mine")
    assert issuer_and_client(with_config_issuer) == (
        Setting("https://sso.example", CONFIG),
        Setting("mine", FLAG),
    )


def test_settings_as_dict_name_the_issuer_and_client(env):
    shown = resolve(env).as_dict()
    assert shown["issuer"] == {"value": API, "source": DEFAULT}
    assert shown["client_id"] == {"value": "kt-cli", "source": DEFAULT}


def test_the_session_api_url_counts_only_where_nothing_names_one():
    explicit = Setting(API, ENVIRONMENT)
    assert api_url_with_session(explicit, "http://127.0.0.1:8765") == explicit
    assert api_url_with_session(Setting(API, DEFAULT), "http://127.0.0.1:8765/") == Setting(
        "http://127.0.0.1:8765", SESSION
    )
