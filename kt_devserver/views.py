"""JSON shapes of the contract's objects (user, organization, token info, session)."""

from __future__ import annotations

from datetime import UTC, datetime

from kt_devserver.db import ApiToken, Organization, User
from kt_devserver.errors import JsonValue


def iso8601(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_json(user: User) -> dict[str, JsonValue]:
    return {"id": user.id, "email": user.email, "name": user.name}


def organization_json(org: Organization) -> dict[str, JsonValue]:
    return {"id": org.id, "name": org.name}


def token_state(token: ApiToken, now: float) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if now >= token.expires_at:
        return "expired"
    return "active"


def token_info(token: ApiToken, now: float) -> dict[str, JsonValue]:
    return {
        "id": token.id,
        "name": token.name,
        "scopes": list(token.scopes),
        "state": token_state(token, now),
        "prefix": token.prefix,
        "created_at": iso8601(token.created_at),
        "expires_at": iso8601(token.expires_at),
        "last_used_at": iso8601(token.last_used_at),
        "revoked_at": iso8601(token.revoked_at),
    }
