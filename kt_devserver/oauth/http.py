"""aiohttp ⇄ authlib: the OAuth context on the app, request building, reply conversion, `iss`."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web
from authlib.oauth2.rfc6749 import OAuth2Error  # type: ignore[import-untyped]

from kt_devserver.oauth.id_tokens import SigningKey
from kt_devserver.oauth.request import KtRequest, Reply
from kt_devserver.oauth.server import KtAuthorizationServer
from kt_devserver.oauth.storage import OAuthStore
from kt_devserver.state import BASE_URL, State

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# RFC 6749 §5.2 makes error_description optional; we always send one.
_DEFAULT_DESCRIPTIONS = {
    "invalid_request": "The request is missing a parameter or is malformed.",
    "invalid_client": "Unknown client, or the client cannot authenticate this way.",
    "invalid_grant": "The code or refresh token is invalid, expired, revoked or already used.",
    "unauthorized_client": "This client may not use this grant type.",
    "unsupported_grant_type": "This grant type is not supported.",
    "invalid_scope": "The requested scope is invalid or exceeds what was granted.",
    "unsupported_token_type": "This token type cannot be revoked here.",
    "insecure_transport": "OAuth needs https or a loopback address.",
    "authorization_pending": "The user has not approved the sign-in yet.",
    "slow_down": "Polled too fast; wait 5 seconds longer between polls.",
    "expired_token": "The device code expired; start a new sign-in.",
    "access_denied": "The user denied the sign-in.",
}


@dataclass(frozen=True)
class OAuthContext:
    state: State
    store: OAuthStore
    key: SigningKey
    server: KtAuthorizationServer


OAUTH = web.AppKey("kt_devserver.oauth", OAuthContext)


def oauth_of(request: web.Request) -> OAuthContext:
    return request.app[OAUTH]


def issuer_of(request: web.Request) -> str:
    """The base URL the readiness line printed; for an in-process app, the URL it was reached at."""
    bound = request.app[BASE_URL].value if BASE_URL in request.app else None
    return bound if bound is not None else f"{request.scheme}://{request.host}"


def oauth_request(
    request: web.Request, pairs: list[tuple[str, str]], *, method: str | None = None
) -> KtRequest:
    """Build authlib's request; raises authlib's InsecureTransportError off loopback over http."""
    issuer = issuer_of(request)
    return KtRequest(
        method=method or request.method,
        uri=issuer + request.path_qs,
        headers=request.headers,
        pairs=pairs,
        issuer=issuer,
    )


async def form_pairs(request: web.Request) -> list[tuple[str, str]] | None:
    """The urlencoded body as (name, value) pairs; None if the body is not a form."""
    if request.content_type != FORM_CONTENT_TYPE:
        return None
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return parse_qsl(text, keep_blank_values=True)


async def form_request(request: web.Request) -> KtRequest | web.Response:
    """authlib's request for a form POST (token, revocation, device authorization, PAR), or an
    RFC 6749 §5.2 error response: not a form, a repeated parameter, insecure transport."""
    pairs = await form_pairs(request)
    if pairs is None:
        return oauth_error(
            400, "invalid_request", "The body must be application/x-www-form-urlencoded."
        )
    repeated = sorted(name for name, count in Counter(k for k, _ in pairs).items() if count > 1)
    if repeated:
        return oauth_error(400, "invalid_request", f"Repeated parameter: {repeated[0][:40]}.")
    try:
        return oauth_request(request, pairs)
    except OAuth2Error as error:
        return json_reply(Reply(*error()))


def json_reply(reply: Reply) -> web.Response:
    body = reply.body
    if isinstance(body, dict) and "error" in body and not body.get("error_description"):
        body = {**body, "error_description": _DEFAULT_DESCRIPTIONS.get(body["error"], "Refused.")}
    headers = {name: value for name, value in reply.headers if name.lower() != "content-type"}
    headers["Cache-Control"] = "no-store"
    return web.json_response(body, status=reply.status, headers=headers, dumps=json.dumps)


def oauth_error(status: int, error: str, description: str) -> web.Response:
    return json_reply(Reply(status, {"error": error, "error_description": description}, []))


def with_iss(location: str, issuer: str) -> str:
    """`location` with the RFC 9207 `iss` parameter added to its query."""
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "iss"] + [("iss", issuer)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def authorization_redirect(reply: Reply, issuer: str) -> web.Response:
    """An authorization response (code or error) as a 302 carrying `iss`."""
    location = dict(reply.headers)["Location"]
    return web.Response(status=302, headers={"Location": with_iss(location, issuer)})
