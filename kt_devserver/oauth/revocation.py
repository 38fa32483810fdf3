"""Token revocation (RFC 7009) for OAuth-issued tokens: a refresh token ends its whole family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint  # type: ignore[import-untyped]

from kt_devserver.credentials import hash_secret
from kt_devserver.families import Grant
from kt_devserver.oauth.request import KtRequest, OnServer


@dataclass(frozen=True)
class Revocable:
    kind: str
    token_hash: str
    grant: Grant

    def check_client(self, client: Any) -> bool:
        return bool(self.grant.client_id == client.get_client_id())


class Revocation(OnServer, RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["none"]

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
        families = self.kt.families
        session_id: str | None = None
        if kind == "access_token":
            access = families.find_access_token(token_hash)
            session_id = None if access is None else access[0].id
        else:
            refresh = families.find_refresh_token(token_hash)
            session_id = None if refresh is None else refresh.session_id
        grant = None if session_id is None else families.grant(session_id)
        return None if grant is None else Revocable(kind, token_hash, grant)

    def revoke_token(self, token: Revocable, request: KtRequest) -> None:
        if token.kind == "refresh_token":
            self.kt.families.revoke(token.grant.session_id, now=self.kt.clock())
        else:
            self.kt.families.delete_access_token(token.token_hash)
