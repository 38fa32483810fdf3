"""`kt auth logout`: end the session on the server, then forget it locally (LC-05, ST-08)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from ..config import configured_profiles
from ..errors import KtError, StoreError
from .app import Invocation, common_options
from .views import timestamp


@dataclass(frozen=True)
class LogoutOptions:
    all_profiles: bool = False


@click.command()
@click.option("--all", "all_profiles", is_flag=True, help="Log out of every profile.")
@common_options
def logout(inv: Invocation, **flags: Any) -> None:
    """Revoke the active profile's session on the server and remove it from this machine.

    If the server cannot be reached the local session is removed anyway, and kt says that the
    server-side session may stay valid until it expires (exit 5).
    """
    run_logout(inv, LogoutOptions(**flags))


def run_logout(inv: Invocation, opts: LogoutOptions) -> None:
    all_profiles = opts.all_profiles
    sessions = inv.session_store
    if all_profiles:
        names = sorted(set(sessions.known_profiles()) | set(configured_profiles(inv.app.env)))
    else:
        names = [inv.profile]

    results: list[dict[str, Any]] = []
    lines: list[str] = []
    unrevoked: list[str] = []
    failure: KtError | None = None
    for name in names:
        try:
            session, store = sessions.find(name)
        except StoreError as exc:
            # Unreadable (e.g. corrupt): nothing to revoke it with, but it must not block logout
            # or the next login. StoreUnavailable is no StoreError: a keyring that cannot be
            # reached still fails the command, as the session may be intact in it.
            sessions.forget(name)
            results.append({"profile": name, "was_logged_in": True, "server_revoked": False})
            lines.append(f"Removed the unreadable local session of profile {name!r}.")
            inv.console.warn(
                f"could not revoke it on the server ({exc.message}); it may stay valid there "
                "until it expires"
            )
            continue
        if session is None or store is None:
            results.append({"profile": name, "was_logged_in": False})
            if not all_profiles:
                lines.append(f"Profile {name!r} was not logged in.")
            continue
        problem = inv.authenticator.revoke(session)
        revoked = problem is None
        failure = failure or problem
        sessions.forget(name)
        results.append(
            {
                "profile": name,
                "was_logged_in": True,
                "server_revoked": revoked,
                "api_url": session.api_url,
            }
        )
        if revoked:
            lines.append(f"Logged out of {session.api_url} (profile {name!r}).")
        else:
            until = timestamp(session.refresh_expires_at or session.expires_at) or "it expires"
            unrevoked.append(name)
            lines.append(
                f"Removed the local session of profile {name!r}, but could not reach "
                f"{session.api_url} to revoke it: the server-side session may stay valid "
                f"until {until}."
            )
    if all_profiles and not any(r["was_logged_in"] for r in results):
        lines.append("No profile was logged in.")
    if inv.env_token:
        inv.console.warn("KEEPTRUSTS_API_TOKEN is still set and will keep authenticating commands")
    inv.console.result({"logged_out": results}, lines)
    if failure is not None:
        failure.message = (
            f"could not revoke the server-side session of {', '.join(map(repr, unrevoked))} "
            f"({failure.message})"
        )
        failure.hint = "it was removed locally; it may stay valid on the server until it expires"
        raise failure
