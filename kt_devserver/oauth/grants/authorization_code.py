"""The authorization code grant (RFC 6749 §4.1) with PKCE S256 required (RFC 7636, RFC 9700)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    InvalidRequestError,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636.challenge import (  # type: ignore[import-untyped]
    compare_s256_code_challenge,
)

from kt_devserver.credentials import hash_secret
from kt_devserver.db import User
from kt_devserver.oauth import resources
from kt_devserver.oauth.grants.exchange import exchange_for_tokens, revoke_replayed
from kt_devserver.oauth.request import KtRequest, OnServer
from kt_devserver.oauth.storage import AuthCode

AUTHORIZATION_CODE_TTL = 60
_ALREADY_USED = "The authorization code was already used."


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


class CodeGrant(OnServer, AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    @staticmethod
    def validate_authorization_redirect_uri(request: KtRequest, client: Any) -> str:
        """authlib's check, and the server's own remote page for a client allowed it."""
        redirect_uri = request.payload.redirect_uri
        if redirect_uri and client.accepts(redirect_uri, request.issuer):
            return str(redirect_uri)
        return str(AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client))

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
                resource=resources.requested(request),
            )
        )

    def validate_token_request(self) -> None:
        super().validate_token_request()
        # RFC 8707 §2.2: the token request may name the code's resource, no other.
        resources.same_as_granted(self.request, self.request.authorization_code.resource)

    def query_authorization_code(self, code: str, client: Any) -> AuthCode | None:
        found = self.kt.store.find_code(hash_secret(code))
        if found is None or found.client_id != client.get_client_id():
            return None
        if found.used_at is not None:
            revoke_replayed(self.kt, found)
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
        exchange_for_tokens(
            self.kt,
            self.request,
            token,
            code,
            already_used="The authorization code was already used.",
        )
