"""Profiles and settings: flag > environment > config file > default, each value with its source.

The config file is `<config dir>/config.toml`; the directory is `KEEPTRUSTS_CONFIG_DIR` or the
platform's user config dir. Only kt reads it; nothing secret belongs in it.

    profile = "work"                      # the active profile when neither flag nor env names one
    credential_store = "keyring"          # default for every profile: "keyring" or "file"
    keyring_max_bytes = 2048              # a session larger than this is sealed in an
                                          # envelope (the key in the keyring); 0: no limit of ours

    [profiles.work]
    api_url = "https://api.keeptrusts.com"
    credential_store = "file"             # per-profile override
    issuer = "https://login.example.com"  # OpenID issuer for --browser/--device (default: the
                                          # one the API's resource metadata names, RFC 9728,
                                          # else the API URL)
    client_id = "kt-cli"                  # the OAuth client at that issuer
    port = 53682                          # loopback port of --browser (default: any free one)
    redirect_host = "localhost"           # host of --browser's redirect: 127.0.0.1 (default),
                                          # [::1], or localhost (both, for IP-literal refusers)
    login_method = "device"               # kt auth login without a method flag: device,
                                          # browser, or paste (as --remote)
    clipboard = true                      # device sign-ins copy the code (as --clipboard)
    send_resource = false                 # RFC 8707 resource=<api_url> in OAuth requests:
                                          # true always, false never (a provider that refuses
                                          # it); unset: when the API's resource metadata named
                                          # the issuer
    dpop = true                           # browser/device sign-ins bind the tokens to a key
                                          # kept with the session (DPoP, RFC 9449; --dpop)
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from .errors import ConfigError, KtError, UsageError
from .trusted_files import check_directory, read_file

DEFAULT_API_URL = "https://api.keeptrusts.com"
DEFAULT_PROFILE = "default"
DEFAULT_CLIENT_ID = "kt-cli"
CONFIG_FILE = "config.toml"
MAX_CONFIG_BYTES = 256 << 10
CREDENTIAL_STORES = ("keyring", "file")

# The keys config.toml may hold: at the top level, and in a [profiles.NAME] table.
TOP_LEVEL_KEYS = ("profile", "credential_store", "keyring_max_bytes")
PROFILE_KEYS = (
    "api_url",
    "credential_store",
    "issuer",
    "client_id",
    "port",
    "redirect_host",
    "login_method",
    "clipboard",
    "send_resource",
    "dpop",
)
# The loopback port of browser sign-ins; 0 lets the system pick a free one.
ANY_PORT = 0
MAX_PORT = 65535
# The host a browser sign-in's redirect_uri names (issue 13 item 2): an IP literal, or
# `localhost` (listened for on both 127.0.0.1 and ::1) for providers that refuse literals.
REDIRECT_HOSTS = ("127.0.0.1", "[::1]", "localhost")
DEFAULT_REDIRECT_HOST = "127.0.0.1"
# How `kt auth login` signs in when no method flag says (issue 13 item 3); "auto": kt chooses.
# "paste" is --remote: the link to open anywhere and the provider's answer pasted back.
LOGIN_METHODS = ("device", "browser", "paste")
AUTO_LOGIN_METHOD = "auto"
# A yes/no key: whether device sign-ins copy the user code to the clipboard (as --clipboard,
# issue 12), whether sign-ins are DPoP-bound (as --dpop, issue 15). config.toml may say it as a
# TOML boolean or as the string `kt config set` writes.
SWITCH_VALUES = ("true", "false")
# RFC 8707's resource parameter (send_resource): "auto" sends it when the API's resource
# metadata named the issuer (RFC 9728).
SEND_RESOURCE = ("true", "false")
AUTO_SEND_RESOURCE = "auto"

ENV_API_URL = "KEEPTRUSTS_API_URL"
ENV_API_TOKEN = "KEEPTRUSTS_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
ENV_PROFILE = "KEEPTRUSTS_PROFILE"
ENV_CONFIG_DIR = "KEEPTRUSTS_CONFIG_DIR"
ENV_LOGIN_METHOD = "KEEPTRUSTS_LOGIN_METHOD"
ENV_KEYRING_MAX_BYTES = "KEEPTRUSTS_KEYRING_MAX_BYTES"
# The largest session kt puts whole in the keyring (issue 13 item 6); larger ones are sealed in
# an envelope. "0": no limit of kt's (a backend's own known limit still applies).
NO_SIZE_LIMIT = "0"
MAX_SIZE_LIMIT = (1 << 40) - 1

# A profile name becomes a file name and a keyring username, so it is kept strict.
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LOOPBACK_NAMES = {"localhost"}
# Whitespace, controls and backslashes: parsers disagree on them, so no URL kt uses has one.
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f\\]")

FLAG, ENVIRONMENT, CONFIG, SESSION, DEFAULT = (
    "flag",
    "environment",
    "config file",
    "session",
    "default",
)
# The issuer's source when nothing names one: the API's protected resource metadata (RFC 9728),
# read at each sign-in (signin/provider.py); the value is the API URL until a sign-in found it.
RESOURCE_METADATA = "resource metadata"


def resource_metadata_source(api_url: str) -> str:
    """The source of an issuer found in the resource metadata of `api_url`."""
    return f"{RESOURCE_METADATA} of {api_url}"


def issuer_from_api(issuer: Setting) -> bool:
    """Whether no one named this issuer: a sign-in asks the API's resource metadata."""
    return issuer.source.startswith(RESOURCE_METADATA)


@dataclass(frozen=True)
class Setting:
    value: str
    source: str  # FLAG, ENVIRONMENT, CONFIG, SESSION, DEFAULT or resource_metadata_source(...)


@dataclass(frozen=True)
class Settings:
    config_dir: Setting
    profile: Setting
    api_url: Setting
    credential_store: Setting
    # The OpenID issuer and OAuth client for browser and device sign-ins.
    issuer: Setting
    client_id: Setting
    # The loopback port of browser sign-ins ("0": any free port): --port, else the profile's
    # `port`, for a provider that accepts only the exact redirect URIs registered with it.
    port: Setting = Setting(str(ANY_PORT), DEFAULT)
    # The redirect_uri's host: --redirect-host, else the profile's `redirect_host`.
    redirect_host: Setting = Setting(DEFAULT_REDIRECT_HOST, DEFAULT)
    # The sign-in method without a method flag: KEEPTRUSTS_LOGIN_METHOD, else the profile's
    # `login_method`, else "auto" (kt chooses by what the machine can do).
    login_method: Setting = Setting(AUTO_LOGIN_METHOD, DEFAULT)
    # "true": a device sign-in copies its user code (the profile's `clipboard`, or --clipboard).
    clipboard: Setting = Setting("false", DEFAULT)
    # The keyring's size limit for a session in bytes ("0": none of kt's):
    # KEEPTRUSTS_KEYRING_MAX_BYTES, else config.toml's top-level `keyring_max_bytes`.
    keyring_max_bytes: Setting = Setting(NO_SIZE_LIMIT, DEFAULT)
    # RFC 8707's resource parameter: the profile's `send_resource` ("true"/"false"), else "auto".
    send_resource: Setting = Setting(AUTO_SEND_RESOURCE, DEFAULT)
    # "true": browser and device sign-ins are DPoP-bound (RFC 9449): --dpop, else the
    # profile's `dpop`.
    dpop: Setting = Setting("false", DEFAULT)
    # What config.toml holds that kt does not read, said with the nearest key kt knows.
    unknown_keys: tuple[str, ...] = ()

    @property
    def dir(self) -> Path:
        return Path(self.config_dir.value)

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {
            name: {"value": s.value, "source": s.source}
            for name, s in (
                ("config_dir", self.config_dir),
                ("profile", self.profile),
                ("api_url", self.api_url),
                ("credential_store", self.credential_store),
                ("issuer", self.issuer),
                ("client_id", self.client_id),
                ("port", self.port),
                ("redirect_host", self.redirect_host),
                ("login_method", self.login_method),
                ("clipboard", self.clipboard),
                ("keyring_max_bytes", self.keyring_max_bytes),
                ("send_resource", self.send_resource),
                ("dpop", self.dpop),
            )
        }


def config_dir(env: Mapping[str, str]) -> Setting:
    if env.get(ENV_CONFIG_DIR):
        return Setting(env[ENV_CONFIG_DIR], ENVIRONMENT)
    import platformdirs

    return Setting(platformdirs.user_config_dir("keeptrusts", appauthor=False), DEFAULT)


def load_config_file(directory: Path) -> dict[str, Any]:
    """The parsed config file, `{}` when there is none. The file and its directory must pass the
    ownership rule (no other user may change them, LF-01); a broken or refused file is a one-line
    ConfigError."""
    if not check_directory(directory, error=ConfigError):
        return {}
    path = directory / CONFIG_FILE
    data = read_file(path, limit=MAX_CONFIG_BYTES, error=ConfigError)
    if data is None:
        return {}
    return parse_config(data, path)


def parse_config(data: bytes, path: Path) -> dict[str, Any]:
    """config.toml's bytes parsed, and its [profiles.NAME] tables checked (ConfigError)."""
    import tomllib  # only when there is a config file to read

    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid TOML ({exc})", hint="fix or remove the file"
        ) from None
    profiles = parsed.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise ConfigError(f"{path}: [profiles.NAME] entries must be tables")
    return parsed


def check_setting(key: str, value: str) -> str:
    """`value` as config.toml would hold it for `key`, by the rules `resolve` reads it with
    (UsageError otherwise): a profile name, a store name, an API URL (normalized), a client id
    (one word). The issuer's rule is flows.discovery.check_issuer, which sign-ins apply."""
    if key == "profile":
        return check_profile_name(value)
    if key == "credential_store":
        if value not in CREDENTIAL_STORES:
            raise UsageError(f'credential_store must be "keyring" or "file", not {value!r}')
        return value
    if key == "api_url":
        return normalize_api_url(value)
    if key == "client_id":
        if not value or _UNSAFE_IN_URL.search(value):
            raise UsageError("client_id must be one word: no spaces or control characters")
        return value
    if key == "port":
        port = port_number(value)
        if port is None:
            raise UsageError(f"port must be a number from 0 to {MAX_PORT}, not {value!r}")
        return str(port)
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise UsageError(f"{key} must be {_one_of(_CHOICES[key])}, not {value!r}")
        return value
    if key == "keyring_max_bytes":
        size = size_limit(value)
        if size is None:
            raise UsageError(f"{_SIZE_RULE}, not {value!r}")
        return str(size)
    raise UsageError(f"unknown setting {key!r}")


# The settings that take one of a few words, and those words.
_CHOICES: dict[str, tuple[str, ...]] = {
    "redirect_host": REDIRECT_HOSTS,
    "login_method": LOGIN_METHODS,
    "clipboard": SWITCH_VALUES,
    "dpop": SWITCH_VALUES,
    "send_resource": SEND_RESOURCE,
}


def _one_of(values: tuple[str, ...]) -> str:
    quoted = [f'"{v}"' for v in values]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


_SIZE_RULE = f"keyring_max_bytes must be a number of bytes from 0 (no limit) to {MAX_SIZE_LIMIT}"


def size_limit(value: object) -> int | None:
    """keyring_max_bytes as config.toml or the environment may hold it: a TOML integer or a
    string of digits, 0 (no limit) to MAX_SIZE_LIMIT; None for anything else."""
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) <= 13):
            return None
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SIZE_LIMIT:
        return value
    return None


def port_number(value: object) -> int | None:
    """A loopback port as config.toml may hold it: a TOML integer or a string of digits (as
    `kt config set` writes it), 0 to 65535; None for anything else."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PORT:
        return value
    return None


def unknown_keys(parsed: Mapping[str, Any], path: Path) -> tuple[str, ...]:
    """A warning for each key of config.toml that kt does not read (a typo is otherwise silently
    ignored), with the nearest key it knows (difflib) or where that key belongs."""
    top = (*TOP_LEVEL_KEYS, "profiles")
    said = [_unknown_key(key, top, PROFILE_KEYS, path, "at the top level") for key in parsed]
    profiles = parsed.get("profiles", {})
    for name, section in profiles.items() if isinstance(profiles, dict) else ():
        where = f"in [profiles.{name}]"
        said += [_unknown_key(key, PROFILE_KEYS, top, path, where) for key in section]
    return tuple(s for s in said if s)


def _unknown_key(
    key: object, known: tuple[str, ...], elsewhere: tuple[str, ...], path: Path, where: str
) -> str | None:
    if not isinstance(key, str) or key in known:
        return None
    shown = repr(key[:64])
    if key in elsewhere:
        return f"{path}: {shown} is not read {where}; kt ignores it"
    import difflib  # only for a key kt does not know

    near = difflib.get_close_matches(key.replace("-", "_").lower(), known, n=1, cutoff=0.6)
    guess = f" (did you mean {near[0]!r}?)" if near else f" (known keys: {', '.join(known)})"
    return f"{path}: unknown key {shown} {where} is ignored{guess}"


def is_profile_name(name: object) -> bool:
    return isinstance(name, str) and _PROFILE_NAME.fullmatch(name) is not None


def check_profile_name(name: str) -> str:
    """Return `name` if it is a valid profile name, else UsageError (exit 2)."""
    if not is_profile_name(name):
        shown = repr(name[:70]) if isinstance(name, str) else type(name).__name__
        raise UsageError(
            f"invalid profile name {shown}: use 1-64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return name


def is_loopback_host(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(url: str, what: str, *, error: type[KtError] = UsageError) -> SplitResult:
    """`url` parsed, once it satisfies the transport rule — the one place it is checked
    (ARCHITECTURE.md "Transport rule", SECURITY.md NT-01): an http(s) URL with an ASCII host and
    no credentials, https unless the host is loopback. `error` is what to raise otherwise:
    UsageError for a URL the user gave, ValidationFailed for one a server sent."""
    rule = f"{what} must be an https URL (http only on loopback hosts such as 127.0.0.1)"
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number in range raises here
    except ValueError:
        raise error(rule) from None
    host = parts.hostname or ""
    if (
        _UNSAFE_IN_URL.search(url)
        or parts.scheme not in ("https", "http")
        or not host
        or not host.isascii()
        or "@" in parts.netloc
    ):
        raise error(rule)
    if parts.scheme == "http" and not is_loopback_host(host):
        raise error(f"{rule}; refusing plain http for {host}")
    return parts


def normalize_api_url(url: str) -> str:
    """An API base URL that satisfies the transport rule, without a trailing slash. A URL that
    does not is named in the error, with the URL that would do when kt can tell (issue 12)."""
    given = url.strip()
    try:
        parts = check_transport(given, "the API URL")
    except UsageError as exc:
        raise UsageError(f"{exc.message} (got {_shown(given)})", hint=_api_url_fix(given)) from None
    if parts.query or parts.fragment:
        raise UsageError(
            f"invalid API URL {_shown(given)}: no query or fragment allowed",
            hint=f"use {urlunsplit(parts._replace(query='', fragment=''))}",
        )
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None and parts.port != (443 if parts.scheme == "https" else 80):
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc.lower()}{parts.path.rstrip('/')}"


def _shown(url: str) -> str:
    text = "".join(c if c.isprintable() and not c.isspace() else "?" for c in url)
    return repr(text if len(text) <= 120 else text[:119] + "…")


def _api_url_fix(url: str) -> str | None:
    """The API URL that was probably meant: https for a URL without a scheme or with http to a
    host that is not loopback."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        rest = url.removeprefix("//")
    elif scheme.lower() != "http":
        return "the API URL is https://HOST[:PORT][/PATH] (http only on loopback hosts)"
    if not rest or _UNSAFE_IN_URL.search(rest) or "@" in rest.partition("/")[0]:
        return "the API URL is https://HOST[:PORT][/PATH] (http only on loopback hosts)"
    return f"use https://{rest}"


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with default ports filled in: the unit tokens are bound to (ST-07)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def resolve(
    env: Mapping[str, str],
    *,
    profile_flag: str | None = None,
    api_url_flag: str | None = None,
    issuer_flag: str | None = None,
    client_id_flag: str | None = None,
    session_api_url: str | None = None,
    session_issuer: str | None = None,
    session_client_id: str | None = None,
    discovered_issuer: str | None = None,
    port_flag: int | None = None,
    redirect_host_flag: str | None = None,
    dpop_flag: bool = False,
) -> Settings:
    """Effective settings. The `session_*` values are those of the profile's stored session (the
    API URL it was signed in for; the issuer and client the person named for its sign-in, when
    that issuer is not the API), used when nothing more explicit names one, so a login against
    a server keeps working without re-typing its URL for every command, and a browser sign-in
    goes back to the identity provider it used last. An issuer that was the API's own, or that
    the API's resource metadata named (`discovered_issuer`, shown with that source), is not
    passed: without one named, a sign-in asks the API again (RFC 9728)."""
    cdir = config_dir(env)
    file = load_config_file(Path(cdir.value))
    profiles: dict[str, dict[str, Any]] = file.get("profiles", {})

    if profile_flag:
        profile = Setting(profile_flag, FLAG)
    elif env.get(ENV_PROFILE):
        profile = Setting(env[ENV_PROFILE], ENVIRONMENT)
    elif isinstance(file.get("profile"), str):
        profile = Setting(file["profile"], CONFIG)
    else:
        profile = Setting(DEFAULT_PROFILE, DEFAULT)
    check_profile_name(profile.value)
    section = profiles.get(profile.value, {})

    if api_url_flag:
        api_url = Setting(normalize_api_url(api_url_flag), FLAG)
    elif env.get(ENV_API_URL):
        api_url = Setting(normalize_api_url(env[ENV_API_URL]), ENVIRONMENT)
    elif isinstance(section.get("api_url"), str):
        api_url = Setting(normalize_api_url(section["api_url"]), CONFIG)
    else:
        api_url = Setting(DEFAULT_API_URL, DEFAULT)
    if session_api_url:
        api_url = api_url_with_session(api_url, session_api_url)

    store_value = section.get("credential_store", file.get("credential_store"))
    if store_value is None:
        store = Setting("keyring", DEFAULT)
    elif store_value in CREDENTIAL_STORES:
        store = Setting(str(store_value), CONFIG)
    else:
        raise ConfigError(
            f"{Path(cdir.value) / CONFIG_FILE}: credential_store must be "
            f'"keyring" or "file", not {store_value!r}'
        )
    issuer, client_id = _oauth_client(
        section,
        api_url=api_url.value,
        issuer_flag=issuer_flag,
        client_id_flag=client_id_flag,
        session_issuer=session_issuer,
        session_client_id=session_client_id,
        discovered_issuer=discovered_issuer,
    )
    # A yes/no key (clipboard, dpop) may be a TOML boolean or the string `kt config set` writes.
    switches = {k: str(v).lower() if isinstance(v, bool) else v for k, v in section.items()}
    return Settings(
        unknown_keys=unknown_keys(file, Path(cdir.value) / CONFIG_FILE),
        config_dir=cdir,
        profile=profile,
        api_url=api_url,
        credential_store=store,
        issuer=issuer,
        client_id=client_id,
        port=_port(section, port_flag, Path(cdir.value) / CONFIG_FILE),
        redirect_host=_choice(
            section,
            "redirect_host",
            REDIRECT_HOSTS,
            Path(cdir.value) / CONFIG_FILE,
            flag=redirect_host_flag,
            default=DEFAULT_REDIRECT_HOST,
        ),
        login_method=_choice(
            section,
            "login_method",
            LOGIN_METHODS,
            Path(cdir.value) / CONFIG_FILE,
            env_value=env.get(ENV_LOGIN_METHOD) or None,
            env_name=ENV_LOGIN_METHOD,
            default=AUTO_LOGIN_METHOD,
        ),
        clipboard=_choice(
            switches, "clipboard", SWITCH_VALUES, Path(cdir.value) / CONFIG_FILE, default="false"
        ),
        keyring_max_bytes=_size_limit(env, file, Path(cdir.value) / CONFIG_FILE),
        send_resource=_send_resource(section, Path(cdir.value) / CONFIG_FILE),
        dpop=_choice(
            switches,
            "dpop",
            SWITCH_VALUES,
            Path(cdir.value) / CONFIG_FILE,
            flag="true" if dpop_flag else None,
            default="false",
        ),
    )


def _size_limit(env: Mapping[str, str], file: Mapping[str, Any], path: Path) -> Setting:
    """KEEPTRUSTS_KEYRING_MAX_BYTES when it is a size (as before this key existed, anything else
    there is ignored), else the top-level `keyring_max_bytes`, else no limit."""
    from_env = size_limit(env.get(ENV_KEYRING_MAX_BYTES, ""))
    if from_env is not None:
        return Setting(str(from_env), ENVIRONMENT)
    if "keyring_max_bytes" not in file:
        return Setting(NO_SIZE_LIMIT, DEFAULT)
    size = size_limit(file["keyring_max_bytes"])
    if size is None:
        raise ConfigError(f"{path}: {_SIZE_RULE}, not {file['keyring_max_bytes']!r}")
    return Setting(str(size), CONFIG)


def _send_resource(section: Mapping[str, Any], path: Path) -> Setting:
    """The profile's `send_resource`: a TOML boolean, or "true"/"false" as `kt config set`
    writes it; unset: "auto"."""
    if "send_resource" not in section:
        return Setting(AUTO_SEND_RESOURCE, DEFAULT)
    value = section["send_resource"]
    if isinstance(value, bool):
        return Setting("true" if value else "false", CONFIG)
    if value in SEND_RESOURCE:
        return Setting(str(value), CONFIG)
    raise ConfigError(f"{path}: send_resource must be true or false, not {value!r}")


def _choice(
    section: Mapping[str, Any],
    key: str,
    allowed: tuple[str, ...],
    path: Path,
    *,
    default: str,
    flag: str | None = None,
    env_value: str | None = None,
    env_name: str = "",
) -> Setting:
    """One of `allowed`: the flag, else the environment variable, else the profile's `key`,
    else `default`. A value that is not one of them names where it came from."""
    if flag is not None:
        if flag not in allowed:
            raise UsageError(f"{key} must be {_one_of(allowed)}, not {flag!r}")
        return Setting(flag, FLAG)
    if env_value is not None:
        if env_value not in allowed:
            raise UsageError(f"{env_name} must be {_one_of(allowed)}, not {env_value!r}")
        return Setting(env_value, ENVIRONMENT)
    if key not in section:
        return Setting(default, DEFAULT)
    value = section[key]
    if value not in allowed:
        raise ConfigError(f"{path}: {key} must be {_one_of(allowed)}, not {value!r}")
    return Setting(value, CONFIG)


def _port(section: Mapping[str, Any], port_flag: int | None, path: Path) -> Setting:
    """--port, else the profile's `port`, else any free port."""
    if port_flag is not None:
        return Setting(str(port_flag), FLAG)
    if "port" not in section:
        return Setting(str(ANY_PORT), DEFAULT)
    port = port_number(section["port"])
    if port is None:
        raise ConfigError(
            f"{path}: port must be a number from 0 to {MAX_PORT}, not {section['port']!r}"
        )
    return Setting(str(port), CONFIG)


def _oauth_client(
    section: Mapping[str, Any],
    *,
    api_url: str,
    issuer_flag: str | None,
    client_id_flag: str | None,
    session_issuer: str | None,
    session_client_id: str | None,
    discovered_issuer: str | None = None,
) -> tuple[Setting, Setting]:
    """Issuer and client: the flags, else the profile's config (`issuer`, `client_id`), else the
    ones the profile last signed in with, else the API's resource metadata's (RFC 9728: its
    value the one the last sign-in found, else the API URL, which an API without such metadata
    is) and `kt-cli`. A client id is taken only from where the issuer came from: it names a
    client at that issuer."""
    client_id = Setting(client_id_flag, FLAG) if client_id_flag else None
    if issuer_flag is not None:
        issuer = Setting(issuer_flag or api_url, FLAG)
    elif isinstance(section.get("issuer"), str):
        issuer = Setting(section["issuer"] or api_url, CONFIG)
        if client_id is None and section.get("client_id"):
            client_id = Setting(str(section["client_id"]), CONFIG)
    elif session_issuer:
        issuer = Setting(session_issuer, SESSION)
        if client_id is None and session_client_id:
            client_id = Setting(session_client_id, SESSION)
    else:
        issuer = Setting(discovered_issuer or api_url, resource_metadata_source(api_url))
    return issuer, client_id or Setting(DEFAULT_CLIENT_ID, DEFAULT)


def api_url_with_session(api_url: Setting, session_api_url: str) -> Setting:
    """The API URL once the stored session is known: one named by a flag, the environment or
    the config file wins; otherwise the URL the session was issued by."""
    if api_url.source != DEFAULT:
        return api_url
    return Setting(normalize_api_url(session_api_url), SESSION)


def configured_profiles(env: Mapping[str, str]) -> list[str]:
    file = load_config_file(Path(config_dir(env).value))
    return sorted(file.get("profiles", {}))


def environ() -> Mapping[str, str]:
    return os.environ
