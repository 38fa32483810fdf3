"""`kt auth doctor`: what stands between this machine and a working sign-in, each finding with
its fix (issue 13 item 5).

Every check asks the module whose rule it is, never a copy of it: the config file and its
permissions (config.load_config_file, trusted_files), the API URL and its TLS
(api.make_http_client, flows.transport's wording), proxies (api.goes_through_proxy, the loopback
rule PX-01), the clock against the server's Date header (LC-10), the keyring
(store.KeyringStore.probe), the loopback listener's addresses (callback_server binds 127.0.0.1,
and ::1 for `localhost`), the browser (browser.no_browser_reason), the stored sessions
(refresh.session_state) and the issuer's metadata (flows.discovery). A use case: `cli/doctor.py`
only prints what `diagnose` returns.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx2

from . import config
from .api import goes_through_proxy
from .browser import no_browser_reason
from .errors import KtError, StoreUnavailable
from .flows import send
from .flows.discovery import ProviderMetadata
from .refresh import session_state
from .session import Session
from .signin.oidc import SignInRequest
from .signin.provider import provider_for
from .store import SessionStore
from .text import clean, run_hint

OK: Final = "ok"
WARN: Final = "warn"
FAIL: Final = "fail"
# LC-10: beyond this, the server's clock and ours disagree by more than kt's leeway.
MAX_SKEW: Final = 60.0
SLOW_KEYRING: Final = 1.0  # seconds for the probe's three calls
HEALTH_PATH: Final = "/healthz"  # docs/api-contract.md
LOOPBACK_HOSTS: Final = ("localhost", "127.0.0.1", "::1")
_PROXY_VARIABLES: Final = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, WARN or FAIL
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


class ChecksFailed(KtError):
    """Some check did not pass (exit 1): the report says which and how to fix each."""

    code = "kt.doctor_found_problems"


@dataclass
class Surroundings:
    """What the checks look at; `kt auth doctor` fills it from its App."""

    env: Mapping[str, str]
    profile_flag: str | None
    api_url_flag: str | None
    http: Callable[[], httpx2.Client]  # api.make_http_client over the App's transport
    store: Callable[[Path], SessionStore]
    clock: Callable[[], float] = time.time
    platform: str = sys.platform


def diagnose(where: Surroundings) -> list[Check]:
    """Every check, in the order a person would fix them."""
    return list(_checks(where))


def failed(checks: list[Check]) -> ChecksFailed | None:
    """The error `kt auth doctor` ends with when a check did not pass, else None."""
    bad = [c.name for c in checks if c.status != OK]
    if not bad:
        return None
    return ChecksFailed(
        f"{len(bad)} of {len(checks)} checks did not pass: {', '.join(bad)}; each has its fix"
    )


def _checks(where: Surroundings) -> Iterator[Check]:
    settings, config_check = _config(where)
    yield config_check
    client, client_error = _client(where)
    try:
        yield from _the_rest(where, settings, config_check, client, client_error)
    finally:
        if client is not None:
            client.close()


def _the_rest(
    where: Surroundings,
    settings: config.Settings | None,
    config_check: Check,
    client: httpx2.Client | None,
    client_error: KtError | None,
) -> Iterator[Check]:
    skipped = "not checked: kt cannot read its settings until the config file is fixed"
    if settings is None:
        for name in ("api_url", "tls", "clock"):
            yield Check(name, WARN, skipped, config_check.fix)
    else:
        yield from _api(where, settings, client, client_error)
    yield _proxy(where, settings, client, client_error)
    # One store for both checks: a keyring that hangs costs one timeout, not two.
    directory = settings.dir if settings is not None else Path(config.config_dir(where.env).value)
    store = where.store(directory)
    yield _keyring(store, settings)
    yield _loopback(settings)
    yield _browser(where)
    if settings is None:
        yield Check("sessions", WARN, skipped, config_check.fix)
        yield Check("issuer", WARN, skipped, config_check.fix)
        return
    yield _sessions(where, store, settings)
    yield _issuer(settings, client, client_error)


# --------------------------------------------------------------------------------- config


def _config(where: Surroundings) -> tuple[config.Settings | None, Check]:
    """The settings as every command resolves them (None when the config is refused), and the
    config check."""
    try:
        settings = config.resolve(
            where.env, profile_flag=where.profile_flag, api_url_flag=where.api_url_flag
        )
    except KtError as exc:
        fix = _fix(exc, "fix or move aside the config file (config.toml in the config dir)")
        return None, Check("config", FAIL, clean(exc.message), fix)
    return settings, _config_keys(settings)


def _config_keys(settings: config.Settings) -> Check:
    path = settings.dir / config.CONFIG_FILE
    data = config.load_config_file(settings.dir)  # read once already by resolve: it passes
    if not data:
        return Check("config", OK, f"no {path}: the defaults apply", None)
    unknown = [k for k in data if k not in (*config.TOP_LEVEL_KEYS, "profiles")]
    where_unknown: dict[str, str | None] = {k: None for k in unknown}
    for name, section in data.get("profiles", {}).items():
        for key in section:
            if key not in config.PROFILE_KEYS:
                where_unknown[f"profiles.{name}.{key}"] = name
    if not where_unknown:
        return Check("config", OK, f"{path} is private to you and every key in it is known", None)
    first, profile = next(iter(where_unknown.items()))
    key = first.rsplit(".", 1)[-1]
    flags: list[str] = ["--profile", profile] if profile else []
    return Check(
        "config",
        WARN,
        f"{path} has keys kt does not know, which it ignores: {', '.join(where_unknown)} "
        f"(known: {', '.join(config.TOP_LEVEL_KEYS)}; in [profiles.NAME]: "
        f"{', '.join(config.PROFILE_KEYS)})",
        run_hint("kt", "config", "unset", key, *flags),
    )


# ------------------------------------------------------------------------- API, TLS, clock


def _client(where: Surroundings) -> tuple[httpx2.Client | None, KtError | None]:
    try:
        return where.http(), None
    except KtError as exc:  # a SOCKS proxy, an unusable SSL_CERT_FILE
        return None, exc


def _api(
    where: Surroundings,
    settings: config.Settings,
    client: httpx2.Client | None,
    client_error: KtError | None,
) -> Iterator[Check]:
    api = settings.api_url
    named = f"{api.value} ({api.source})"
    https = api.value.startswith("https://")
    if client is None:
        assert client_error is not None
        why = clean(client_error.message)
        yield Check("api_url", FAIL, f"{named}: not tried, {why}", client_error.hint)
        if "SSL_CERT_FILE" in client_error.message:  # every command fails the same way
            yield Check("tls", FAIL, why, client_error.hint)
        else:
            yield Check("tls", WARN, f"not checked: {why}", client_error.hint)
        yield Check("clock", WARN, "not checked: the API could not be asked", client_error.hint)
        return
    url = api.value + HEALTH_PATH
    before = time.monotonic()
    asked = where.clock()
    try:
        response = send(client, httpx2.Request("GET", url), server=f"the Keeptrusts API at {url}")
    except KtError as exc:
        why, hint = clean(exc.message), _fix(exc, "check the API URL (kt config show)")
        tls = "TLS" in exc.message
        yield Check("api_url", FAIL, f"{named}: {why}", hint)
        if tls:
            yield Check("tls", FAIL, why, _tls_fix(where.env) or hint)
        else:
            tls_status = WARN if https else OK
            tls_fix = hint if https else None
            yield Check("tls", tls_status, _tls_detail(where.env, https, None), tls_fix)
        yield Check("clock", WARN, "not checked: the API did not answer", hint)
        return
    elapsed = time.monotonic() - before
    answered = f"{named} answers (HTTP {response.status_code} from {HEALTH_PATH} in "
    answered += f"{elapsed * 1000:.0f} ms)"
    if response.status_code >= 500:
        yield Check("api_url", FAIL, answered, "the server reports a problem; try again later")
    else:
        yield Check("api_url", OK, answered, None)
    yield Check("tls", OK, _tls_detail(where.env, https, True), None)
    yield _clock(response, asked + elapsed / 2, where.platform)


def _tls_detail(env: Mapping[str, str], https: bool, verified: bool | None) -> str:
    if not https:
        return "plain http on a loopback host: no TLS (allowed for 127.0.0.1, [::1], localhost)"
    store = (
        f"SSL_CERT_FILE={clean(env['SSL_CERT_FILE'])}"
        if env.get("SSL_CERT_FILE")
        else f"SSL_CERT_DIR={clean(env['SSL_CERT_DIR'])}"
        if env.get("SSL_CERT_DIR")
        else "the system's trusted certificates"
    )
    if verified:
        return f"the server's certificate is trusted ({store})"
    return f"not checked: the API did not answer (trusted certificates: {store})"


def _tls_fix(env: Mapping[str, str]) -> str | None:
    """The fix for an untrusted certificate: kt's TLS reads SSL_CERT_FILE, not the
    requests-only REQUESTS_CA_BUNDLE."""
    bundle = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    if bundle and not env.get("SSL_CERT_FILE"):
        return run_hint("export", f"SSL_CERT_FILE={bundle}")
    return (
        "if your network inspects TLS, point SSL_CERT_FILE at its CA bundle "
        "(export SSL_CERT_FILE=/path/to/ca.pem); else check the API URL"
    )


def _clock(response: httpx2.Response, local: float, platform: str) -> Check:
    date = response.headers.get("Date")
    try:
        server = parsedate_to_datetime(date).timestamp() if date else None
    except (TypeError, ValueError, IndexError, OverflowError):
        server = None
    if server is None:
        return Check(
            "clock", OK, "the API sent no usable Date header; the clock was not compared", None
        )
    skew = local - server
    said = f"this machine's clock is {_duration(abs(skew))} {'ahead of' if skew > 0 else 'behind'}"
    said += " the API server's (its Date header)"
    if abs(skew) <= MAX_SKEW:
        return Check("clock", OK, f"{said}; within {MAX_SKEW:.0f} s", None)
    return Check(
        "clock",
        WARN,
        f"{said}: more than {MAX_SKEW:.0f} s, so tokens may look expired or not yet valid",
        _time_sync_fix(platform),
    )


def _time_sync_fix(platform: str) -> str:
    if platform.startswith("linux"):
        return run_hint("sudo", "timedatectl", "set-ntp", "true")
    if platform == "darwin":
        return run_hint("sudo", "sntp", "-sS", "time.apple.com")
    return "turn on automatic time synchronisation in the system settings"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ---------------------------------------------------------------------------------- proxy


def _proxy(
    where: Surroundings,
    settings: config.Settings | None,
    client: httpx2.Client | None,
    client_error: KtError | None,
) -> Check:
    env = where.env
    named = {
        name: env.get(name) or env.get(name.lower())
        for name in _PROXY_VARIABLES
        if env.get(name) or env.get(name.lower())
    }
    if client is None and client_error is not None and "proxy" in client_error.message.lower():
        return Check("proxy", FAIL, clean(client_error.message), client_error.hint)
    if not named:
        return Check("proxy", OK, "no proxy is set (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)", None)
    shown = ", ".join(f"{k}={_without_credentials(v or '')}" for k, v in named.items())
    parts = [f"{shown}; kt reaches loopback (127.0.0.1, ::1, localhost) directly, whatever "]
    parts[0] += "NO_PROXY says"
    if settings is not None and client is not None:
        for what, url in (
            ("the API", settings.api_url.value),
            ("the issuer", settings.issuer.value),
        ):
            via = "through the proxy" if goes_through_proxy(client, url) else "directly"
            parts.append(f"{what} ({url}) is reached {via}")
    no_proxy = env.get("NO_PROXY") or env.get("no_proxy") or ""
    listed = {h.strip().strip("[]").lower() for h in no_proxy.split(",") if h.strip()}
    missing = [h for h in LOOPBACK_HOSTS if h not in listed]
    if "*" in listed or not missing:
        parts.append("NO_PROXY lists loopback, so other programs bypass the proxy for it too")
        return Check("proxy", OK, "; ".join(parts), None)
    parts.append(
        f"NO_PROXY does not list {', '.join(missing)}, so other programs on this machine (a port "
        "forwarder, curl, a browser helper) may send the sign-in's loopback callback to the proxy"
    )
    wanted = ",".join([*(h for h in no_proxy.split(",") if h.strip()), *missing])
    return Check("proxy", WARN, "; ".join(parts), run_hint("export", f"NO_PROXY={wanted}"))


def _without_credentials(url: str) -> str:
    """A proxy URL as it may be shown: never its user name or password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable)"
    if not host:
        return clean(url) if "@" not in url else "(hidden)"
    netloc = f"[{host}]{port}" if ":" in host else f"{host}{port}"
    return clean(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


# -------------------------------------------------------------------------------- keyring


def _keyring(store: SessionStore, settings: config.Settings | None) -> Check:
    uses_file = settings is not None and settings.credential_store.value == "file"
    try:
        probe = store.keyring.probe()
    except StoreUnavailable as exc:
        why = clean(exc.message)
        if uses_file:
            return Check("keyring", OK, f'not used (credential_store = "file"); {why}', None)
        fix = _fix(exc, "unlock or repair the OS keyring")
        return Check("keyring", FAIL, f"{why}; kt auth login cannot keep a session", fix)
    detail = (
        f"{probe.backend}: a probe secret written, read back and deleted in "
        f"{probe.seconds * 1000:.0f} ms"
    )
    if probe.limit:
        detail += f"; {probe.limit}"
    if uses_file:
        detail += '; not used by this profile (credential_store = "file")'
    if probe.seconds > SLOW_KEYRING:
        return Check(
            "keyring",
            WARN,
            f"{detail}: slow (each call may take up to {store.keyring.timeout:g} s)",
            "unlock the keyring before signing in, or raise KEEPTRUSTS_KEYRING_TIMEOUT",
        )
    return Check("keyring", OK, detail, None)


# ------------------------------------------------------------------------- loopback, browser


def _bind(family: socket.AddressFamily, host: str, port: int = 0) -> str | None:
    """Why a listener cannot be bound on `host`:`port`, or None. As callback_server binds: an
    OS-chosen port plainly; a fixed one with SO_REUSEADDR on Linux and macOS (the last sign-in's
    TIME-WAIT does not block it; a live listener still does)."""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            if port and sys.platform != "win32":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(1)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def _loopback(settings: config.Settings | None) -> Check:
    v4 = _bind(socket.AF_INET, "127.0.0.1")
    v6 = _bind(socket.AF_INET6, "::1") if socket.has_ipv6 else "no IPv6 support"
    if v4 is not None:
        return Check(
            "loopback",
            FAIL,
            f"cannot listen on 127.0.0.1 ({v4}): the browser sign-in's callback has nowhere to go",
            run_hint("kt", "auth", "login", "--device"),
        )
    fixed = settings.port if settings is not None and settings.port.value != "0" else None
    if fixed is not None:
        taken = _bind(socket.AF_INET, "127.0.0.1", int(fixed.value))
        if taken is not None:
            return Check(
                "loopback",
                FAIL,
                f"the browser sign-in's port {fixed.value} ({fixed.source}) cannot be listened "
                f"on at 127.0.0.1 ({taken}); kt never moves to another port, as the provider "
                "expects this one",
                f"stop the program listening on port {fixed.value} (lsof -iTCP:{fixed.value} "
                "-sTCP:LISTEN names it), or use another port the provider accepts",
            )
    on_port = f", and port {fixed.value} ({fixed.source}) is free" if fixed is not None else ""
    if v6 is not None and settings is not None and settings.redirect_host.value == "[::1]":
        return Check(
            "loopback",
            FAIL,
            f"the browser sign-in redirects to [::1] (redirect_host, "
            f"{settings.redirect_host.source}), but ::1 cannot be listened on ({v6})",
            run_hint(
                "kt",
                "config",
                "set",
                "redirect_host",
                "127.0.0.1",
                "--profile",
                settings.profile.value,
            ),
        )
    if v6 is not None:
        return Check(
            "loopback",
            WARN,
            f"127.0.0.1 can be listened on{on_port}; ::1 cannot ({v6}), so a sign-in redirected "
            "to localhost works only where localhost resolves to 127.0.0.1",
            "enable IPv6 on the loopback interface, or keep the default 127.0.0.1 redirect",
        )
    return Check("loopback", OK, f"a listener can be bound on 127.0.0.1 and on ::1{on_port}", None)


def _browser(where: Surroundings) -> Check:
    reason = no_browser_reason(where.env, where.platform)
    if reason is None:
        how = f"BROWSER={clean(where.env['BROWSER'])}" if where.env.get("BROWSER") else None
        return Check(
            "browser",
            OK,
            f"a browser can be opened here ({how or 'the system default'})",
            None,
        )
    return Check(
        "browser",
        WARN,
        f"kt will not open a browser: {reason}; kt auth login offers the device code instead",
        run_hint("kt", "auth", "login", "--device"),
    )


# ------------------------------------------------------------------------------- sessions


def _sessions(where: Surroundings, store: SessionStore, settings: config.Settings) -> Check:
    """Every stored session, the active profile's first; the status and fix of the worst."""
    active = settings.profile.value
    now = where.clock()
    notes: list[str] = []
    if where.env.get(config.ENV_API_TOKEN):
        notes.append("KEEPTRUSTS_API_TOKEN is set: commands use it instead of any stored session")
    try:
        others = sorted(set(store.known_profiles()) - {active})
    except KtError as exc:
        return Check("sessions", FAIL, clean(exc.message), _fix(exc, "fix the config dir"))
    worst, fix = OK, None
    for name in (active, *others):
        status, note, hint = _session_of(store, name, now, active=name == active)
        notes.append(note)
        if _rank(status) > _rank(worst):
            worst, fix = status, hint
    return Check("sessions", worst, "; ".join(notes), fix)


def _session_of(
    store: SessionStore, name: str, now: float, *, active: bool
) -> tuple[str, str, str | None]:
    flags = [] if name == config.DEFAULT_PROFILE else ["--profile", name]
    login = run_hint("kt", "auth", "login", *flags)
    label = f"{name} (active)" if active else name
    try:
        session, place = store.find(name)
    except KtError as exc:
        return FAIL, f"{label}: {clean(exc.message)}", _fix(exc, login)
    if session is None or place is None:
        return (WARN if active else OK), f"{label}: not logged in", login if active else None
    state = session_state(session, now)
    about = f"{label}: {state}, in {place.kind}; {_lifetimes(session)}"
    if state == "expired":
        return WARN, about, login
    return OK, about, None


def _lifetimes(session: Session) -> str:
    def at(epoch: float | None) -> str:
        if epoch is None:
            return "unknown"
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))

    refresh = (
        f"refresh token until {at(session.refresh_expires_at)}"
        if session.refresh_token
        else "no refresh token"
    )
    return f"access token until {at(session.expires_at)}, {refresh}"


def _fix(exc: KtError, otherwise: str) -> str:
    """The error's own hint (the one fix kt prints for it everywhere), else `otherwise`."""
    return clean(exc.hint) if exc.hint else otherwise


def _rank(status: str) -> int:
    return {OK: 0, WARN: 1, FAIL: 2}[status]


# --------------------------------------------------------------------------------- issuer


def _issuer(
    settings: config.Settings, client: httpx2.Client | None, client_error: KtError | None
) -> Check:
    issuer = settings.issuer
    named = f"{issuer.value} ({issuer.source})"
    if client is None:
        assert client_error is not None
        why = clean(client_error.message)
        return Check("issuer", FAIL, f"{named}: not asked, {why}", client_error.hint)
    login = SignInRequest(
        issuer=issuer.value,
        client_id=settings.client_id.value,
        api_url=settings.api_url.value,
        issuer_from_api=config.issuer_from_api(issuer),
    )
    try:
        # as a sign-in finds it: named, or from the API's resource metadata (RFC 9728)
        meta = provider_for(login, http=client)
    except KtError as exc:
        fix = _fix(exc, "check the issuer URL (kt config show); if it is right, the provider must")
        fix += "" if exc.hint else " offer what kt needs: ask its administrator"
        return Check("issuer", FAIL, f"{named}: {clean(exc.message)}", fix)
    problems, fine = _capabilities(meta)
    if meta.issuer != issuer.value:
        named = f"{meta.issuer} ({issuer.source})"
    detail = f"{named}: " + "; ".join([*fine, *problems])
    if problems:
        return Check(
            "issuer",
            WARN,
            detail,
            "ask the provider's administrator to enable what is missing; kt works without it",
        )
    return Check("issuer", OK, detail, None)


def _capabilities(meta: ProviderMetadata) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    fine: list[str] = []
    if meta.code_challenge_methods is None:
        problems.append("does not list code_challenge_methods_supported (kt uses PKCE S256 anyway)")
    else:
        fine.append("PKCE S256")
    if meta.iss_parameter_supported:
        fine.append("iss in authorization responses (RFC 9207)")
    else:
        problems.append(
            "does not say it sends iss in authorization responses (RFC 9207), the mix-up defence"
        )
    if meta.device_authorization_endpoint:
        fine.append("device grant")
    else:
        problems.append("no device grant: kt auth login --device will not work")
    if meta.revocation_endpoint:
        fine.append("revocation")
    else:
        problems.append("no revocation endpoint: kt auth logout cannot end the session there")
    return problems, fine
