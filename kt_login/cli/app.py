"""The App object (injected dependencies) and the per-command Invocation built from common flags.

Commands receive an `Invocation`: the settings for this command, a console, the hints that name
the command to run next, and the layers below wired for it (one HTTP client, the session store,
an Authenticator). What a command does with them lives in those layers, not here.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, wraps
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import httpx2

from .. import config
from ..api import ApiClient, make_http_client
from ..authenticate import Authenticator, Credential, NoCredential, sign_in_method_flags
from ..errors import KtError, StoreError, StoreUnavailable, UsageError
from ..output import Console
from ..session import Session
from ..store import (
    UNAVAILABLE_HINT,
    CredentialStore,
    Location,
    SessionStore,
    keyring_max_bytes,
    keyring_timeout,
)
from ..text import clean, run_hint
from .profiles import complete_profiles

F = TypeVar("F", bound=Callable[..., Any])


def _is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass
class App:
    """What a `kt` process talks to; tests hand in their own (`CliRunner.invoke(obj=App(...))`)."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    transport: httpx2.BaseTransport | None = None
    clock: Callable[[], float] = time.time
    interactive: Callable[[], bool] = field(
        default=lambda: _is_tty(sys.stdin) and _is_tty(sys.stderr)
    )
    # Opens a (validated) sign-in URL; None means the system browser (`webbrowser`, $BROWSER).
    opener: Callable[[str], bool] | None = None
    # Builds the session store for a config dir; None means the OS keyring and the file backend.
    store: Callable[[Path], SessionStore] | None = None


def common_options(fn: F) -> F:
    """--profile, --api-url and --json on every command, so they can follow the verb."""
    fn = click.option(
        "--json", "json_mode", is_flag=True, help="Print one JSON document on stdout."
    )(fn)
    fn = click.option(
        "--debug",
        is_flag=True,
        help="Log HTTP and kt internals to stderr (secrets redacted); same as KT_DEBUG=1.",
    )(fn)
    fn = click.option(
        "--api-url",
        metavar="URL",
        help="Keeptrusts API base URL (default: $KEEPTRUSTS_API_URL, the profile's, or the "
        "public API).",
    )(fn)
    fn = click.option(
        "--profile",
        metavar="NAME",
        shell_complete=complete_profiles,
        help="Profile to use (default: $KEEPTRUSTS_PROFILE or 'default').",
    )(fn)

    @wraps(fn)
    def wrapper(
        *args: Any,
        profile: str | None,
        api_url: str | None,
        json_mode: bool,
        debug: bool,
        **kw: Any,
    ) -> Any:
        del debug  # main() set up the logging before the command line was parsed
        ctx = click.get_current_context()
        app = ctx.find_object(App) or App()
        inv = Invocation(app, profile_flag=profile, api_url_flag=api_url, json_mode=json_mode)
        ctx.call_on_close(inv.close)  # when the command ends, however it ends
        try:
            return fn(inv, *args, **kw)
        except KtError as exc:
            exc.hint = inv.working_hint(exc, ctx)
            raise

    return wrapper  # type: ignore[return-value]


def _given(ctx: click.Context, **changes: object) -> list[tuple[str, list[str]]]:
    """The options of the command being run as the person gave them — (parameter name, its
    words) — with `changes` (a parameter's name → its new value) applied; secrets left out."""
    values = {**ctx.params, **changes}
    given: list[tuple[str, list[str]]] = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        value = values.get(param.name)
        if param.name in _NEVER_REPEATED or value in (None, False, ()) or value == param.default:
            continue
        flag = max(param.opts, key=len)
        if param.is_flag:
            given.append((param.name, [flag]))
            continue
        for one in value if param.multiple and isinstance(value, tuple | list) else (value,):
            given.append((param.name, [flag, str(one)]))
    return given


def _rerun(ctx: click.Context, **changes: object) -> list[str]:
    """The command being run again, as the person gave it, with `changes` applied."""
    words = ["kt", *ctx.command_path.split()[1:]]
    for _, option in _given(ctx, **changes):
        words += option
    return words


# Secrets, and what only ever makes sense once, are not put into a command to paste.
_NEVER_REPEATED = frozenset({"password", "debug"})
# What a hint to run the same command again keeps of the options given: where the session
# goes and the sign-in's settings — not the method (the hint names it), nor one-shot steps
# (--start, --complete) or the output format.
_CARRIED = frozenset(
    {"insecure_storage", "issuer", "client_id", "scope", "port", "timeout", "no_qr", "no_browser"}
)
# A sign-in method a hint names drops the carried options that cannot go with it.
_CONFLICTS = {"--device": {"no_browser"}, "--email": {"no_browser"}}


class Invocation:
    def __init__(
        self, app: App, *, profile_flag: str | None, api_url_flag: str | None, json_mode: bool
    ) -> None:
        self.app = app
        self.profile_flag = profile_flag
        self.api_url_flag = api_url_flag
        self.console = Console(json_mode=json_mode)
        self._http: httpx2.Client | None = None

    @property
    def json_mode(self) -> bool:
        return self.console.json_mode

    @property
    def interactive(self) -> bool:
        return not self.json_mode and self.app.interactive()

    def now(self) -> float:
        return self.app.clock()

    @cached_property
    def base_settings(self) -> config.Settings:
        """Settings without looking at any stored session; config.toml's unknown keys are
        warned about here, once per command."""
        settings = config.resolve(
            self.app.env, profile_flag=self.profile_flag, api_url_flag=self.api_url_flag
        )
        for unknown in settings.unknown_keys:
            self.console.warn(unknown, code="kt.config_unknown_key")
        return settings

    def settings_for(self, session: Session | None) -> config.Settings:
        """Settings once the profile's stored session is known: its API URL, and the issuer and
        client the person named for it, count where nothing more explicit names them."""
        if session is None:
            return self.base_settings
        return self._resolve_with(session)

    def sign_in_settings(
        self,
        *,
        issuer: str | None,
        client_id: str | None,
        port: int | None = None,
        redirect_host: str | None = None,
        dpop: bool = False,
    ) -> config.Settings:
        """Settings for a browser or device sign-in: the issuer and client flags, else the
        profile's config, else the issuer the person named at its last sign-in; the API URL as
        every other command resolves it. An issuer that was the API's own is not remembered: the
        default issuer follows the API URL (issue 10 case 8). The loopback port: the flag, else
        the profile's `port` (issue 10 case 10); the redirect host likewise (issue 13 item 2);
        DPoP: --dpop, else the profile's `dpop` (issue 15)."""
        try:
            current = self.find_session()[0]
        except KtError:
            current = None
        return self._resolve_with(
            current,
            issuer_flag=issuer,
            client_id_flag=client_id,
            port_flag=port,
            redirect_host_flag=redirect_host,
            dpop_flag=dpop,
        )

    def _resolve_with(
        self,
        session: Session | None,
        *,
        issuer_flag: str | None = None,
        client_id_flag: str | None = None,
        port_flag: int | None = None,
        redirect_host_flag: str | None = None,
        dpop_flag: bool = False,
    ) -> config.Settings:
        # An issuer the API's resource metadata named is asked of the API again (RFC 9728),
        # never remembered as if the person had named it; it is shown as found there.
        found = session is not None and session.issuer_source is not None
        named = session.foreign_issuer if session is not None and not found else None
        client_id = session.client_id if session is not None and named is not None else None
        return config.resolve(
            self.app.env,
            profile_flag=self.profile_flag,
            api_url_flag=self.api_url_flag,
            issuer_flag=issuer_flag,
            client_id_flag=client_id_flag,
            session_api_url=session.api_url if session is not None else None,
            session_issuer=named,
            session_client_id=client_id,
            discovered_issuer=session.issuer if session is not None and found else None,
            port_flag=port_flag,
            redirect_host_flag=redirect_host_flag,
            dpop_flag=dpop_flag,
        )

    @property
    def profile(self) -> str:
        return self.base_settings.profile.value

    @property
    def env_token(self) -> str | None:
        return self.app.env.get(config.ENV_API_TOKEN) or None

    def http(self) -> httpx2.Client:
        """The command's one HTTP client, closed when the command ends (`close`)."""
        if self._http is None:
            self._http = make_http_client(self.app.transport)
        return self._http

    @cached_property
    def session_store(self) -> SessionStore:
        """One store per command, so a keyring that timed out once is not waited for again."""
        return self.store_at(self.base_settings.dir)

    def store_at(self, directory: Path) -> SessionStore:
        """A session store for `directory`: the App's, else the OS keyring (its timeout, and the
        size limit of Settings.keyring_max_bytes: KEEPTRUSTS_KEYRING_MAX_BYTES, else config.toml's
        keyring_max_bytes; the variable alone when config.toml cannot be read) and the file."""
        if self.app.store is not None:
            return self.app.store(directory)
        try:  # resolved again rather than base_settings: no warnings said twice, or for doctor
            limit = config.resolve(
                self.app.env, profile_flag=self.profile_flag, api_url_flag=self.api_url_flag
            ).keyring_max_bytes
        except KtError:
            limit = config.Setting(str(keyring_max_bytes(self.app.env)), config.ENVIRONMENT)
        return SessionStore(
            directory,
            keyring_timeout=keyring_timeout(self.app.env),
            keyring_max_bytes=int(limit.value),
            keyring_max_bytes_from=config.ENV_KEYRING_MAX_BYTES
            if limit.source == config.ENVIRONMENT
            else "keyring_max_bytes in config.toml",
        )

    @cached_property
    def authenticator(self) -> Authenticator:
        return Authenticator(
            profile=self.profile,
            api_url=self.base_settings.api_url,
            store=self.session_store,
            http=self.http(),
            env_token=self.env_token,
            clock=self.app.clock,
        )

    def api(self) -> ApiClient:
        """The configured API, without a credential (sign-ins)."""
        return self.authenticator.api(self.base_settings.api_url.value)

    def stored_session(self) -> Session | None:
        """The profile's stored session, or None when there is none or it cannot be read."""
        try:
            return self.find_session()[0]
        except KtError:
            return None

    def find_session(self) -> tuple[Session | None, Location | None]:
        return self.session_store.find(self.profile)

    def store_for_new_session(self, *, insecure_storage: bool) -> Location:
        """Where a new session goes (SessionStore.choose_for_login), saying so when it replaces a
        stored session that cannot be read."""
        where = self.session_store.choose_for_login(
            self.profile,
            insecure_storage=insecure_storage,
            credential_store_setting=self.base_settings.credential_store.value,
        )
        try:
            self.find_session()
        except StoreError as exc:
            self.console.warn(
                f"the stored session of profile {self.profile!r} cannot be read "
                f"({clean(exc.message)}); this login replaces it"
            )
        except KtError:
            pass  # e.g. a keyring that cannot be reached: the login decides what that means
        return where

    def store_for_login(self, *, insecure_storage: bool) -> CredentialStore:
        """store_for_new_session (chosen and probed now, before any password is asked for),
        saying that the session goes into a plaintext file only once there is one to keep: just
        before it is written, after the sign-in reached the server (issue 12), so a sign-in that
        fails on the network says nothing about storage."""
        store = self.store_for_new_session(insecure_storage=insecure_storage)
        if store.name != "file":
            return store

        def warn() -> None:
            self.console.warn(
                f"the session will be stored in a plaintext file (mode 0600) under "
                f"{self.base_settings.dir}; anyone who can read your files can use it",
                code="kt.plaintext_storage",
            )

        return WarnedOnSave(store, warn)

    def authenticated(self) -> Credential:
        """The credential every API command uses (Authenticator.credential), with the login
        command to run when there is none."""
        try:
            return self.authenticator.credential()
        except NoCredential as exc:
            exc.hint = self.login_hint(exc.api_url, method=exc.method)
            raise

    def login_hint(
        self, api_url: str | None = None, *, method: str | None = None, more: Sequence[str] = ()
    ) -> str:
        """`kt auth login` with this command's profile and API URL (and, replacing a session
        signed in with --browser or --device, that flag; then the `more` flags)."""
        flags = [*sign_in_method_flags(method), *more]
        flags += ["--profile", self.profile] if self.profile_flag else []
        if api_url or self.api_url_flag:
            flags += ["--api-url", api_url or self.base_settings.api_url.value]
        return run_hint("kt", "auth", "login", *flags)

    def working_hint(self, exc: KtError, ctx: click.Context) -> str | None:
        """`exc`'s hint made a command that works as printed for this command (issue 12,
        defect 4): a keyring that cannot be used gets --insecure-storage only where the
        command has it, and a `kt …` command to run carries this command's --profile and
        --api-url."""
        hint = exc.hint
        if isinstance(exc, StoreUnavailable) and hint == UNAVAILABLE_HINT:
            if "insecure_storage" in ctx.params:
                again = run_hint(*_rerun(ctx, insecure_storage=True))
                hint = (
                    f"unlock your keyring, or keep the session in a plaintext file (0600): {again}"
                )
            else:
                login = run_hint("kt", "auth", "login", "--insecure-storage")
                hint = (
                    "unlock your keyring and try again, or sign in keeping the session in a "
                    f"plaintext file (0600): {login}"
                )
        return self._with_common_flags(hint, ctx)

    def _with_common_flags(self, hint: str | None, ctx: click.Context) -> str | None:
        """A hint ending in `run: kt …`, completed from this command: it gets this command's
        --profile and --api-url, and the same command again keeps the sign-in's settings
        given (_CARRIED: --insecure-storage, --issuer, --scope …) that the hint does not name."""
        if not hint or "run: kt " not in hint:
            return hint
        before, _, command = hint.rpartition("run: ")
        try:
            words = shlex.split(command)
        except ValueError:
            return hint
        if words[:1] != ["kt"] or len(words) < 2:
            return hint
        named = {w for w in words if w.startswith("--")}
        path = ctx.command_path.split()[1:]
        extra: list[str] = []
        try:
            if words[1 : 1 + len(path)] == path:
                dropped = set().union(*(_CONFLICTS.get(w, set()) for w in named))
                for name, option in _given(ctx):
                    if name in _CARRIED - dropped and option[0] not in named:
                        extra += option
            if self.profile_flag and "--profile" not in named:
                extra += ["--profile", self.profile]
            if self.api_url_flag and "--api-url" not in named:
                extra += ["--api-url", self.base_settings.api_url.value]
        except KtError:  # the flags themselves are what is wrong: the hint stays as it was
            return hint
        return f"{before}{run_hint(*words, *extra)}" if extra else hint

    def mfa_hint(self, mfa_token: str | None, *, insecure_storage: bool = False) -> str:
        if not mfa_token:
            return "this operation needs an MFA-authenticated session; enable MFA on your account"
        flags = ["--insecure-storage"] if insecure_storage else []
        if self.profile_flag:
            flags += ["--profile", self.profile]
        if self.api_url_flag:
            flags += ["--api-url", self.base_settings.api_url.value]
        return run_hint("kt", "auth", "mfa", "challenge", "--token", mfa_token, *flags)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


class WarnedOnSave:
    """A store that says `warn` once, just before the first session is saved into it."""

    def __init__(self, where: CredentialStore, warn: Callable[[], None]) -> None:
        self._where = where
        self._warn: Callable[[], None] | None = warn

    @property
    def kind(self) -> str:
        return self._where.kind

    def load(self, profile: str) -> Session | None:
        return self._where.load(profile)

    def save(self, profile: str, session: Session) -> None:
        warn, self._warn = self._warn, None
        if warn is not None:
            warn()
        self._where.save(profile, session)

    def delete(self, profile: str) -> bool:
        return self._where.delete(profile)


def read_secret_line(stream: IO[str], what: str) -> str:
    line = stream.readline()
    value = line.rstrip("\r\n")
    if not value:
        raise UsageError(f"no {what} on standard input")
    return value
