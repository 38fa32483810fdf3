"""OAuth 2.0 Token Exchange (RFC 8693) as flows: a CI job's identity JWT, or a session's access
token, traded at the token endpoint for a new access token; and the GitHub Actions request for
the job's identity token.

The reply is RFC 8693 §2.2.1's, parsed by flows.tokens (token_type, lifetime bounds, errors
never echoed) and held to `issued_token_type` being an access token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx2

from ..errors import ServerError
from . import Flow
from .tokens import FORM, json_reply, parse_token_response
from .transport import check_size, json_document

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN


@dataclass(frozen=True)
class ExchangedToken:
    access_token: str = field(repr=False)
    expires_in: float | None
    scope: str | None


def exchange_token(
    token_endpoint: str,
    *,
    client_id: str,
    subject_token: str,
    subject_token_type: str,
    scope: str | None = None,
    actor: str | None = None,
    expires_in: int | None = None,
) -> Flow[ExchangedToken]:
    """One token exchange request. `actor` and `expires_in` are kt-devserver's extension
    parameters for delegation (RFC 8693 names no actor without an actor token)."""
    data = {
        "grant_type": GRANT_TYPE,
        "client_id": client_id,
        "subject_token": subject_token,
        "subject_token_type": subject_token_type,
        "requested_token_type": ACCESS_TOKEN,
    }
    if scope:
        data["scope"] = scope
    if actor:
        data["actor"] = actor
    if expires_in is not None:
        data["expires_in"] = str(expires_in)
    response = yield httpx2.Request("POST", token_endpoint, headers=FORM, data=data)
    issued = json_reply(response, "token exchange").get("issued_token_type")
    if issued not in (None, ACCESS_TOKEN):
        raise ServerError("the token exchange issued something other than an access token")
    tokens = parse_token_response(response)
    return ExchangedToken(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        scope=tokens.scope,
    )


def github_actions_token(request_url: str, request_token: str, audience: str) -> Flow[str]:
    """The job's identity token from GitHub Actions (`ACTIONS_ID_TOKEN_REQUEST_URL` with the
    audience added, `ACTIONS_ID_TOKEN_REQUEST_TOKEN` as bearer): its `value`."""
    parts = urlsplit(request_url)
    query = "&".join(q for q in (parts.query, urlencode({"audience": audience})) if q)
    url = urlunsplit(parts._replace(query=query))
    response = yield httpx2.Request(
        "GET",
        url,
        headers={"Authorization": f"Bearer {request_token}", "Accept": "application/json"},
    )
    if response.status_code != 200:
        raise ServerError(
            f"GitHub Actions did not give the job's identity token (HTTP {response.status_code});"
            " does the workflow have `permissions: id-token: write`?"
        )
    check_size(response.content, "token", "GitHub Actions' identity token reply")
    try:
        body = json_document(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise ServerError("GitHub Actions' identity token reply has no value")
    return value
