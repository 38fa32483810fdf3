"""`/v1/auth/tokens`: scoped API tokens — create (secret shown once), list, revoke, rotate."""

from __future__ import annotations

from aiohttp import web

from kt_devserver import bodies, scopes
from kt_devserver.auth import Principal, authenticate, require_scope
from kt_devserver.credentials import (
    API_TOKEN_DISPLAY_LENGTH,
    API_TOKEN_PREFIX,
    hash_secret,
    new_secret,
)
from kt_devserver.db import ApiToken, NewApiToken
from kt_devserver.errors import (
    ApiError,
    insufficient_scope,
    insufficient_user_authentication,
    mfa_required,
    not_found,
)
from kt_devserver.oauth.scopes import ACR_MFA
from kt_devserver.sessions import issue_mfa_token
from kt_devserver.state import DEFAULT_API_TOKEN_DAYS, MAX_API_TOKEN_DAYS, State, state_of
from kt_devserver.views import token_info

_DAY = 24 * 3600


def _new_token(
    state: State,
    *,
    name: str,
    token_scopes: tuple[str, ...],
    lifetime: float,
    parent: ApiToken | None = None,
) -> tuple[str, NewApiToken]:
    """A new token living `lifetime` seconds; one made with a `parent` token ends no later than
    it, and is revoked with it."""
    secret = new_secret(API_TOKEN_PREFIX)
    expires_at = state.clock() + lifetime
    return secret, NewApiToken(
        name=name,
        scopes=token_scopes,
        secret_hash=hash_secret(secret),
        prefix=secret[:API_TOKEN_DISPLAY_LENGTH],
        expires_at=expires_at if parent is None else min(expires_at, parent.expires_at),
        parent_id=None if parent is None else parent.id,
    )


def _requested_scopes(body: bodies.Body, principal: Principal) -> tuple[str, ...]:
    requested = bodies.string_list(body, "scopes")
    unknown = sorted(set(requested) - set(scopes.ALL_SCOPES))
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:5])
        raise ApiError(
            400,
            "auth.invalid_scope",
            f"Unknown scope(s): {shown}. Valid scopes: {', '.join(scopes.ALL_SCOPES)}.",
            extra={"valid_scopes": list(scopes.ALL_SCOPES)},
        )
    beyond = scopes.ordered(set(requested) - principal.scopes)
    if beyond:
        # The credential needs these scopes to pass them on (RFC 6750 §3.1 insufficient_scope).
        refused = insufficient_scope(
            " ".join(beyond),
            f"You cannot grant scope(s) you do not hold: {', '.join(beyond)}.",
        )
        refused.code = "auth.scope_not_allowed"
        raise refused
    return tuple(scopes.ordered(requested))


def _own_token(state: State, principal: Principal, token_id: str) -> ApiToken:
    token = state.db.get_api_token(token_id, user_id=principal.user.id)
    if token is None:
        raise not_found("No such token.")
    return token


async def create_token(request: web.Request) -> web.Response:
    state = state_of(request)
    principal = authenticate(request)
    require_scope(principal, scopes.TOKENS_WRITE)
    body = await bodies.read_object(request)
    name = bodies.string(body, "name", max_length=100)
    token_scopes = _requested_scopes(body, principal)
    days = bodies.optional_int(
        body, "expires_in_days", default=DEFAULT_API_TOKEN_DAYS, low=1, high=MAX_API_TOKEN_DAYS
    )
    # _requested_scopes already kept a token-made token within the parent's (current) scopes.
    secret, new = _new_token(
        state,
        name=name,
        token_scopes=token_scopes,
        lifetime=days * _DAY,
        parent=principal.api_token,
    )
    row = state.db.create_api_token(user_id=principal.user.id, now=state.clock(), token=new)
    return web.json_response(
        {"token": token_info(row, state.clock()), "secret": secret}, status=201
    )


async def list_tokens(request: web.Request) -> web.Response:
    state = state_of(request)
    principal = authenticate(request)
    require_scope(principal, scopes.TOKENS_READ)
    now = state.clock()
    rows = state.db.list_api_tokens(principal.user.id)
    return web.json_response({"tokens": [token_info(row, now) for row in rows]})


async def revoke_token(request: web.Request) -> web.Response:
    state = state_of(request)
    principal = authenticate(request)
    require_scope(principal, scopes.TOKENS_WRITE)
    token = _own_token(state, principal, request.match_info["token_id"])
    now = state.clock()
    state.db.revoke_api_token(token.id, now=now)
    return web.json_response({"token": token_info(_own_token(state, principal, token.id), now)})


def _require_mfa_session(state: State, principal: Principal) -> None:
    if principal.session is None:
        raise mfa_required(403, "API tokens cannot rotate tokens; use a session that passed MFA.")
    max_age = state.settings.mfa_max_age
    # An MFA session starts at its MFA challenge, so its age is the age of that proof.
    mfa_age = state.clock() - principal.session.created_at
    if principal.session.mfa_authenticated and (max_age is None or mfa_age <= max_age):
        return
    if principal.user.totp_secret is None:
        raise mfa_required(
            403, "Rotating a token needs an MFA-authenticated session; enroll MFA first."
        )
    # A step-up the client can take (RFC 9470): the level and, with --mfa-max-age, how recent
    # the sign-in must be; the mfa_token answers it with a code (kt auth mfa challenge).
    token, ttl = issue_mfa_token(state, principal.user, purpose="step_up")
    raise insufficient_user_authentication(
        "Rotating a token needs MFA; answer the challenge with your authenticator code.",
        acr_values=ACR_MFA,
        max_age=max_age,
        mfa_token=token,
        expires_in=ttl,
    )


async def rotate_token(request: web.Request) -> web.Response:
    state = state_of(request)
    principal = authenticate(request)
    require_scope(principal, scopes.TOKENS_WRITE)
    _require_mfa_session(state, principal)
    body = await bodies.read_object(request, required=False)
    old = _own_token(state, principal, request.match_info["token_id"])
    if old.revoked_at is not None:
        raise not_found("That token is revoked; a revoked token cannot be rotated.")
    # The new token lives as long as the old one was made to, unless the body names a lifetime.
    days = bodies.optional_int(body, "expires_in_days", default=0, low=1, high=MAX_API_TOKEN_DAYS)
    lifetime = days * _DAY if days else old.expires_at - old.created_at
    secret, new = _new_token(state, name=old.name, token_scopes=old.scopes, lifetime=lifetime)
    now = state.clock()
    row = state.db.rotate_api_token(old.id, user_id=principal.user.id, now=now, token=new)
    if row is None:
        raise not_found("That token is revoked; a revoked token cannot be rotated.")
    return web.json_response(
        {
            "token": token_info(row, now),
            "secret": secret,
            "revoked": token_info(_own_token(state, principal, old.id), now),
        }
    )


def register(app: web.Application) -> None:
    app.router.add_post("/v1/auth/tokens", create_token)
    app.router.add_get("/v1/auth/tokens", list_tokens)
    app.router.add_delete("/v1/auth/tokens/{token_id}", revoke_token)
    app.router.add_post("/v1/auth/tokens/{token_id}/rotate", rotate_token)
