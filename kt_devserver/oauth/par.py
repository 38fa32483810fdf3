"""Pushed authorization requests (RFC 9126): the endpoint, `POST /oauth/par`.

The endpoint authenticates the client as the token endpoint does (kt's clients are public:
`client_id` alone, RFC 9126 §2), refuses a `request_uri` among the pushed parameters (§2.1),
validates the request as the authorization endpoint would (client, registered redirect URI,
response_type, PKCE S256, scope: authlib's own checks; RFC 8707's resource), keeps it in memory
and answers 201 with `urn:ietf:params:oauth:request_uri:<random>` and `expires_in` (60 s,
`--par-request-ttl`; §2.2). Errors are RFC 6749 §5.2 JSON, never a redirect.

The authorization endpoint takes the pushed parameters back through `pushed.resolve`
(`GET /oauth/authorize?client_id=…&request_uri=…`, single use, the same client_id, nothing
beside them).

`--par` advertises the endpoint in the metadata (`pushed_authorization_request_endpoint`);
`--require-par` also says `require_pushed_authorization_requests: true` and refuses every
authorization request that was not pushed; a client registered with `require_par`
(`kt-cli-par`, clients.py) gets that refusal on any server (§4, with `invalid_request`).
"""

from __future__ import annotations

from aiohttp import web
from authlib.oauth2.rfc6749 import OAuth2Error  # type: ignore[import-untyped]

from kt_devserver.oauth import resources
from kt_devserver.oauth.authorize import precheck, validate_max_age
from kt_devserver.oauth.http import (
    OAuthContext,
    form_request,
    json_reply,
    oauth_error,
    oauth_of,
    oauth_request,
)
from kt_devserver.oauth.metadata import PAR_PATH
from kt_devserver.oauth.pushed import PUSHED, Pushed, PushedRequests, enabled
from kt_devserver.oauth.request import KtRequest, Reply


async def push(request: web.Request) -> web.Response:
    ctx = oauth_of(request)
    built = await form_request(request)
    if isinstance(built, web.Response):
        return built
    if "request_uri" in built.payload.data:
        return oauth_error(
            400, "invalid_request", "A pushed authorization request must not carry request_uri."
        )
    try:
        client = ctx.server.authenticate_client(built, ["none"], endpoint="pushed_authorization")
        # The checks of the authorization endpoint, on the pushed parameters (RFC 9126 §2.1).
        as_authorize = oauth_request(request, built.pairs, method="GET")
        _validate(ctx, as_authorize)
    except OAuth2Error as error:
        return _json_error(error)
    now = ctx.state.clock()
    ttl = ctx.state.settings.par_request_ttl
    uri = request.app[PUSHED].add(Pushed(client.get_client_id(), built.pairs, now + ttl), now=now)
    if uri is None:
        response = oauth_error(429, "temporarily_unavailable", "Too many pushed requests; retry.")
        response.headers["Retry-After"] = str(ttl)
        return response
    return json_reply(Reply(201, {"request_uri": uri, "expires_in": ttl}, []))


def _validate(ctx: OAuthContext, oauth: KtRequest) -> None:
    precheck(oauth)
    grant = ctx.server.get_consent_grant(oauth, end_user=None)
    resources.requested(oauth)  # RFC 8707: only this server's API (invalid_target)
    validate_max_age(oauth.payload.data.get("max_age"), grant.redirect_uri, oauth.payload.state)


def _json_error(error: OAuth2Error) -> web.Response:
    """An authlib error as RFC 6749 §5.2 JSON: never the redirect it would make at /authorize."""
    status = error.status_code if error.status_code in (400, 401) else 400
    description = error.get_error_description() or "The pushed request is invalid."
    return oauth_error(status, error.error or "invalid_request", description)


async def not_offered(request: web.Request) -> web.Response:
    return oauth_error(
        404, "invalid_request", "Pushed authorization requests are off on this server (--par)."
    )


async def endpoint(request: web.Request) -> web.Response:
    if not enabled(oauth_of(request)):
        return await not_offered(request)
    return await push(request)


def register(app: web.Application) -> None:
    app[PUSHED] = PushedRequests()
    app.router.add_post(PAR_PATH, endpoint)
