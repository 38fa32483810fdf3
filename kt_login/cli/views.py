"""How sessions and tokens look to people and to JSON consumers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..identity import session_name
from ..output import table
from ..session import Session
from ..text import clean


def timestamp(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def session_document(session: Session, *, profile: str, storage: str) -> dict[str, Any]:
    return {
        "profile": profile,
        "api_url": session.api_url,
        "user": {"id": session.user_id, "email": session.user_email, "name": session_name(session)},
        "organization": session.organization,
        "role": session.role,
        "scopes": list(session.scopes),
        "mfa_authenticated": session.mfa_authenticated,
        "method": session.method,
        "expires_at": timestamp(session.expires_at),
        "refresh_expires_at": timestamp(session.refresh_expires_at),
        "credential_store": storage,
        "identity": (
            {
                "issuer": session.issuer,
                "subject": session.subject,
                "client_id": session.client_id,
                "acr": session.acr,
                "auth_time": timestamp(session.auth_time),
            }
            if session.issuer
            else None
        ),
    }


def logged_in_line(session: Session, storage: str) -> str:
    who = session_name(session)
    org = f" ({clean(session.organization)}, {clean(session.role)})" if session.organization else ""
    return f"Logged in to {session.api_url} as {who}{org}. Session stored in: {storage}."


TOKEN_COLUMNS = ("ID", "NAME", "SCOPES", "STATE", "CREATED", "EXPIRES", "LAST USED", "PREFIX")


def token_row(t: dict[str, Any]) -> list[str]:
    scopes = t.get("scopes") if isinstance(t.get("scopes"), list) else []
    assert isinstance(scopes, list)
    return [
        str(t.get("id", "")),
        str(t.get("name", "")),
        ",".join(str(s) for s in scopes),
        str(t.get("state", "")),
        str(t.get("created_at") or "-"),
        str(t.get("expires_at") or "never"),
        str(t.get("last_used_at") or "never"),
        str(t.get("prefix") or ""),
    ]


def token_table(tokens: list[dict[str, Any]]) -> list[str]:
    if not tokens:
        return ["No API tokens."]
    return table(TOKEN_COLUMNS, [token_row(t) for t in tokens])


def public_token(t: dict[str, Any]) -> dict[str, Any]:
    """A token description with nothing secret in it, whatever the server sent."""
    return {k: v for k, v in t.items() if k not in ("secret", "token", "value", "hash")}
