"""The device authorization grant (RFC 8628): the device authorization endpoint and the
`device_code` grant at the token endpoint. The browser side is device_pages.py."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AccessDeniedError,
    InvalidGrantError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc8628 import (  # type: ignore[import-untyped]
    AuthorizationPendingError,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    ExpiredTokenError,
    SlowDownError,
)

from kt_devserver.credentials import hash_secret
from kt_devserver.db import User
from kt_devserver.oauth.clients import DEVICE_CODE_GRANT
from kt_devserver.oauth.device_codes import (
    SLOW_DOWN_STEP,
    VERIFICATION_PATH,
    display_user_code,
    new_device_code,
    new_user_code,
    user_code_hash,
)
from kt_devserver.oauth.request import KtRequest
from kt_devserver.oauth.storage import DEVICE_APPROVED, DEVICE_DENIED, DeviceCode

if TYPE_CHECKING:
    from kt_devserver.oauth.server import KtAuthorizationServer

logger = logging.getLogger(__name__)


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
