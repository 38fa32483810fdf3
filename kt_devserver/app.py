"""The aiohttp application factory: routes registered per module, JSON errors for everything.

Endpoint families are modules with a `register(app)` function and one line in `create_app`;
the OAuth/OIDC authorization server is the `oauth` package (its routes: oauth/routes.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from kt_devserver import auth_routes, demo, resource_metadata, token_routes
from kt_devserver.bodies import MAX_BODY_BYTES
from kt_devserver.db import MEMORY, Database
from kt_devserver.errors import ApiError, from_http_exception, internal
from kt_devserver.hosts import check_host
from kt_devserver.oauth import routes as oauth_routes
from kt_devserver.state import BASE_URL, STATE, BaseUrl, Clock, Settings, State

logger = logging.getLogger("kt_devserver")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


def _route_name(request: web.Request) -> str:
    """The matched route's pattern, never the raw path or query (they may carry secrets)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(unmatched)"


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except ApiError as exc:
        response = exc.response(resource_metadata=resource_metadata.metadata_url(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = from_http_exception(exc).response()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # Only the exception type and stack: its message or the body could hold a secret.
        logger.error(
            "unhandled %s in %s %s\n%s",
            type(exc).__name__,
            request.method,
            _route_name(request),
            "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
        )
        response = internal().response()
    response.headers.update(_SECURITY_HEADERS)
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(
    *,
    db: Database | str | Path = MEMORY,
    settings: Settings | None = None,
    clock: Clock = time.time,
) -> web.Application:
    """Build the app over `db` (a path, `:memory:` or an open Database), seeding the demo data."""
    database = db if isinstance(db, Database) else Database(db)
    demo.seed(database)
    # check_host runs inside json_errors, so its refusal is a JSON error with the usual headers.
    app = web.Application(middlewares=[json_errors, check_host], client_max_size=MAX_BODY_BYTES)
    app[STATE] = State(db=database, settings=settings or Settings(), clock=clock)
    app[BASE_URL] = BaseUrl()
    app.router.add_get("/healthz", healthz)
    auth_routes.register(app)
    token_routes.register(app)
    oauth_routes.register(app)
    resource_metadata.register(app)
    if not isinstance(db, Database):

        async def close_db(_: web.Application) -> None:
            database.close()

        app.on_cleanup.append(close_db)
    return app
