"""The refresh token grant (RFC 6749 §6): rotated on each use; a replayed one revokes its family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.grants import RefreshTokenGrant  # type: ignore[import-untyped]

from kt_devserver.credentials import REFRESH_TOKEN_PREFIX, hash_secret, new_secret
from kt_devserver.db import User
from kt_devserver.dpop import TOKEN_TYPE, InvalidDpopProofError
from kt_devserver.families import Grant, IssuedPair, Redeemable, Refused
from kt_devserver.oauth import resources
from kt_devserver.oauth.request import OnServer


@dataclass(frozen=True)
class RefreshCredential:
    token: Redeemable
    grant: Grant

    def check_client(self, client: Any) -> bool:
        return bool(self.grant.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.grant.scope


class RefreshGrant(OnServer, RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        families = self.kt.families
        token_hash = hash_secret(refresh_token)
        row = families.find_refresh_token(token_hash)
        grant = None if row is None else families.grant(row.session_id)
        if grant is None:
            return None  # unknown, or a first-party password session's token
        bound = families.get(row.session_id).dpop_jkt if row is not None else None
        if bound is not None and self.request.kt_dpop_jkt != bound:
            # RFC 9449 §5: a bound refresh token only with a proof of its key; not spent.
            raise InvalidDpopProofError(
                "This refresh token is bound to a DPoP key: send a DPoP proof made with it."
            )
        token = families.redeemable(token_hash, now=self.kt.clock())
        return None if isinstance(token, Refused) else RefreshCredential(token, grant)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        # RFC 8707 §2.2: a refresh may name the grant's resource, never another.
        resources.same_as_granted(self.request, self.request.refresh_token.grant.resource)

    def authenticate_user(self, credential: RefreshCredential) -> User:
        return self.kt.state.db.get_user(credential.token.session.user_id)

    def save_token(self, token: dict[str, Any]) -> None:
        credential: RefreshCredential = self.request.refresh_token
        kt = self.kt
        now = kt.clock()
        session = credential.token.session
        token.setdefault("refresh_token", new_secret(REFRESH_TOKEN_PREFIX))
        pair = IssuedPair(
            access_hash=hash_secret(token["access_token"]),
            access_expires_at=min(now + kt.state.settings.access_token_ttl, session.expires_at),
            refresh_hash=hash_secret(token["refresh_token"]),
            refresh_expires_at=session.expires_at,
        )
        if not kt.families.rotate(credential.token, now=now, pair=pair):
            raise InvalidGrantError("The refresh token was already used; the grant is revoked.")
        token["expires_in"] = max(0, int(pair.access_expires_at - now))
        if session.dpop_jkt is not None:
            token["token_type"] = TOKEN_TYPE  # the family stays bound to its key
        self.request.kt_grant = credential.grant

    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        pass  # spent in save_token, atomically with storing its successor
