"""authlib glue: the authorization server, its grants and the revocation endpoint.

authlib is synchronous and framework-agnostic: a handler reads the aiohttp body first, builds a
`KtRequest` from it (`http.oauth_request`), calls the server, and turns the `Reply`
(status, body, headers) back into an aiohttp response. SQLite is synchronous too, so nothing
here awaits.

Pieces used: `AuthorizationCodeGrant` + `CodeChallenge(required=True)` restricted to S256,
`OpenIDCode` (nonce, ID token on the code exchange), `RefreshTokenGrant` + `OpenIDToken` (rotation,
ID token on refresh), `RevocationEndpoint`, and for RFC 8628 `DeviceAuthorizationEndpoint` +
`DeviceCodeGrant` + `OpenIDToken` (ID token without nonce; the browser side is device_pages.py).
ID tokens are signed with joserfc by `keys.SigningKey` (our `encode_id_token`), not
authlib's legacy `get_jwt_config` path. authlib ships no type information, hence the
`type: ignore` on its imports and base classes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AccessDeniedError,
    AuthorizationServer,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Payload,
    OAuth2Request,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import (  # type: ignore[import-untyped]
    AuthorizationCodeGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636.challenge import (  # type: ignore[import-untyped]
    compare_s256_code_challenge,
)
from authlib.oauth2.rfc8628 import (  # type: ignore[import-untyped]
    AuthorizationPendingError,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    ExpiredTokenError,
    SlowDownError,
)
from authlib.oidc.core.grants import OpenIDCode, OpenIDToken  # type: ignore[import-untyped]

from kt_devserver.credentials import (
    ACCESS_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    hash_secret,
    new_secret,
)
from kt_devserver.db import IssuedPair, Session, User
from kt_devserver.oauth import clients
from kt_devserver.oauth.clients import DEVICE_CODE_GRANT
from kt_devserver.oauth.device_codes import (
    SLOW_DOWN_STEP,
    VERIFICATION_PATH,
    display_user_code,
    new_device_code,
    new_user_code,
    user_code_hash,
)
from kt_devserver.oauth.keys import SigningKey
from kt_devserver.oauth.scopes import (
    EMAIL,
    OFFLINE_ACCESS,
    OIDC_SCOPES,
    PROFILE,
    acr,
    amr,
    as_list,
)
from kt_devserver.oauth.storage import (
    DEVICE_APPROVED,
    DEVICE_DENIED,
    AuthCode,
    DeviceCode,
    Grant,
    OAuthStore,
)
from kt_devserver.state import State

logger = logging.getLogger(__name__)

AUTHORIZATION_CODE_TTL = 60
ID_TOKEN_TTL = 600


class Reply(NamedTuple):
    status: int
    body: Any
    headers: list[tuple[str, str]]


@dataclass(frozen=True)
class AuthContext:
    """Who approved an authorization request, and how they signed in."""

    user: User
    auth_time: float
    mfa: bool


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class KtRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request from an already-read aiohttp request (query for GET, form for POST)."""

    def __init__(
        self,
        *,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        pairs: list[tuple[str, str]],
        issuer: str,
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self.pairs = pairs
        self.payload = _Payload(pairs)
        self.issuer = issuer
        self.kt_auth: AuthContext | None = None
        self.kt_grant: Grant | None = None

    @property
    def args(self) -> dict[str, str]:
        return dict(self.payload.data) if self.method == "GET" else {}

    @property
    def form(self) -> dict[str, str]:
        return dict(self.payload.data) if self.method == "POST" else {}


def _half_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def user_claims(user: User, scope: str | None) -> dict[str, Any]:
    scopes = as_list(scope)
    claims: dict[str, Any] = {"sub": user.id}
    if PROFILE in scopes:
        claims["name"] = user.name
    if EMAIL in scopes:
        claims["email"] = user.email
        claims["email_verified"] = True
    return claims


# --- grants --------------------------------------------------------------------------------


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE required on every authorization request, S256 only (RFC 7636, RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send a code_challenge (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256; plain is refused.")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    @property
    def kt(self) -> KtAuthorizationServer:
        server: KtAuthorizationServer = self.server
        return server

    def save_authorization_code(self, code: str, request: KtRequest) -> None:
        auth = request.kt_auth
        assert auth is not None
        data = request.payload.data
        self.kt.store.save_code(
            AuthCode(
                code_hash=hash_secret(code),
                client_id=request.client.get_client_id(),
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                user_id=auth.user.id,
                nonce=data.get("nonce") or None,
                auth_time=auth.auth_time,
                mfa=auth.mfa,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                expires_at=self.kt.clock() + AUTHORIZATION_CODE_TTL,
                used_at=None,
                session_id=None,
            )
        )

    def query_authorization_code(self, code: str, client: Any) -> AuthCode | None:
        found = self.kt.store.find_code(hash_secret(code))
        if found is None or found.client_id != client.get_client_id():
            return None
        if found.used_at is not None:
            # RFC 6749 §4.1.2: deny the reuse and revoke what the code bought.
            if found.session_id is not None:
                self.kt.state.db.revoke_session(found.session_id, now=self.kt.clock())
            logger.warning("authorization code replayed; grant %s revoked", found.session_id)
            return None
        if self.kt.clock() >= found.expires_at:
            return None
        return found

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        pass  # spent in save_token, in the same transaction that stores the tokens

    def authenticate_user(self, authorization_code: AuthCode) -> User:
        return self.kt.state.db.get_user(authorization_code.user_id)

    def save_token(self, token: dict[str, Any]) -> None:
        code: AuthCode = self.request.authorization_code
        kt = self.kt
        now = kt.clock()
        session_expires_at = now + kt.state.settings.refresh_token_ttl
        access_expires_at = min(now + kt.state.settings.access_token_ttl, session_expires_at)
        refresh = token.get("refresh_token")
        session_id = kt.store.exchange_code(
            code,
            now=now,
            session_expires_at=session_expires_at,
            access_hash=hash_secret(token["access_token"]),
            access_expires_at=access_expires_at,
            refresh_hash=None if refresh is None else hash_secret(refresh),
        )
        if session_id is None:
            raise InvalidGrantError("The authorization code was already used.")
        token["expires_in"] = max(0, int(access_expires_at - now))
        self.request.kt_grant = kt.store.grant(session_id)


@dataclass(frozen=True)
class RefreshCredential:
    token_hash: str
    grant: Grant
    session: Session

    def check_client(self, client: Any) -> bool:
        return bool(self.grant.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.grant.scope


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def kt(self) -> KtAuthorizationServer:
        server: KtAuthorizationServer = self.server
        return server

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        kt = self.kt
        db = kt.state.db
        now = kt.clock()
        token_hash = hash_secret(refresh_token)
        row = db.find_refresh_token(token_hash)
        grant = None if row is None else kt.store.grant(row.session_id)
        if row is None or grant is None:
            return None  # unknown, or a first-party password session's token
        session = db.get_session(row.session_id)
        if session.revoked_at is not None:
            return None
        if row.spent_at is not None:
            db.revoke_session(session.id, now=now)
            logger.warning("refresh token replayed; grant %s revoked", session.id)
            return None
        if now >= row.expires_at:
            return None
        return RefreshCredential(token_hash, grant, session)

    def authenticate_user(self, credential: RefreshCredential) -> User:
        return self.kt.state.db.get_user(credential.session.user_id)

    def save_token(self, token: dict[str, Any]) -> None:
        credential: RefreshCredential = self.request.refresh_token
        kt = self.kt
        now = kt.clock()
        session = credential.session
        token.setdefault("refresh_token", new_secret(REFRESH_TOKEN_PREFIX))
        pair = IssuedPair(
            access_hash=hash_secret(token["access_token"]),
            access_expires_at=min(now + kt.state.settings.access_token_ttl, session.expires_at),
            refresh_hash=hash_secret(token["refresh_token"]),
            refresh_expires_at=session.expires_at,
        )
        if not kt.store.rotate_refresh_token(credential.token_hash, now=now, pair=pair):
            kt.state.db.revoke_session(session.id, now=now)
            raise InvalidGrantError("The refresh token was already used; the grant is revoked.")
        token["expires_in"] = max(0, int(pair.access_expires_at - now))
        self.request.kt_grant = credential.grant

    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        pass  # spent in save_token, atomically with storing its successor


# --- device authorization grant (RFC 8628) -------------------------------------------------


class DeviceAuthorization(DeviceAuthorizationEndpoint):  # type: ignore[misc]
    """`POST /oauth/device_authorization`: a device code, a user code and where to enter it."""

    CLIENT_AUTH_METHODS = ["none"]

    @property
    def kt(self) -> KtAuthorizationServer:
        server: KtAuthorizationServer = self.server
        return server

    def create_endpoint_response(self, request: KtRequest) -> tuple[int, dict[str, Any], Any]:
        # authlib's version builds the verification URI without the request (our issuer is
        # the URL the request reached) and saves the user code in clear; the rest is the same.
        client = self.authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE_GRANT):
            raise UnauthorizedClientError("This client may not use the device authorization grant.")
        self.server.validate_requested_scope(request.payload.scope)
        kt = self.kt
        now = kt.clock()
        settings = kt.state.settings
        device_code = new_device_code()
        user_code = self._unused_user_code(now)
        kt.store.create_device_code(
            device_code_hash=hash_secret(device_code),
            user_code_hash=user_code_hash(user_code),
            client_id=client.get_client_id(),
            scope=client.get_allowed_scope(request.payload.scope),
            poll_interval=settings.device_interval,
            now=now,
            expires_at=now + settings.device_code_ttl,
        )
        shown = display_user_code(user_code)
        verification_uri = request.issuer + VERIFICATION_PATH
        body = {
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": verification_uri,
            "verification_uri_complete": f"{verification_uri}?user_code={shown}",
            "expires_in": settings.device_code_ttl,
            "interval": settings.device_interval,
        }
        return 200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")]

    def _unused_user_code(self, now: float) -> str:
        for _ in range(8):
            code = new_user_code()
            if not self.kt.store.user_code_in_use(user_code_hash(code), now=now):
                return code
        raise RuntimeError("no unused user code after 8 draws")  # 20^8 codes: not in practice


class DeviceGrant(DeviceCodeGrant):  # type: ignore[misc]
    """`grant_type=urn:ietf:params:oauth:grant-type:device_code` at the token endpoint."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    @property
    def kt(self) -> KtAuthorizationServer:
        server: KtAuthorizationServer = self.server
        return server

    def query_device_credential(self, device_code: str) -> DeviceCode:
        found = self.kt.store.find_device_code(hash_secret(device_code))
        if found is None:
            raise InvalidGrantError("Unknown device_code.")
        return found

    def validate_device_credential(self, credential: DeviceCode) -> User:
        kt = self.kt
        now = kt.clock()
        if credential.used_at is not None:
            # Like a replayed authorization code: deny it and revoke what it bought.
            if credential.session_id is not None:
                kt.state.db.revoke_session(credential.session_id, now=now)
            logger.warning("device code replayed; grant %s revoked", credential.session_id)
            raise InvalidGrantError("The device code was already used.")
        if now >= credential.expires_at:
            raise ExpiredTokenError("The device code expired; start a new sign-in.")
        if credential.status == DEVICE_DENIED:
            raise AccessDeniedError("The user denied the sign-in.")
        if credential.status == DEVICE_APPROVED:
            assert credential.user_id is not None
            return kt.state.db.get_user(credential.user_id)
        interval = credential.poll_interval
        too_fast = credential.last_poll_at is not None and now - credential.last_poll_at < interval
        if too_fast:
            interval += SLOW_DOWN_STEP  # RFC 8628 §3.5: for this and every later poll
        kt.store.record_poll(credential.id, now=now, poll_interval=interval)
        if too_fast:
            raise SlowDownError(f"Polled too fast; wait {int(interval)} seconds between polls.")
        raise AuthorizationPendingError("The user has not approved the sign-in yet.")

    def save_token(self, token: dict[str, Any]) -> None:
        device: DeviceCode = self.request.credential
        kt = self.kt
        now = kt.clock()
        session_expires_at = now + kt.state.settings.refresh_token_ttl
        access_expires_at = min(now + kt.state.settings.access_token_ttl, session_expires_at)
        refresh = token.get("refresh_token")
        session_id = kt.store.exchange_device_code(
            device,
            now=now,
            session_expires_at=session_expires_at,
            access_hash=hash_secret(token["access_token"]),
            access_expires_at=access_expires_at,
            refresh_hash=None if refresh is None else hash_secret(refresh),
        )
        if session_id is None:
            raise InvalidGrantError("The device code was already used.")
        token["expires_in"] = max(0, int(access_expires_at - now))
        self.request.kt_grant = kt.store.grant(session_id)


# --- OpenID Connect: ID tokens signed by our key -------------------------------------------


class _IdTokens:
    """`encode_id_token` for authlib's OIDC extensions: claims from the grant, joserfc signing."""

    def __init__(self, server: KtAuthorizationServer) -> None:
        self.kt = server

    def generate_user_info(self, user: User, scope: str) -> dict[str, Any]:
        return user_claims(user, scope)

    def encode_id_token(self, token: dict[str, Any], request: KtRequest) -> str:
        grant = request.kt_grant
        assert grant is not None
        user: User = request.user
        now = int(self.kt.clock())
        claims: dict[str, Any] = {
            "iss": request.issuer,
            "aud": grant.client_id,
            "azp": grant.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_TTL,
            "auth_time": int(grant.auth_time),
            "acr": acr(grant.mfa),
            "amr": amr(grant.mfa),
            "at_hash": _half_hash(token["access_token"]),
        }
        code = request.authorization_code
        if code is not None and code.nonce:
            claims["nonce"] = code.nonce  # only on the code exchange (OIDC Core §12.2)
        claims.update(user_claims(user, token.get("scope")))
        return self.kt.key.sign(claims)


class KtOpenIDCode(_IdTokens, OpenIDCode):  # type: ignore[misc]
    def __init__(self, server: KtAuthorizationServer) -> None:
        _IdTokens.__init__(self, server)
        OpenIDCode.__init__(self, require_nonce=False)

    def exists_nonce(self, nonce: str, request: KtRequest) -> bool:
        return self.kt.store.nonce_used(request.payload.client_id, nonce)


class KtOpenIDToken(_IdTokens, OpenIDToken):  # type: ignore[misc]
    pass


# --- revocation (RFC 7009) -----------------------------------------------------------------


@dataclass(frozen=True)
class Revocable:
    kind: str
    token_hash: str
    grant: Grant

    def check_client(self, client: Any) -> bool:
        return bool(self.grant.client_id == client.get_client_id())


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["none"]

    @property
    def kt(self) -> KtAuthorizationServer:
        server: KtAuthorizationServer = self.server
        return server

    def query_token(self, token_string: str, token_type_hint: str | None) -> Revocable | None:
        token_hash = hash_secret(token_string)
        kinds = ["access_token", "refresh_token"]
        if token_type_hint == "refresh_token":  # noqa: S105 - a hint name
            kinds.reverse()
        for kind in kinds:
            found = self._find(kind, token_hash)
            if found is not None:
                return found
        return None

    def _find(self, kind: str, token_hash: str) -> Revocable | None:
        db = self.kt.state.db
        session_id: str | None = None
        if kind == "access_token":
            access = db.find_access_token(token_hash)
            session_id = None if access is None else access[0].id
        else:
            refresh = db.find_refresh_token(token_hash)
            session_id = None if refresh is None else refresh.session_id
        grant = None if session_id is None else self.kt.store.grant(session_id)
        return None if grant is None else Revocable(kind, token_hash, grant)

    def revoke_token(self, token: Revocable, request: KtRequest) -> None:
        if token.kind == "refresh_token":
            self.kt.state.db.revoke_session(token.grant.session_id, now=self.kt.clock())
        else:
            self.kt.store.delete_access_token(token.token_hash)


# --- the server ----------------------------------------------------------------------------


class KtAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, state: State, store: OAuthStore, key: SigningKey) -> None:
        super().__init__(scopes_supported=list(OIDC_SCOPES))
        self.state = state
        self.store = store
        self.key = key
        self.clock = state.clock
        self.register_token_generator("default", self._generate_token)
        self.register_grant(CodeGrant, [S256CodeChallenge(required=True), KtOpenIDCode(self)])
        self.register_grant(RefreshGrant, [KtOpenIDToken(self)])
        self.register_grant(DeviceGrant, [KtOpenIDToken(self)])
        self.register_endpoint(Revocation(self))
        self.register_endpoint(DeviceAuthorization(self))

    def query_client(self, client_id: str | None) -> clients.Client | None:
        return clients.find(client_id)

    def save_token(self, token: dict[str, Any], request: KtRequest) -> None:
        raise NotImplementedError("each grant stores its own tokens")

    def create_oauth2_request(self, request: KtRequest) -> KtRequest:
        assert isinstance(request, KtRequest)
        return request

    def handle_response(self, status: int, body: Any, headers: Iterable[tuple[str, str]]) -> Reply:
        return Reply(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def _generate_token(
        self,
        grant_type: str,
        client: Any,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": new_secret(ACCESS_TOKEN_PREFIX),
            "expires_in": self.state.settings.access_token_ttl,
            "scope": scope or "",
        }
        if include_refresh_token and OFFLINE_ACCESS in as_list(scope):
            token["refresh_token"] = new_secret(REFRESH_TOKEN_PREFIX)
        return token
