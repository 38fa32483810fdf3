"""The ID-token signing key: RS256, generated with joserfc on first start, kept in the database.

The private JWK lives in `oauth_signing_keys` (the database file is owner-only); `jwks()` is
what `/oauth/jwks` publishes (public members only, with `kid`, `use` and `alg`).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from kt_devserver.oauth.storage import OAuthStore

ALGORITHM = "RS256"


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
