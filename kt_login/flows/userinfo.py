"""The UserInfo request (OpenID Connect Core §5.3), optional: the ID token already says who
signed in. Its `sub` must be the ID token's (SECURITY.md ID-07)."""

from __future__ import annotations

from typing import Any

import httpx2

from ..dpop import Prover
from ..errors import ServerError, ValidationFailed
from . import Flow
from .transport import check_size, json_document


def get_userinfo(
    endpoint: str, *, access_token: str, subject: str | None, dpop: Prover | None = None
) -> Flow[dict[str, Any] | None]:
    """The provider's claims about `subject` (None: about whoever it names, by a non-empty
    `sub`); None when it does not answer 200. A DPoP-bound token (`dpop`) goes with a proof
    (RFC 9449 §7.1), once more with the nonce the provider asks for."""
    response = yield _request(endpoint, access_token, dpop)
    if dpop is not None and dpop.learn(response):
        response = yield _request(endpoint, access_token, dpop)
    if response.status_code != 200:
        return None
    return parse_userinfo(response.content, subject)


def _request(endpoint: str, access_token: str, dpop: Prover | None) -> httpx2.Request:
    request = httpx2.Request("GET", endpoint, headers={"Accept": "application/json"})
    if dpop is None:
        request.headers["Authorization"] = f"Bearer {access_token}"
    else:
        dpop.sign(request, access_token=access_token)
    return request


def parse_userinfo(body: bytes, subject: str | None) -> dict[str, Any]:
    check_size(body, "userinfo", "provider's userinfo reply")
    try:
        claims = json_document(body)
    except (ValueError, UnicodeDecodeError):
        raise ServerError("the provider's userinfo reply is not JSON") from None
    if not isinstance(claims, dict):
        raise ServerError("the provider's userinfo reply is not a JSON object")
    if subject is None:
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise ValidationFailed("the provider's userinfo names no subject (sub)")
    elif claims.get("sub") != subject:
        raise ValidationFailed("the provider's userinfo describes another user than the ID token")
    return claims
