"""`/v1/auth/` session endpoints: login, MFA challenge, refresh, logout, whoami."""

from __future__ import annotations

from aiohttp import web

from kt_devserver import bodies, scopes
from kt_devserver.auth import Principal, audience_of, authenticate, bearer_token
from kt_devserver.credentials import ACCESS_TOKEN_PREFIX, hash_secret
from kt_devserver.errors import ApiError, JsonValue, mfa_required, unauthenticated
from kt_devserver.families import Refused
from kt_devserver.sessions import (
    NewPair,
    issue_mfa_token,
    session_json,
    start_session,
)
from kt_devserver.signin_checks import Code, TooManyAttempts, check_code, check_password
from kt_devserver.state import MAX_MFA_ATTEMPTS, state_of
from kt_devserver.views import iso8601, organization_json, user_json


def _invalid_grant(message: str) -> ApiError:
    return ApiError(401, "auth.invalid_grant", message)


def _too_many_attempts(refused: TooManyAttempts) -> ApiError:
    return ApiError(
        429,
        "auth.too_many_attempts",
        refused.message,
        extra={"retry_after": refused.retry_after},
        headers={"Retry-After": str(refused.retry_after)},
    )


def _mfa_token_expired() -> ApiError:
    return ApiError(
        401,
        "auth.mfa_token_expired",
        "The MFA token is unknown, used or expired; sign in again.",
    )


async def login(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await bodies.read_object(request)
    email = bodies.string(body, "email", max_length=320)
    password = bodies.string(body, "password")
    try:
        user = await check_password(state, email=email, password=password, address=request.remote)
    except TooManyAttempts as refused:
        raise _too_many_attempts(refused) from None
    if user is None:
        raise ApiError(401, "auth.invalid_credentials", "Wrong email or password.")
    if user.totp_secret is not None:
        token, ttl = issue_mfa_token(state, user, purpose="login")
        raise mfa_required(
            401,
            "Enter the code from your authenticator app.",
            mfa_token=token,
            expires_in=ttl,
        )
    return web.json_response(start_session(state, user, mfa_authenticated=False))


async def mfa_challenge(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await bodies.read_object(request)
    token_hash = hash_secret(bodies.string(body, "mfa_token"))
    code = bodies.string(body, "code", max_length=32)
    now = state.clock()
    row = state.db.find_mfa_token(token_hash)
    if row is None or row.used_at is not None or now >= row.expires_at:
        raise _mfa_token_expired()
    user = state.db.get_user(row.user_id)
    try:
        checked = check_code(state, user, code, address=request.remote)
    except TooManyAttempts as refused:
        raise _too_many_attempts(refused) from None
    if checked is not Code.ACCEPTED:
        state.db.record_mfa_failure(token_hash, now=now, max_attempts=MAX_MFA_ATTEMPTS)
        left = MAX_MFA_ATTEMPTS - row.failed_attempts - 1
        hint = "sign in again" if left <= 0 else f"{left} attempt(s) left"
        raise ApiError(401, "auth.invalid_mfa_code", f"{checked.refusal}; {hint}.")
    if not state.db.consume_mfa_token(token_hash, now=now):
        raise _mfa_token_expired()
    return web.json_response(start_session(state, user, mfa_authenticated=True))


_REFUSED = {
    Refused.UNKNOWN: "Unknown refresh token; sign in again.",
    Refused.REVOKED: "This session was revoked; sign in again.",
    Refused.REPLAYED: "This refresh token was already used; the session is revoked.",
    Refused.EXPIRED: "The refresh token expired; sign in again.",
}


async def refresh(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await bodies.read_object(request)
    token_hash = hash_secret(bodies.string(body, "refresh_token"))
    now = state.clock()
    row = state.db.families.find_refresh_token(token_hash)
    if row is not None and state.db.families.get(row.session_id).dpop_jkt is not None:
        # Not spent: a DPoP-bound family refreshes only at the token endpoint, with a proof.
        raise _invalid_grant(
            "This refresh token is bound to a DPoP key; refresh it at /oauth/token with a "
            "DPoP proof."
        )
    token = state.db.families.redeemable(token_hash, now=now)
    if isinstance(token, Refused):
        raise _invalid_grant(_REFUSED[token])
    session = token.session
    pair = NewPair(state, now=now, session_expires_at=session.expires_at)
    if not state.db.families.rotate(token, now=now, pair=pair.stored):
        raise _invalid_grant(_REFUSED[Refused.REPLAYED])
    user = state.db.get_user(session.user_id)
    return web.json_response(session_json(state, user, session, pair, now))


async def logout(request: web.Request) -> web.Response:
    """Revoke the bearer's session family (idempotent), and the refresh token's, if given."""
    state = state_of(request)
    body = await bodies.read_object(request, required=False)
    refresh_token = bodies.optional_string(body, "refresh_token")
    now = state.clock()
    bearer = bearer_token(request)
    user_id: str | None = None
    if bearer is not None:
        found = None
        if bearer.startswith(ACCESS_TOKEN_PREFIX):
            found = state.db.families.find_access_token(hash_secret(bearer))
        if found is None:
            raise unauthenticated("Log out with a session access token.")
        session = found[0]
        audience_of(request, session)  # another API's token ends nothing here (RFC 8707)
        user_id = session.user_id
        state.db.families.revoke(session.id, now=now)
    elif refresh_token is None:
        raise unauthenticated("Log out with a session access token.")
    if refresh_token is not None:
        row = state.db.families.find_refresh_token(hash_secret(refresh_token))
        if row is not None:
            owner = state.db.families.get(row.session_id).user_id
            if user_id is None or owner == user_id:
                state.db.families.revoke(row.session_id, now=now)
    return web.json_response({"revoked": True})


async def whoami(request: web.Request) -> web.Response:
    principal = authenticate(request)
    return web.json_response(whoami_json(principal))


def whoami_json(principal: Principal) -> dict[str, JsonValue]:
    token = principal.api_token
    reply: dict[str, JsonValue] = {
        "user": user_json(principal.user),
        "organization": organization_json(principal.organization),
        "role": principal.user.role,
        "scopes": list(scopes.ordered(principal.scopes)),
        "mfa_authenticated": principal.mfa_authenticated,
        "auth_method": principal.auth_method,
        "token": None if token is None else {"id": token.id, "name": token.name},
        # RFC 8707: the API an OAuth-issued access token is for (its aud); null otherwise.
        "audience": principal.audience,
        "expires_at": iso8601(principal.expires_at),
    }
    exchanged = principal.exchanged
    if exchanged is not None and exchanged.federated:
        reply["federated"] = {"issuer": exchanged.issuer, "subject": exchanged.subject}
    elif exchanged is not None:
        reply["act"] = {"sub": exchanged.actor}  # RFC 8693 §4.1: who acts for the user
    return reply


def register(app: web.Application) -> None:
    app.router.add_post("/v1/auth/login", login)
    app.router.add_post("/v1/auth/mfa/challenge", mfa_challenge)
    app.router.add_post("/v1/auth/refresh", refresh)
    app.router.add_post("/v1/auth/logout", logout)
    app.router.add_get("/v1/auth/whoami", whoami)
