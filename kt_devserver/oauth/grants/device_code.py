"""The device authorization grant (RFC 8628): the device authorization endpoint and the
`device_code` grant at the token endpoint. The browser side is device_pages.py."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AccessDeniedError,
    InvalidGrantError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc8628 import (  # type: ignore[import-untyped]
    DEVICE_CODE_GRANT_TYPE,
    AuthorizationPendingError,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    ExpiredTokenError,
    SlowDownError,
)

from kt_devserver.credentials import hash_secret
from kt_devserver.db import Database, User
from kt_devserver.oauth import resources
from kt_devserver.oauth.device_codes import (
    SLOW_DOWN_STEP,
    VERIFICATION_PATH,
    display_user_code,
    new_device_code,
    new_user_code,
    user_code_hash,
)
from kt_devserver.oauth.grants.exchange import exchange_for_tokens, revoke_replayed
from kt_devserver.oauth.request import KtRequest, OnServer
from kt_devserver.oauth.storage import (
    DEVICE_APPROVED,
    DEVICE_DENIED,
    DEVICE_REFUSED,
    DeviceCode,
)

_ALREADY_USED = "The device code was already used."


class DeviceAuthorization(OnServer, DeviceAuthorizationEndpoint):  # type: ignore[misc]
    """`POST /oauth/device_authorization`: a device code, a user code and where to enter it."""

    CLIENT_AUTH_METHODS = ["none"]

    def create_endpoint_response(self, request: KtRequest) -> tuple[int, dict[str, Any], Any]:
        # authlib's version builds the verification URI without the request (our issuer is
        # the URL the request reached) and saves the user code in clear; the rest is the same.
        client = self.authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE_GRANT_TYPE):
            raise UnauthorizedClientError("This client may not use the device authorization grant.")
        self.server.validate_requested_scope(request.payload.scope)
        resource = resources.requested(request)  # RFC 8707: the API the tokens will be for
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
            resource=resource,
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


def device_flow_refusal(db: Database, user_id: str) -> str:
    """Why a device sign-in was refused: the organization of `user_id` turned it off."""
    org = db.get_organization(db.get_user(user_id).org_id)
    return (
        f"The organization {org.name} does not allow device sign-in; sign in with a browser "
        "instead."
    )


class DeviceGrant(OnServer, DeviceCodeGrant):  # type: ignore[misc]
    """`grant_type=` the device code URN (`DEVICE_CODE_GRANT_TYPE`) at the token endpoint."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def query_device_credential(self, device_code: str) -> DeviceCode:
        found = self.kt.store.find_device_code(hash_secret(device_code))
        if found is None:
            raise InvalidGrantError("Unknown device_code.")
        return found

    def validate_device_credential(self, credential: DeviceCode) -> User:
        kt = self.kt
        now = kt.clock()
        if credential.used_at is not None:
            revoke_replayed(kt, credential)
            raise InvalidGrantError(_ALREADY_USED)
        if now >= credential.expires_at:
            raise ExpiredTokenError("The device code expired; start a new sign-in.")
        if credential.status == DEVICE_DENIED:
            raise AccessDeniedError("The user denied the sign-in.")
        if credential.status == DEVICE_REFUSED:
            # RFC 6749 §5.2: this client may not use the grant, for this user's organization
            # (issue 13 item 4); a client can tell it from a denial and sign in another way.
            assert credential.user_id is not None
            raise UnauthorizedClientError(device_flow_refusal(kt.state.db, credential.user_id))
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

    def validate_token_request(self) -> None:
        super().validate_token_request()
        resources.same_as_granted(self.request, self.request.credential.resource)

    def save_token(self, token: dict[str, Any]) -> None:
        device: DeviceCode = self.request.credential
        exchange_for_tokens(self.kt, self.request, token, device, already_used=_ALREADY_USED)
