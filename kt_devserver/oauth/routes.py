"""The OAuth 2.0 / OpenID Connect routes, and the handlers of its JSON endpoints.

Paths (relative to the issuer, which is the server's base URL):

    GET  /.well-known/oauth-authorization-server   RFC 8414 metadata
    GET  /.well-known/openid-configuration         the same document (OIDC Discovery)
    GET  /oauth/jwks                               ID-token verification keys
    GET  /oauth/authorize                          authorization endpoint (HTML pages)
    POST /oauth/authorize/login | /mfa | /consent  the pages' forms
    POST /oauth/token                              authorization_code, refresh_token, device_code,
                                                   RFC 8693 token exchange (CI sign-in, delegation)
    POST /oauth/device_authorization               RFC 8628 device authorization endpoint
    POST /oauth/par                                RFC 9126 pushed authorization requests (par.py)
    GET  /device, /oauth/device (POST too), POST /oauth/device/confirm | /consent
                                                   RFC 8628 verification pages (device_pages.py)
    GET  /oauth/sso/start, /oauth/sso/callback     federated sign-in (sso.py, --sso-issuer)
    POST /oauth/revoke                             RFC 7009
    GET  /oauth/userinfo  (POST too)               OIDC UserInfo
"""

from __future__ import annotations

from aiohttp import web

from kt_devserver import dpop
from kt_devserver.auth import presented_token
from kt_devserver.credentials import hash_secret
from kt_devserver.oauth import authorize, device_pages, id_tokens, par, sso
from kt_devserver.oauth.grants import token_exchange
from kt_devserver.oauth.http import (
    OAUTH,
    OAuthContext,
    form_request,
    issuer_of,
    json_reply,
    oauth_error,
    oauth_of,
)
from kt_devserver.oauth.id_tokens import user_claims
from kt_devserver.oauth.metadata import (
    AUTHORIZE_PATH,
    DEVICE_AUTHORIZATION_PATH,
    JWKS_PATH,
    REMOTE_CALLBACK_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    USERINFO_PATH,
    metadata,
)
from kt_devserver.oauth.request import Reply
from kt_devserver.oauth.scopes import OPENID, as_list
from kt_devserver.oauth.server import KtAuthorizationServer
from kt_devserver.oauth.storage import OAuthStore
from kt_devserver.state import STATE


async def discovery(request: web.Request) -> web.Response:
    settings = oauth_of(request).state.settings
    return web.json_response(
        metadata(
            issuer_of(request),
            device_flow=settings.device_flow,
            par=settings.par or settings.require_par,
            require_par=settings.require_par,
        )
    )


async def jwks(request: web.Request) -> web.Response:
    return web.json_response(oauth_of(request).key.jwks())


async def token(request: web.Request) -> web.Response:
    built = await form_request(request)
    if isinstance(built, web.Response):
        return built
    state = oauth_of(request).state
    try:
        # RFC 9449 §5: a proof binds the tokens issued to its key; a bad one is refused before
        # the grant is looked at, so nothing (a code, a refresh token) is spent by it.
        built.kt_dpop_jkt = dpop.check_proof(state, request)
    except dpop.ProofRefused as refused:
        response = oauth_error(400, refused.error, refused.description)
    else:
        await token_exchange.prepare(state, built)  # a CI token's trusted issuer keys
        response = json_reply(oauth_of(request).server.create_token_response(built))
    if request.headers.get(dpop.HEADER) is not None:
        response.headers.update(dpop.nonce_headers(state))
    return response


async def revoke(request: web.Request) -> web.Response:
    built = await form_request(request)
    if isinstance(built, web.Response):
        return built
    reply: Reply = oauth_of(request).server.create_endpoint_response("revocation", built)
    return json_reply(reply)


async def device_authorization(request: web.Request) -> web.Response:
    built = await form_request(request)
    if isinstance(built, web.Response):
        return built
    if not oauth_of(request).state.settings.device_flow:
        # RFC 8628 §3.2 answers errors as RFC 6749 §5.2 does: this client may not use the grant.
        return oauth_error(
            400,
            "unauthorized_client",
            "Device sign-in is turned off on this server; sign in with a browser instead.",
        )
    server = oauth_of(request).server
    reply: Reply = server.create_endpoint_response("device_authorization", built)
    return json_reply(reply)


def _bearer_error(status: int, error: str, description: str) -> web.Response:
    response = oauth_error(status, error, description)
    response.headers["WWW-Authenticate"] = (
        f'Bearer realm="kt-devserver", error="{error}", error_description="{description}"'
    )
    return response


async def userinfo(request: web.Request) -> web.Response:
    ctx = oauth_of(request)
    db = ctx.state.db
    presented = presented_token(request)
    if presented is None:
        response = oauth_error(401, "invalid_token", "Send an OAuth access token as Bearer.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="kt-devserver"'
        return response
    scheme, token_value = presented
    found = db.families.find_access_token(hash_secret(token_value))
    grant = None if found is None else db.families.grant(found[0].id)
    if found is None or grant is None:
        return _bearer_error(401, "invalid_token", "Unknown access token.")
    session, expires_at = found
    if session.revoked_at is not None or ctx.state.clock() >= expires_at:
        return _bearer_error(401, "invalid_token", "The access token is revoked or expired.")
    try:
        dpop.check_resource_request(
            ctx.state, request, scheme=scheme, token=token_value, bound_jkt=session.dpop_jkt
        )
    except dpop.ProofRefused as refused:
        error = dpop.resource_error(ctx.state, refused)
        response = oauth_error(401, refused.error, refused.description)
        response.headers.update(error.headers)
        return response
    if OPENID not in as_list(grant.scope):
        return _bearer_error(403, "insufficient_scope", "The token lacks the openid scope.")
    return web.json_response(user_claims(db.get_user(session.user_id), grant.scope))


def register(app: web.Application) -> None:
    state = app[STATE]
    store = OAuthStore(state.db)
    key = id_tokens.load_or_create(store, now=state.clock())
    app[OAUTH] = OAuthContext(
        state=state, store=store, key=key, server=KtAuthorizationServer(state, store, key)
    )
    app.router.add_get("/.well-known/oauth-authorization-server", discovery)
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get(JWKS_PATH, jwks)
    app.router.add_get(AUTHORIZE_PATH, authorize.authorize)
    app.router.add_post(AUTHORIZE_PATH + "/login", authorize.login)
    app.router.add_post(AUTHORIZE_PATH + "/mfa", authorize.mfa)
    app.router.add_post(AUTHORIZE_PATH + "/consent", authorize.consent)
    app.router.add_get(REMOTE_CALLBACK_PATH, authorize.remote_callback)
    app.router.add_post(TOKEN_PATH, token)
    app.router.add_post(REVOKE_PATH, revoke)
    app.router.add_post(DEVICE_AUTHORIZATION_PATH, device_authorization)
    device_pages.register(app)
    par.register(app)
    sso.register(app, app[OAUTH])
    app.router.add_get(USERINFO_PATH, userinfo)
    app.router.add_post(USERINFO_PATH, userinfo)
