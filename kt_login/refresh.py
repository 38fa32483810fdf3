"""Keeping a stored session's access token fresh: proactively, once across processes.

Every `kt` process that finds its access token close to expiry takes the profile's refresh lock,
re-reads the store (another process may have refreshed meanwhile), and only then refreshes. The
rotated refresh token is saved before the new access token is used: if saving fails, the command
stops, since the old refresh token is already spent (SECURITY.md LC-01…LC-04).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import httpx2

from .api import ApiClient
from .dpop import INVALID_PROOF, USE_NONCE, Provers
from .errors import KtError, NetworkError, NotLoggedIn, OAuthError, StoreError, ValidationFailed
from .flows import Flow, drive, tokens
from .session import KEEPTRUSTS, OAUTH, Session, SessionKind
from .store import CredentialStore, refresh_lock
from .text import run_hint

if TYPE_CHECKING:
    from .idtoken import IdClaims

LOGIN_HINT = run_hint("kt", "auth", "login")

MIN_WINDOW = 60.0


def needs_refresh(session: Session, now: float) -> bool:
    """True when less than max(60 s, 10% of the lifetime) remains; unknown expiry never does."""
    if session.expires_at is None:
        return False
    obtained = session.obtained_at if session.obtained_at is not None else session.expires_at
    lifetime = session.expires_at - obtained
    return session.expires_at - now < max(MIN_WINDOW, 0.1 * lifetime)


def can_refresh(session: Session, now: float) -> bool:
    """True when the session holds a refresh token that has not expired (as far as kt knows)."""
    return bool(session.refresh_token) and (
        session.refresh_expires_at is None or session.refresh_expires_at > now
    )


def session_state(session: Session, now: float) -> str:
    """ "logged in", "refresh on next use" (the access token expired, the refresh token has not)
    or "expired" (neither is left: it takes a new sign-in)."""
    if session.expires_at is None or session.expires_at > now:
        return "logged in"
    return "refresh on next use" if can_refresh(session, now) else "expired"


class SessionKeeper:
    def __init__(
        self,
        *,
        session: Session,
        profile: str,
        config_dir: Path,
        store: CredentialStore,
        api: ApiClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self._profile = profile
        self._config_dir = config_dir
        self._store = store
        self._api = api
        self._clock = clock
        self._refreshers: Mapping[SessionKind, Callable[[Session, str], Session]] = {
            KEEPTRUSTS: self._api_refresh,
            OAUTH: self._oauth_refresh,
        }
        # Set once a refresh succeeded but its rotated tokens could not be saved: the refresh
        # token we hold is spent, and presenting it again would look like a replay (LC-03).
        self._unsaved: StoreError | None = None
        # A DPoP session's key in use (RFC 9449): one Prover per key for the keeper's life, so
        # the nonces servers name are remembered between its refreshes and API calls.
        self.provers = Provers(clock=clock)

    @property
    def api(self) -> ApiClient:
        """The client of the session's API (its refreshes go through it)."""
        return self._api

    def current(self) -> Session:
        if self._unsaved is not None:
            raise self._unsaved
        if needs_refresh(self.session, self._clock()):
            return self.refresh(self.session)
        return self.session

    def refresh(self, stale: Session) -> Session:
        if self._unsaved is not None:
            raise self._unsaved
        with refresh_lock(self._config_dir, self._profile):
            latest = self._store.load(self._profile)
            if latest is None:
                raise NotLoggedIn("you have been logged out", hint=LOGIN_HINT)
            if latest.access_token != stale.access_token and not needs_refresh(
                latest, self._clock()
            ):
                self.session = latest
                return latest
            if not latest.refresh_token or not can_refresh(latest, self._clock()):
                self._store.delete(self._profile)
                raise NotLoggedIn("your session has expired", hint=LOGIN_HINT)
            fresh = self._refreshers[latest.kind](latest, latest.refresh_token)
            try:
                self._store.save(self._profile, fresh)
            except KtError as exc:
                self._unsaved = StoreError(
                    f"the session was refreshed but could not be saved ({exc.message})",
                    hint="the old session can no longer be used; " + LOGIN_HINT,
                )
                raise self._unsaved from None
            self.session = fresh
            return fresh

    def _api_refresh(self, latest: Session, refresh_token: str) -> Session:
        """The API's own refresh (a KEEPTRUSTS session)."""
        try:
            try:
                return self._api.refresh(refresh_token, method=latest.method)
            except NetworkError:
                # No reply arrived, so the token may not have been spent: one retry (LC-03).
                return self._api.refresh(refresh_token, method=latest.method)
        except NotLoggedIn as exc:
            self._store.delete(self._profile)
            raise NotLoggedIn(f"your session has ended ({exc.message})", hint=LOGIN_HINT) from None

    def _oauth_refresh(self, latest: Session, refresh_token: str) -> Session:
        """RFC 6749 §6 at the issuer's token endpoint (an OAUTH session); a new ID token must
        name the same sign-in (OIDC Core §12.2), or nothing is kept."""
        token_endpoint = latest.token_endpoint
        assert token_endpoint  # an OAuth session always names it (session.py)
        http = self._api.http

        def refreshing() -> Flow[tokens.TokenResponse]:
            return tokens.refresh(
                token_endpoint,
                client_id=latest.client_id or "",
                refresh_token=refresh_token,
                resource=latest.resource,
                dpop=self.provers(latest.dpop_key),
            )

        try:
            try:
                granted = drive(refreshing(), http)
            except NetworkError:
                granted = drive(refreshing(), http)  # LC-03: one retry
        except ValidationFailed as exc:
            # A bearer token for a DPoP session's refresh (RFC 9449 §5): the stored refresh
            # token is spent, and what came back is not bound to the session's key.
            self._store.delete(self._profile)
            raise NotLoggedIn(f"your session has ended: {exc.message}", hint=LOGIN_HINT) from None
        except OAuthError as exc:
            # Any refusal (invalid_grant, or a provider's invalid_request for an unknown token)
            # ends the session: presenting the token again could only fail the same way. A
            # refused DPoP proof spent nothing (RFC 9449 §5, §8): the session is kept.
            if exc.error not in (
                "server_error",
                "temporarily_unavailable",
                INVALID_PROOF,
                USE_NONCE,
            ):
                self._store.delete(self._profile)
                raise NotLoggedIn(
                    f"your session has ended: the identity provider would not refresh it "
                    f"({exc.provider_said})",
                    hint=LOGIN_HINT,
                ) from None
            raise
        now = self._clock()
        auth_time = latest.auth_time
        if granted.id_token:
            try:
                claims = _check_refreshed_id_token(latest, granted.id_token, http, now)
            except KtError as exc:
                self._refuse(latest, granted, exc)
            if claims.auth_time is not None:
                auth_time = claims.auth_time
        return dataclasses.replace(
            latest,
            access_token=granted.access_token,
            refresh_token=granted.refresh_token or refresh_token,
            expires_at=now + granted.expires_in if granted.expires_in else None,
            obtained_at=now,
            auth_time=auth_time,
        )

    def _refuse(self, latest: Session, granted: tokens.TokenResponse, why: KtError) -> NoReturn:
        """A refresh result kt will not use: the provider has already rotated (spent) the
        stored refresh token, so keeping the session would only trip its reuse detection
        later. The tokens it sent are revoked, the session is cleared, and the person is told
        to sign in again (issue 10, case 6)."""
        if latest.revocation_endpoint:
            try:
                drive(
                    tokens.revoke_grant(
                        latest.revocation_endpoint,
                        client_id=latest.client_id or "",
                        refresh_token=granted.refresh_token,
                        access_token=granted.access_token,
                    ),
                    self._api.http,
                )
            except KtError:
                pass  # best effort: the session ends here either way
        self._store.delete(self._profile)
        raise NotLoggedIn(f"your session has ended: {why.message}", hint=LOGIN_HINT) from None


def _check_refreshed_id_token(
    session: Session, id_token: str, http: httpx2.Client, now: float
) -> IdClaims:
    from .idtoken import SignIn, provider_keys, validate_id_token  # only when a refresh is due

    if not (session.jwks_uri and session.issuer and session.client_id and session.subject):
        raise ValidationFailed("the stored session lacks what is needed to check a new ID token")
    return validate_id_token(
        id_token,
        keys=provider_keys(session.jwks_uri, http),
        issuer=session.issuer,
        client_id=session.client_id,
        now=now,
        nonce=None,
        refreshing=SignIn(sub=session.subject, auth_time=session.auth_time),
    )
