"""Who is calling: session access tokens (`kta_…`, as Bearer, or as DPoP when their family is
bound to a DPoP key, with a proof of it: dpop.py) and API tokens (`kt_live_…`, Bearer).

An access token the OAuth authorization server issued is for one resource (RFC 8707: its
grant's `resource`, the token's audience): the API accepts it only when that is this API's
identifier (resource_metadata.resource_of), so a token obtained for another API that shares the
token database is refused as an invalid token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from kt_devserver import dpop, scopes
from kt_devserver.credentials import ACCESS_TOKEN_PREFIX, API_TOKEN_PREFIX, hash_secret
from kt_devserver.db import ApiToken, Organization, User
from kt_devserver.errors import ApiError, bearer_challenge, insufficient_scope, unauthenticated
from kt_devserver.exchanges import Exchanged, Exchanges
from kt_devserver.families import Session
from kt_devserver.resource_metadata import is_this_api, resource_of
from kt_devserver.state import state_of


@dataclass(frozen=True)
class Principal:
    user: User
    organization: Organization
    scopes: frozenset[str]
    auth_method: Literal["session", "api_token", "federated", "delegated"]
    session: Session | None
    api_token: ApiToken | None
    expires_at: float
    # A session from a token exchange (RFC 8693): a CI sign-in's or a delegated one's.
    exchanged: Exchanged | None = None
    # The resource an OAuth-issued access token is for (its audience, RFC 8707); None for the
    # API's own sessions and API tokens, which are this API's.
    audience: str | None = None

    @property
    def mfa_authenticated(self) -> bool:
        return self.session is not None and self.session.mfa_authenticated


def bearer_token(request: web.Request) -> str | None:
    presented = presented_token(request)
    return presented[1] if presented is not None and presented[0] == "bearer" else None


def presented_token(request: web.Request) -> tuple[str, str] | None:
    """(scheme, token) of `Authorization: Bearer|DPoP <token>` (scheme lower-cased)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() not in ("bearer", "dpop") or not value:
        return None
    return scheme.lower(), value


def token_revoked(message: str) -> ApiError:
    return ApiError(
        401, "auth.token_revoked", message, headers=bearer_challenge(error="invalid_token")
    )


def token_expired(message: str) -> ApiError:
    return ApiError(
        401, "auth.token_expired", message, headers=bearer_challenge(error="invalid_token")
    )


def authenticate(request: web.Request) -> Principal:
    presented = presented_token(request)
    if presented is None:
        raise unauthenticated()
    scheme, token = presented
    if token.startswith(ACCESS_TOKEN_PREFIX):
        return _session_principal(request, token, scheme)
    if token.startswith(API_TOKEN_PREFIX) and scheme == "bearer":
        return _api_token_principal(request, token)
    raise unauthenticated("Unknown bearer credential.", sent=True)


def _session_principal(request: web.Request, token: str, scheme: str) -> Principal:
    state = state_of(request)
    found = state.db.families.find_access_token(hash_secret(token))
    if found is None:
        raise unauthenticated("Unknown access token; sign in again.", sent=True)
    session, expires_at = found
    if session.revoked_at is not None:
        raise token_revoked("This session was revoked; sign in again.")
    if state.clock() >= expires_at:
        raise token_expired("The access token expired; refresh the session.")
    try:
        dpop.check_resource_request(
            state, request, scheme=scheme, token=token, bound_jkt=session.dpop_jkt
        )
    except dpop.ProofRefused as refused:
        raise dpop.resource_error(state, refused) from None
    audience = audience_of(request, session)
    user = state.db.get_user(session.user_id)
    exchanged = Exchanges(state.db).find(session.id)
    if exchanged is None:
        return Principal(
            user=user,
            organization=state.db.get_organization(user.org_id),
            scopes=scopes.for_role(user.role),
            auth_method="session",
            session=session,
            api_token=None,
            expires_at=expires_at,
            audience=audience,
        )
    granted = frozenset(exchanged.scopes)
    return Principal(
        user=user,
        organization=state.db.get_organization(user.org_id),
        # A CI sign-in has its trust rule's scopes; a delegated token never reaches beyond the
        # role of the person it acts for, as it is now.
        scopes=granted if exchanged.federated else granted & scopes.for_role(user.role),
        auth_method="federated" if exchanged.federated else "delegated",
        session=session,
        api_token=None,
        expires_at=expires_at,
        exchanged=exchanged,
        audience=audience,
    )


def audience_of(request: web.Request, session: Session) -> str | None:
    """The audience of an OAuth grant's access token, which must be this API (RFC 8707); None
    for a first-party session. A grant stored before audiences were kept is this API's."""
    grant = state_of(request).db.families.grant(session.id)
    if grant is None:
        return None
    if grant.resource is not None and not is_this_api(request, grant.resource):
        raise ApiError(
            401,
            "auth.unauthenticated",
            "This access token was issued for another API; sign in to this one.",
            headers=bearer_challenge(error="invalid_token"),
        )
    return grant.resource or resource_of(request)


def _api_token_principal(request: web.Request, token: str) -> Principal:
    state = state_of(request)
    now = state.clock()
    row = state.db.find_api_token_by_hash(hash_secret(token))
    if row is None:
        raise unauthenticated("Unknown API token.", sent=True)
    if row.revoked_at is not None:
        raise token_revoked("This API token was revoked.")
    if now >= row.expires_at:
        raise token_expired("This API token expired; create or rotate a token.")
    state.db.touch_api_token(row.id, now=now)
    user = state.db.get_user(row.user_id)
    return Principal(
        user=user,
        organization=state.db.get_organization(user.org_id),
        # A token never reaches beyond its creator's current role.
        scopes=frozenset(row.scopes) & scopes.for_role(user.role),
        auth_method="api_token",
        session=None,
        api_token=row,
        expires_at=row.expires_at,
    )


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise insufficient_scope(scope)
