"""The refresh token grant (RFC 6749 §6): rotated on each use; a replayed one revokes its family."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.grants import RefreshTokenGrant  # type: ignore[import-untyped]

from kt_devserver.credentials import REFRESH_TOKEN_PREFIX, hash_secret, new_secret
from kt_devserver.db import User
from kt_devserver.families import Grant, IssuedPair, Session
from kt_devserver.oauth.request import OnServer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshCredential:
    token_hash: str
    grant: Grant
    session: Session

    def check_client(self, client: Any) -> bool:
        return bool(self.grant.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.grant.scope


class RefreshGrant(OnServer, RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        kt = self.kt
        families = kt.families
        now = kt.clock()
        token_hash = hash_secret(refresh_token)
        row = families.find_refresh_token(token_hash)
        grant = None if row is None else families.grant(row.session_id)
        if row is None or grant is None:
            return None  # unknown, or a first-party password session's token
        session = families.get(row.session_id)
        if session.revoked_at is not None:
            return None
        if row.spent_at is not None:
            families.revoke(session.id, now=now)
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
        if not kt.families.rotate(credential.token_hash, now=now, pair=pair):
            kt.families.revoke(session.id, now=now)
            raise InvalidGrantError("The refresh token was already used; the grant is revoked.")
        token["expires_in"] = max(0, int(pair.access_expires_at - now))
        self.request.kt_grant = credential.grant

    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        pass  # spent in save_token, atomically with storing its successor
