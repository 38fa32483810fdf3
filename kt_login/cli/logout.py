"""`kt auth logout`: end the session on the server, then forget it locally (LC-05, ST-08)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from ..authenticate import API_TOKEN
from ..config import configured_profiles
from ..errors import RevocationFailed, StoreError
from ..session import Session
from .app import Invocation, common_options
from .examples import examples
from .views import timestamp


@dataclass(frozen=True)
class LogoutOptions:
    all_profiles: bool = False


@examples(
    "kt auth logout",
    "kt auth logout --all",
)
@click.command()
@click.option("--all", "all_profiles", is_flag=True, help="Log out of every profile.")
@common_options
def logout(inv: Invocation, **flags: Any) -> None:
    """Revoke the active profile's session on the server and remove it from this machine.

    The local session is removed in every case. When it could not be ended on the server, kt
    says why and how long it may stay valid there, and exits 1 when the server offers no
    revocation, 6 when it refused to revoke, 5 when it could not be reached.
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
    failure: RevocationFailed | None = None
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
        if session.method == API_TOKEN:  # kept by login --with-token: the user's to revoke
            sessions.forget(name)
            results.append(
                {
                    "profile": name,
                    "was_logged_in": True,
                    "server_revoked": False,
                    "api_url": session.api_url,
                }
            )
            lines.append(
                f"Removed the API token of profile {name!r} from this machine; it stays valid "
                f"until {timestamp(session.expires_at) or 'it expires'} "
                "(kt auth token revoke ends it)."
            )
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
            assert problem is not None
            unrevoked.append(name)
            lines.append(
                f"Removed the local session of profile {name!r}, but {problem.message}: "
                f"{still_valid(session)}."
            )
    if all_profiles and not any(r["was_logged_in"] for r in results):
        lines.append("No profile was logged in.")
    if inv.env_token:
        inv.console.warn("KEEPTRUSTS_API_TOKEN is still set and will keep authenticating commands")
    inv.console.result({"logged_out": results}, lines)
    if failure is not None:
        failure.message = (
            f"could not revoke the server-side session of {', '.join(map(repr, unrevoked))}: "
            f"{failure.message}"
        )
        failure.hint = "it was removed locally; it may stay valid on the server (see above)"
        raise failure


def still_valid(session: Session) -> str:
    """How long a session that was not revoked may stay valid where it was issued: the access
    token until it expires, the refresh token (which can mint new ones) for its own lifetime,
    which kt often does not know."""
    access = timestamp(session.expires_at)
    said = "the server-side session may stay valid: the access token until " + (
        access or "it expires (lifetime unknown)"
    )
    if session.refresh_token:
        refresh = timestamp(session.refresh_expires_at)
        said += ", the refresh token " + (
            f"until {refresh}"
            if refresh
            else "for as long as the server keeps it (lifetime unknown)"
        )
    return said
