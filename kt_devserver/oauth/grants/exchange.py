"""A single-use credential (an authorization code, an approved device code) exchanged for a new
token family, and what a replay of a spent one costs (RFC 6749 §4.1.2)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidGrantError  # type: ignore[import-untyped]

from kt_devserver.credentials import hash_secret
from kt_devserver.dpop import TOKEN_TYPE
from kt_devserver.families import IssuedPair
from kt_devserver.oauth.request import KtRequest
from kt_devserver.oauth.storage import AuthCode, DeviceCode

if TYPE_CHECKING:
    from kt_devserver.oauth.server import KtAuthorizationServer

logger = logging.getLogger(__name__)


def exchange_for_tokens(
    kt: KtAuthorizationServer,
    request: KtRequest,
    token: dict[str, Any],
    credential: AuthCode | DeviceCode,
    *,
    already_used: str,
) -> None:
    """Spend `credential` and store `token` as the first tokens of the family it buys, bound to
    the key of the request's DPoP proof if it had one (RFC 9449 §5: token_type DPoP)."""
    now = kt.clock()
    settings = kt.state.settings
    expires_at = now + settings.refresh_token_ttl
    refresh = token.get("refresh_token")
    pair = IssuedPair(
        access_hash=hash_secret(token["access_token"]),
        access_expires_at=min(now + settings.access_token_ttl, expires_at),
        refresh_hash=None if refresh is None else hash_secret(refresh),
        refresh_expires_at=expires_at,
    )
    jkt = request.kt_dpop_jkt
    session_id = kt.store.exchange(credential, now=now, pair=pair, dpop_jkt=jkt)
    if session_id is None:
        raise InvalidGrantError(already_used)
    token["expires_in"] = max(0, int(pair.access_expires_at - now))
    if jkt is not None:
        token["token_type"] = TOKEN_TYPE
    request.kt_grant = kt.families.grant(session_id)


def revoke_replayed(kt: KtAuthorizationServer, credential: AuthCode | DeviceCode) -> None:
    """A spent credential came back: revoke the family it bought (the caller denies the request)."""
    if credential.session_id is not None:
        kt.families.revoke(credential.session_id, now=kt.clock())
    what = "authorization code" if isinstance(credential, AuthCode) else "device code"
    logger.warning("%s replayed; grant %s revoked", what, credential.session_id)
