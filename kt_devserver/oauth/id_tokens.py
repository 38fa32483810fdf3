"""ID tokens (OIDC Core §2) and the claims about a user that they and userinfo carry.

The signing key is RS256, generated with joserfc on first start and kept in the database: the
private JWK lives in `oauth_signing_keys` (the database file is owner-only); `jwks()` is what
`/oauth/jwks` publishes (public members only, with `kid`, `use` and `alg`). authlib's OIDC
extensions (`OpenIDCode`, `OpenIDToken`) get our `encode_id_token`, which signs with joserfc,
not authlib's legacy `get_jwt_config` path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any

from authlib.oidc.core.grants import OpenIDCode, OpenIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.jwk import RSAKey

from kt_devserver.db import User
from kt_devserver.oauth.request import KtRequest, OnServer
from kt_devserver.oauth.scopes import EMAIL, PROFILE, acr, amr, as_list
from kt_devserver.oauth.storage import OAuthStore

if TYPE_CHECKING:
    from kt_devserver.oauth.server import KtAuthorizationServer

ALGORITHM = "RS256"
ID_TOKEN_TTL = 600


class SigningKey:
    def __init__(self, key: RSAKey) -> None:
        self._key = key

    @property
    def kid(self) -> str:
        kid = self._key.kid
        assert kid is not None
        return kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self._key, algorithms=[ALGORITHM])


def load_or_create(store: OAuthStore, *, now: float) -> SigningKey:
    stored = store.signing_key()
    if stored is None:
        kid = "kt-" + secrets.token_hex(8)
        key = RSAKey.generate_key(
            2048, parameters={"kid": kid, "use": "sig", "alg": ALGORITHM}, private=True
        )
        store.add_signing_key(kid, json.dumps(key.as_dict(private=True)), now=now)
        stored = store.signing_key()  # another process may have won the race: use the first
        assert stored is not None
    return SigningKey(RSAKey.import_key(json.loads(stored)))


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


class _IdTokens(OnServer):
    """`encode_id_token` for authlib's OIDC extensions: claims from the grant, joserfc signing."""

    def __init__(self, server: KtAuthorizationServer) -> None:
        self.server = server

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
