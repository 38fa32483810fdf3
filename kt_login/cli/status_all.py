"""`kt auth status --all`: every profile, its account, store and expiry, and which one is active
and why. No network, no secret."""

from __future__ import annotations

from typing import Any

from .. import config
from ..errors import KtError, NotLoggedIn
from ..identity import session_name
from ..output import table
from ..refresh import session_state
from ..text import clean
from .app import Invocation
from .profiles import known_profiles
from .views import timestamp

# Why the active profile is the active one, by the source of config.resolve's profile setting.
WHY = {
    config.FLAG: "--profile",
    config.ENVIRONMENT: f"${config.ENV_PROFILE}",
    config.CONFIG: "config file",
    config.DEFAULT: "default",
}
COLUMNS = ("", "PROFILE", "ACCOUNT", "API URL", "STORE", "EXPIRES", "STATE")


def run_status_all(inv: Invocation) -> None:
    active = inv.base_settings.profile
    now = inv.now()
    rows: list[dict[str, Any]] = []
    for name in known_profiles(inv.app.env, inv.session_store):
        rows.append(_profile_row(inv, name, now, active=name == active.value))
    doc: dict[str, Any] = {
        "active_profile": active.value,
        "active_because": active.source,
        "api_token_in_environment": bool(inv.env_token),
        "profiles": rows,
    }
    lines = table(
        COLUMNS,
        [
            [
                "*" if r["active"] else "",
                r["profile"],
                r["account"] or "-",
                r["api_url"] or "-",
                r["credential_store"] or "-",
                r["expires_at"] or "-",
                r["state"],
            ]
            for r in rows
        ],
    )
    lines.append(f"Active profile: {active.value} (from {WHY.get(active.source, active.source)})")
    if inv.env_token:
        lines.append(
            "KEEPTRUSTS_API_TOKEN is set: commands use it instead of the active profile's session"
        )
    inv.console.result(doc, lines)
    current = next(r for r in rows if r["active"])
    if not inv.env_token and current["state"] not in ("logged in", "refresh on next use"):
        raise NotLoggedIn(
            f"the active profile {active.value!r} is {current['state']}", hint=inv.login_hint()
        )


def _profile_row(inv: Invocation, name: str, now: float, *, active: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "profile": name,
        "active": active,
        "logged_in": False,
        "state": "not logged in",
        "account": None,
        "api_url": None,
        "credential_store": None,
        "method": None,
        "expires_at": None,
        "refresh_expires_at": None,
    }
    try:
        session, where = inv.session_store.find(name)
    except KtError as exc:
        row["state"] = f"unreadable ({clean(exc.message)})"
        return row
    if session is None or where is None:
        return row
    state = session_state(session, now)
    row.update(
        state=state,
        logged_in=state != "expired",
        account=session_name(session),
        api_url=session.api_url,
        credential_store=where.kind,
        method=session.method,
        expires_at=timestamp(session.expires_at),
        refresh_expires_at=timestamp(session.refresh_expires_at),
    )
    return row
