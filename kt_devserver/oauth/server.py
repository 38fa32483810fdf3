"""The authorization server: authlib's `AuthorizationServer` with our grants and endpoints.

Pieces used: `AuthorizationCodeGrant` + `CodeChallenge(required=True)` restricted to S256,
`OpenIDCode` (nonce, ID token on the code exchange), `RefreshTokenGrant` + `OpenIDToken` (rotation,
ID token on refresh), `RevocationEndpoint`, and for RFC 8628 `DeviceAuthorizationEndpoint` +
`DeviceCodeGrant` + `OpenIDToken` (ID token without nonce; the browser side is device_pages.py),
one module each under grants/, plus revocation.py and id_tokens.py. SQLite is synchronous like
authlib, so nothing here awaits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer  # type: ignore[import-untyped]

from kt_devserver.credentials import ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, new_secret
from kt_devserver.db import User
from kt_devserver.oauth import clients
from kt_devserver.oauth.grants.authorization_code import CodeGrant, S256CodeChallenge
from kt_devserver.oauth.grants.device_code import DeviceAuthorization, DeviceGrant
from kt_devserver.oauth.grants.refresh_token import RefreshGrant
from kt_devserver.oauth.grants.token_exchange import TokenExchangeGrant
from kt_devserver.oauth.id_tokens import KtOpenIDCode, KtOpenIDToken, SigningKey
from kt_devserver.oauth.request import KtRequest, Reply
from kt_devserver.oauth.revocation import Revocation
from kt_devserver.oauth.scopes import OFFLINE_ACCESS, OIDC_SCOPES, as_list
from kt_devserver.oauth.storage import OAuthStore
from kt_devserver.state import State


class KtAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, state: State, store: OAuthStore, key: SigningKey) -> None:
        super().__init__(scopes_supported=list(OIDC_SCOPES))
        self.state = state
        self.store = store
        self.families = state.db.families
        self.key = key
        self.clock = state.clock
        self.register_token_generator("default", self._generate_token)
        self.register_grant(CodeGrant, [S256CodeChallenge(required=True), KtOpenIDCode(self)])
        self.register_grant(RefreshGrant, [KtOpenIDToken(self)])
        self.register_grant(DeviceGrant, [KtOpenIDToken(self)])
        self.register_grant(TokenExchangeGrant)
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
