"""Which credential a profile's requests carry, kept fresh; replacing and revoking sessions.

`KEEPTRUSTS_API_TOKEN`, when set, wins and is sent only to the configured API origin. Otherwise
the profile's stored session is used, which must belong to that origin; `refresh.SessionKeeper`
refreshes it (a refresher per session kind), and a session that is replaced or logged out is
ended on the server that issued it (a revoker per session kind, below).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import httpx2

from . import config
from .api import ApiClient, BearerAuth, SessionAuth, make_http_client
from .errors import (
    EXIT_ERROR,
    NOT_OFFERED,
    REFUSED,
    UNREACHABLE,
    KtError,
    NetworkError,
    NotLoggedIn,
    RevocationFailed,
)
from .flows import drive
from .flows.tokens import revoke_grant
from .refresh import SessionKeeper, can_refresh
from .session import KEEPTRUSTS, OAUTH, Session, SessionKind
from .store import CredentialStore, Location, SessionStore, keyring_timeout
from .text import run_hint

T = TypeVar("T")

ENVIRONMENT = "environment"  # the credential source of KEEPTRUSTS_API_TOKEN
# Session.method of an API token kept by `kt auth login --with-token`
API_TOKEN = "api_token"  # noqa: S105 - a method name, not a secret


@dataclass(frozen=True)
class Credential:
    """What to call the API with: the client for the credential's origin, and the auth."""

    api: ApiClient
    auth: httpx2.Auth
    source: str  # ENVIRONMENT, or the store the session is kept in ("keyring", "file (plaintext)")
    # The stored session, refreshed if it is about to expire (None for the environment's token).
    session: Callable[[], Session] | None = None
    # The identity provider that issued the session's tokens, when it is not the API.
    foreign_issuer: str | None = None
    profile: str | None = None

    def call(self, use: Callable[[ApiClient, httpx2.Auth], T]) -> T:
        """`use(api, auth)`, saying which credential was refused if the server refuses it."""
        try:
            return use(self.api, self.auth)
        except NotLoggedIn as exc:
            if self.source == ENVIRONMENT:
                exc.message = f"the API token in KEEPTRUSTS_API_TOKEN was refused ({exc.message})"
                exc.hint = (
                    "set KEEPTRUSTS_API_TOKEN to a valid token, or unset it to use the stored "
                    "session"
                )
            elif self.foreign_issuer is not None:
                # Signing in at the same provider again would bring the same refusal.
                exc.message = (
                    f"the Keeptrusts API at {self.api.api_url} does not accept this session's "
                    f"token, which is from the identity provider {self.foreign_issuer} "
                    f"({exc.message})"
                )
                exc.hint = api_sign_in_hint(self.api.api_url, self.profile)
            raise


def sign_in_method_flags(method: str | None) -> list[str]:
    """`--browser`/`--device`/`--federated` for a login command that replaces a session signed
    in that way, so the command works as printed without a terminal, too (a CI job's
    `--federated` finds its identity token again in the same environment)."""
    return [f"--{method}"] if method in ("browser", "device", "federated") else []


def api_sign_in_hint(api_url: str, profile: str | None) -> str:
    """The sign-in at the API's own issuer (browser or device, as the terminal allows)."""
    flags = ["--profile", profile] if profile and profile != config.DEFAULT_PROFILE else []
    return "sign in with the API itself: " + run_hint(
        "kt", "auth", "login", *flags, "--issuer", api_url
    )


class NoCredential(NotLoggedIn):
    """The profile has no credential for the configured API."""

    def __init__(
        self, message: str, *, api_url: str | None = None, method: str | None = None
    ) -> None:
        super().__init__(message)
        # The configured API URL, when the stored session belongs to another one.
        self.api_url = api_url
        # How that session was signed in ("browser", "device", "password", ...).
        self.method = method


class Authenticator:
    """One profile's credential: find it, refresh it, replace it, revoke it."""

    def __init__(
        self,
        *,
        profile: str,
        api_url: config.Setting,
        store: SessionStore,
        http: httpx2.Client,
        env_token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.profile = profile
        self.api_url = api_url
        self.store = store
        self.http = http
        self.env_token = env_token or None
        self.clock = clock

    @classmethod
    def from_environment(
        cls,
        http: httpx2.Client,
        *,
        profile: str | None = None,
        api_url: str | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Authenticator:
        """The profile and API URL resolved as `kt` resolves them (the arguments act as its
        --profile and --api-url), with the session store of the config dir."""
        env = os.environ if env is None else env
        settings = config.resolve(env, profile_flag=profile, api_url_flag=api_url)
        return cls(
            profile=settings.profile.value,
            api_url=settings.api_url,
            store=SessionStore(settings.dir, keyring_timeout=keyring_timeout(env)),
            http=http,
            env_token=env.get(config.ENV_API_TOKEN),
            clock=clock,
        )

    def api(self, api_url: str) -> ApiClient:
        return ApiClient(api_url, self.http, clock=self.clock)

    def stored(self) -> tuple[Session | None, Location | None]:
        """The profile's stored session and where it is kept, or (None, None)."""
        return self.store.find(self.profile)

    def credential(self) -> Credential:
        """$KEEPTRUSTS_API_TOKEN, else the stored session, refreshed before use; NoCredential
        when there is neither, or the session belongs to another API than the configured one."""
        if self.env_token:
            url = self.api_url.value
            return Credential(self.api(url), BearerAuth(self.env_token, url), ENVIRONMENT)
        keeper, where = self.keeper()
        return Credential(
            keeper.api,
            SessionAuth(keeper.current, keeper.refresh, provers=keeper.provers),
            where.kind,
            session=keeper.current,
            foreign_issuer=keeper.session.foreign_issuer,
            profile=self.profile,
        )

    def keeper(self) -> tuple[SessionKeeper, Location]:
        """The stored session's SessionKeeper (ignoring $KEEPTRUSTS_API_TOKEN) and where the
        session is kept; NoCredential as for `credential`."""
        session, where = self.stored()
        if session is None or where is None:
            raise NoCredential(f"not logged in (profile {self.profile!r})")
        api_url = config.api_url_with_session(self.api_url, session.api_url).value
        if config.origin(api_url) != config.origin(session.api_url):
            raise NoCredential(
                f"profile {self.profile!r} is logged in to {session.api_url}, not {api_url}",
                api_url=api_url,
                method=session.method,
            )
        keeper = SessionKeeper(
            session=session,
            profile=self.profile,
            config_dir=self.store.config_dir,
            store=where,
            api=self.api(session.api_url),
            clock=self.clock,
        )
        return keeper, where

    def fresh_session(self, *, min_ttl: float = 0.0) -> tuple[Session, Location]:
        """The stored session with its access token refreshed when it is near expiry (as for
        every request) or, given `min_ttl`, when it expires sooner than that; the refresh rules
        and the lock are SessionKeeper's. A session that cannot be refreshed is not refreshed
        early: NotRefreshable says why, and the session is kept."""
        keeper, where = self.keeper()
        session = keeper.current()
        now = self.clock()
        if min_ttl > 0 and session.expires_at is not None and session.expires_at - now < min_ttl:
            check_refreshable(session, now)
            session = keeper.refresh(session)
        return session, where

    def refresh_now(self) -> tuple[Session, Location]:
        """Refresh the stored session now, whatever its expiry (NotRefreshable when it cannot
        be, the session kept)."""
        keeper, where = self.keeper()
        check_refreshable(keeper.session, self.clock())
        return keeper.refresh(keeper.session), where

    def save(self, where: CredentialStore, session: Session) -> None:
        """Keep `session` for the profile in `where` and end the session it replaces on the
        server (best effort). A session that cannot be kept is ended too."""
        try:
            previous = self.stored()[0]
        except KtError:
            previous = None
        try:
            where.save(self.profile, session)
        except KtError:
            self.revoke(session)
            raise
        if previous is not None and previous.access_token != session.access_token:
            self.revoke(previous)

    def revoke(self, session: Session) -> RevocationFailed | None:
        """End `session` on the server it came from; the error when that was not confirmed. An
        API token kept by `kt auth login --with-token` is the user's: kt never revokes it."""
        if session.method == API_TOKEN:
            return None
        return REVOKERS[session.kind](session, self.http)


class NotRefreshable(NotLoggedIn):
    """The stored session cannot be refreshed: an API token, no refresh token, or one that has
    expired. `reason` is "api_token", "no_refresh_token" or "refresh_expired"."""

    code = "auth.not_refreshable"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
        if reason == API_TOKEN:
            self.exit_code = EXIT_ERROR  # signing in again would not change that


def check_refreshable(session: Session, now: float) -> None:
    """NotRefreshable, saying why, unless `session` can be refreshed (refresh.can_refresh)."""
    if can_refresh(session, now):
        return
    if session.method == API_TOKEN:
        raise NotRefreshable(
            "this profile's credential is an API token, which is not refreshed", reason=API_TOKEN
        )
    if not session.refresh_token:
        raise NotRefreshable(
            "this session has no refresh token (none was issued at sign-in)",
            reason="no_refresh_token",
        )
    raise NotRefreshable("this session's refresh token has expired", reason="refresh_expired")


def _revoke_keeptrusts(session: Session, http: httpx2.Client) -> RevocationFailed | None:
    """The API's logout, with the session's own access token."""
    try:
        ApiClient(session.api_url, http).logout(
            BearerAuth(session.access_token, session.api_url), session.refresh_token
        )
    except NotLoggedIn:
        return None  # already ended
    except KtError as exc:
        return _revocation_failed(session.api_url, exc)
    return None


def _revoke_oauth(session: Session, http: httpx2.Client) -> RevocationFailed | None:
    """RFC 7009 at the issuer: the refresh token (which ends the grant), then the access token."""
    issuer = session.issuer or session.api_url
    if not session.revocation_endpoint:
        return RevocationFailed(
            NOT_OFFERED, f"{issuer} offers no token revocation (its metadata lists no endpoint)"
        )
    try:
        drive(
            revoke_grant(
                session.revocation_endpoint,
                client_id=session.client_id or "",
                refresh_token=session.refresh_token,
                access_token=session.access_token,
            ),
            http,
        )
    except KtError as exc:
        return _revocation_failed(issuer, exc)
    return None


def _revocation_failed(server: str, exc: KtError) -> RevocationFailed:
    if isinstance(exc, NetworkError):
        return RevocationFailed(
            UNREACHABLE, f"could not reach {server} to revoke it ({exc.message})"
        )
    return RevocationFailed(REFUSED, f"{server} refused to revoke it ({exc.message})")


REVOKERS: Mapping[SessionKind, Callable[[Session, httpx2.Client], RevocationFailed | None]] = {
    KEEPTRUSTS: _revoke_keeptrusts,
    OAUTH: _revoke_oauth,
}


class ProfileAuth(httpx2.Auth):
    """`kt_login.session_auth()`: a profile's credential for any `httpx2` client, refreshed
    before it expires (and once on a 401), bound to its API origin. Close it (or use it as a
    context manager) to close the connection its refreshes use."""

    requires_response_body = True  # the refresh-on-401 reads the error code

    def __init__(self, credential: Credential, http: httpx2.Client) -> None:
        self._credential = credential
        self._http = http
        self.api_url = credential.api.api_url
        self.source = credential.source  # ENVIRONMENT, "keyring" or "file (plaintext)"

    def __repr__(self) -> str:
        return f"ProfileAuth(api_url={self.api_url!r}, source={self.source!r})"

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        yield from self._credential.auth.auth_flow(request)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProfileAuth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def session_auth(
    profile: str | None = None,
    *,
    api_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ProfileAuth:
    """The credential `kt` would use for `profile` (default: as `kt` picks it): the API token in
    KEEPTRUSTS_API_TOKEN, else the session `kt auth login` stored. NotLoggedIn when none."""
    http = make_http_client()
    try:
        credential = Authenticator.from_environment(
            http, profile=profile, api_url=api_url, env=env
        ).credential()
    except NoCredential as exc:
        http.close()
        flags = ["--profile", profile] if profile else []
        flags += ["--api-url", exc.api_url] if exc.api_url else []
        exc.hint = run_hint("kt", "auth", "login", *sign_in_method_flags(exc.method), *flags)
        raise
    except BaseException:
        http.close()
        raise
    return ProfileAuth(credential, http)
