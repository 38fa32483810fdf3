"""What the authlib subclasses share: the request built from aiohttp, the reply, who approved,
and the typed way to their server.

authlib is synchronous and framework-agnostic: a handler reads the aiohttp body first, builds a
`KtRequest` from it (`http.oauth_request`), calls the server, and turns the `Reply` (status,
body, headers) back into an aiohttp response. authlib ships no type information, hence the
`type: ignore` on its imports and base classes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request  # type: ignore[import-untyped]

from kt_devserver.db import User
from kt_devserver.families import Grant

if TYPE_CHECKING:
    from kt_devserver.oauth.server import KtAuthorizationServer


class Reply(NamedTuple):
    status: int
    body: Any
    headers: list[tuple[str, str]]


@dataclass(frozen=True)
class AuthContext:
    """Who approved an authorization request, and how they signed in."""

    user: User
    auth_time: float
    mfa: bool


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class KtRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request from an already-read aiohttp request (query for GET, form for POST)."""

    def __init__(
        self,
        *,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        pairs: list[tuple[str, str]],
        issuer: str,
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self.pairs = pairs
        self.payload = _Payload(pairs)
        self.issuer = issuer
        self.kt_auth: AuthContext | None = None
        self.kt_grant: Grant | None = None
        # At the token endpoint: the thumbprint of the key of the request's valid DPoP proof
        # (RFC 9449), which the tokens issued are bound to; None without a proof.
        self.kt_dpop_jkt: str | None = None
        # A token exchange's subject-token issuer keys, fetched before authlib runs
        # (grants/token_exchange.py: SubjectKeys).
        self.kt_subject_keys: Any = None

    @property
    def args(self) -> dict[str, str]:
        return dict(self.payload.data) if self.method == "GET" else {}

    @property
    def form(self) -> dict[str, str]:
        return dict(self.payload.data) if self.method == "POST" else {}


class OnServer:
    """A mixin for authlib's grants and endpoints: `kt` is their `server`, typed as ours."""

    server: Any

    @property
    def kt(self) -> KtAuthorizationServer:
        server: KtAuthorizationServer = self.server
        return server
