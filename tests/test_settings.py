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
    issuer_from_api,
    resolve,
    resource_metadata_source,
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
    """No issuer named: the API's resource metadata says (RFC 9728, issue 14); until a sign-in
    read it, the value is the API URL, which an API without such metadata is."""
    found = Setting(API, resource_metadata_source(API))
    assert issuer_and_client(resolve(env)) == (found, Setting("kt-cli", DEFAULT))
    assert issuer_from_api(found) and found.source == "resource metadata of https://api.example"
    last = resolve(env, discovered_issuer="https://idp.example")
    assert last.issuer == Setting("https://idp.example", found.source)
    named = resolve(env, issuer_flag="https://idp.example").issuer
    assert not issuer_from_api(named)


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
    assert shown["issuer"] == {"value": API, "source": resource_metadata_source(API)}
    assert shown["client_id"] == {"value": "kt-cli", "source": DEFAULT}


def test_the_session_api_url_counts_only_where_nothing_names_one():
    explicit = Setting(API, ENVIRONMENT)
    assert api_url_with_session(explicit, "http://127.0.0.1:8765") == explicit
    assert api_url_with_session(Setting(API, DEFAULT), "http://127.0.0.1:8765/") == Setting(
        "http://127.0.0.1:8765", SESSION
    )


def test_the_browser_port_is_the_flag_else_the_profile_s_else_any(env, tmp_path):
    """Issue 10 case 10: a per-profile `port` for providers that match redirect URIs exactly."""
    assert resolve(env).port == Setting("0", DEFAULT)
    (tmp_path / "config.toml").write_text("[profiles.default]\nport = 8400\n")
    assert resolve(env).port == Setting("8400", CONFIG)
    assert resolve(env, port_flag=0).port == Setting("0", FLAG)
    assert resolve(env, port_flag=9000).port == Setting("9000", FLAG)
    write_profile(env, port="8401")  # as `kt config set port 8401` writes it
    assert resolve(env).port == Setting("8401", CONFIG)
    assert resolve(env).as_dict()["port"] == {"value": "8401", "source": CONFIG}


@pytest.mark.parametrize("value", ['"8400x"', '"-1"', "65536", "-1", "true", "8400.0", "[8400]"])
def test_a_port_that_is_not_one_is_a_config_error_naming_the_file(env, tmp_path, value):
    from kt_login.errors import ConfigError

    (tmp_path / "config.toml").write_text(f"[profiles.default]\nport = {value}\n")
    with pytest.raises(ConfigError) as caught:
        resolve(env)
    assert str(tmp_path / "config.toml") in caught.value.message
    assert "port must be a number from 0 to 65535" in caught.value.message


def test_send_resource_is_the_profile_s_else_auto(env, tmp_path):
    """RFC 8707 per profile: a TOML boolean or "true"/"false" (as kt config set writes it)."""
    assert resolve(env).send_resource == Setting("auto", DEFAULT)
    for written, value in (("false", "false"), ("true", "true"), ('"false"', "false")):
        (tmp_path / "config.toml").write_text(f"[profiles.default]\nsend_resource = {written}\n")
        assert resolve(env).send_resource == Setting(value, CONFIG)
    from kt_login.errors import ConfigError

    (tmp_path / "config.toml").write_text('[profiles.default]\nsend_resource = "no"\n')
    with pytest.raises(ConfigError) as caught:
        resolve(env)
    assert "send_resource must be true or false" in caught.value.message
