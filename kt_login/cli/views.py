"""How sessions and tokens look to people and to JSON consumers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..dpop import DpopKey
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
        "dpop_jkt": dpop_thumbprint(session),
        "identity": (
            {
                "issuer": session.issuer,
                "subject": session.subject,
                "client_id": session.client_id,
                "acr": session.acr,
                "auth_time": timestamp(session.auth_time),
                # RFC 9728: where kt found the issuer (None: it was named), and RFC 8707's resource
                "issuer_source": session.issuer_source,
                "resource": session.resource,
            }
            if session.issuer
            else None
        ),
    }


def dpop_thumbprint(session: Session) -> str | None:
    """The RFC 7638 thumbprint of a DPoP session's key (the `jkt` its tokens are bound to);
    None for a bearer session. Never the key itself."""
    if session.dpop_key is None:
        return None
    try:
        return DpopKey.from_json(session.dpop_key).thumbprint
    except ValueError:
        return "(unreadable key)"


def logged_in_line(session: Session, storage: str) -> str:
    who = session_name(session)
    org = f" ({clean(session.organization)}, {clean(session.role)})" if session.organization else ""
    if session.foreign_issuer is not None:  # the API was not asked (issue 10 case 8)
        return (
            f"Signed in at {clean(session.foreign_issuer)} as {who}. Session stored in: "
            f"{storage}; API commands use {session.api_url}."
        )
    return f"Logged in to {session.api_url} as {who}{org}. Session stored in: {storage}."


def replaced(previous: Session | None, session: Session) -> dict[str, Any] | None:
    """The account a new sign-in took the place of, when it is another one (another person, or
    another API): what `kt auth login` says it replaced."""
    if previous is None:
        return None
    same = (previous.user_id or previous.user_email, previous.api_url) == (
        session.user_id or session.user_email,
        session.api_url,
    )
    if same and session_name(previous) == session_name(session):
        return None
    return {"user": session_name(previous), "api_url": previous.api_url}


def replaced_line(gone: dict[str, Any], profile: str) -> str:
    return (
        f"This replaced the session of {clean(gone['user'])} at {clean(gone['api_url'])} "
        f"(profile {profile!r}), which was signed out."
    )


TOKEN_COLUMNS = ("ID", "NAME", "SCOPES", "STATE", "CREATED", "EXPIRES", "LAST USED", "PREFIX")
# What a narrow terminal loses first, then what is cut short (output.table).
_TOKEN_DROP = ("PREFIX", "CREATED", "LAST USED")
_TOKEN_SHRINK = ("SCOPES", "NAME")


def _day(value: object, *, time_of_day: bool = False) -> str:
    """An API timestamp (ISO 8601) as a person reads it in a table: the day, maybe the minute."""
    text = str(value)
    if len(text) >= 16 and text[10] == "T":
        return f"{text[:10]} {text[11:16]}" if time_of_day else text[:10]
    return text


def token_row(t: dict[str, Any]) -> list[str]:
    scopes = t.get("scopes") if isinstance(t.get("scopes"), list) else []
    assert isinstance(scopes, list)
    return [
        str(t.get("id", "")),
        str(t.get("name", "")),
        ",".join(str(s) for s in scopes),
        str(t.get("state", "")),
        _day(t.get("created_at") or "-"),
        _day(t.get("expires_at") or "never"),
        _day(t.get("last_used_at") or "never", time_of_day=True),
        str(t.get("prefix") or ""),
    ]


def token_table(tokens: list[dict[str, Any]], *, width: int | None = None) -> list[str]:
    if not tokens:
        return ["No API tokens."]
    rows = [token_row(t) for t in tokens]
    return table(TOKEN_COLUMNS, rows, width=width, drop=_TOKEN_DROP, shrink=_TOKEN_SHRINK)


def token_summary(t: dict[str, Any]) -> str:
    """One token in a sentence: id, name, scopes, when last used (the revoke confirmation)."""
    scopes = ",".join(str(s) for s in t.get("scopes") or [] if isinstance(s, str)) or "none"
    used = t.get("last_used_at")
    return (
        f"{clean(t.get('id', '?'))} '{clean(t.get('name', ''))}' (scopes: {clean(scopes)}; "
        f"last used: {clean(_day(used, time_of_day=True)) if used else 'never'})"
    )


def public_token(t: dict[str, Any]) -> dict[str, Any]:
    """A token description with nothing secret in it, whatever the server sent."""
    return {k: v for k, v in t.items() if k not in ("secret", "token", "value", "hash")}
