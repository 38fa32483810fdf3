"""The API as an OAuth protected resource: its metadata (RFC 9728) and its resource identifier.

    GET /.well-known/oauth-protected-resource     RFC 9728 §3: what a client needs to know to
                                                  get a token for this API

The API's resource identifier is the server's base URL, exactly as the readiness line prints it
(`http://127.0.0.1:8765`, or `--public-url`): it is the document's `resource`, the value a client
sends as RFC 8707's `resource` parameter and the audience of every access token the server's
authorization server issues (`is_this_api`). The API sits at the root, so the well-known path is
the plain one (RFC 9728 §3.1: nothing to insert after it). Its authorization server is the same
server (its issuer is the same base URL), the one listed in `authorization_servers`.

Every API 401/403 that refuses the bearer credential names this document in its challenge
(`WWW-Authenticate: Bearer resource_metadata="…"`, RFC 9728 §5.1): app.py's error middleware
passes `metadata_url` to errors.ApiError.response.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kt_devserver.oauth.http import issuer_of
from kt_devserver.oauth.scopes import OIDC_SCOPES

METADATA_PATH = "/.well-known/oauth-protected-resource"
RESOURCE_NAME = "Keeptrusts API (kt-devserver)"


def resource_of(request: web.Request) -> str:
    """This API's resource identifier: the server's base URL (also its issuer)."""
    return issuer_of(request)


def metadata_url(request: web.Request) -> str:
    return resource_of(request) + METADATA_PATH


def is_this_api(request: web.Request, resource: str | None) -> bool:
    """Whether `resource` (a token's audience) names this API, compared exactly (RFC 8707)."""
    return resource == resource_of(request)


def metadata(resource: str) -> dict[str, Any]:
    """The document (RFC 9728 §2): this API, its one authorization server, how to send a token."""
    return {
        "resource": resource,
        "authorization_servers": [resource],
        "scopes_supported": list(OIDC_SCOPES),
        "bearer_methods_supported": ["header"],
        "resource_name": RESOURCE_NAME,
    }


async def protected_resource(request: web.Request) -> web.Response:
    return web.json_response(metadata(resource_of(request)))


def register(app: web.Application) -> None:
    app.router.add_get(METADATA_PATH, protected_resource)
