"""`kt auth refresh [--scope S]`: refresh the profile's session now."""

from __future__ import annotations

import click

from ..authenticate import API_TOKEN, NoCredential, NotRefreshable
from ..errors import KtError, NotLoggedIn, UsageError
from ..session import OAUTH
from ..text import run_hint
from .app import Invocation, common_options
from .views import timestamp


@click.command()
@click.option(
    "--scope",
    metavar="SCOPES",
    help="Scopes the session must have (space-separated); more than it has needs a new "
    "consent, and kt prints the sign-in that asks for them.",
)
@common_options
def refresh(inv: Invocation, scope: str | None) -> None:
    """Refresh the profile's session now, whatever its expiry.

    An API token (KEEPTRUSTS_API_TOKEN, or one kept by login --with-token) is not refreshed
    (exit 1); a session without a usable refresh token exits 3 with the sign-in to run. The
    session is kept in both cases.

    \b
    Examples:
      kt auth refresh
      kt auth refresh --profile corp --scope "openid offline_access tokens:read"
    """
    run_refresh(inv, scope=scope)


def run_refresh(inv: Invocation, *, scope: str | None) -> None:
    if inv.env_token:
        raise KtError(
            "the credential is KEEPTRUSTS_API_TOKEN, an API token, which is not refreshed",
            hint="unset KEEPTRUSTS_API_TOKEN to refresh the profile's stored session",
        )
    before, _ = inv.authenticator.stored()
    if before is not None and scope is not None:
        _check_scopes(inv, before.kind, before.scopes, before.method, scope)
    try:
        session, where = inv.authenticator.refresh_now()
    except NotRefreshable as exc:
        if exc.reason == API_TOKEN:
            stored = inv.find_session()[0]
            until = timestamp(stored.expires_at) if stored is not None else None
            exc.message = (
                f"profile {inv.profile!r} holds an API token (kt auth login --with-token), which "
                f"is not refreshed; it is valid until {until or 'it expires'}. To replace it, "
                "create a new one (kt auth token create) and keep it with kt auth login "
                "--with-token"
            )
        else:
            exc.message = f"cannot refresh the session of profile {inv.profile!r}: {exc.message}"
            exc.hint = inv.login_hint()
        raise
    except NoCredential as exc:
        exc.hint = inv.login_hint(exc.api_url)
        raise
    except NotLoggedIn as exc:
        exc.hint = inv.login_hint()  # the refresh's own hint does not name the profile
        raise
    inv.console.result(
        {
            "refreshed": True,
            "profile": inv.profile,
            "api_url": session.api_url,
            "expires_at": timestamp(session.expires_at),
            "refresh_expires_at": timestamp(session.refresh_expires_at),
            "credential_store": where.kind,
        },
        [
            f"Refreshed the session of profile {inv.profile!r}: the access token is valid until "
            f"{timestamp(session.expires_at) or 'an unknown time'}."
        ],
    )


def _check_scopes(
    inv: Invocation, kind: str, held: tuple[str, ...], method: str, scope: str
) -> None:
    """A refresh gives the scopes the session has; more need a new consent (OAuth) or are not
    the session's to have (a password session's scopes follow the role)."""
    wanted = scope.split()
    if not wanted:
        raise UsageError("--scope is empty")
    missing = [s for s in wanted if s not in held]
    if not missing:
        return
    if kind != OAUTH:
        raise UsageError(
            f"this {method} session's scopes follow your role ({', '.join(held) or 'none'}) and "
            f"cannot gain {', '.join(missing)} by a refresh; an API token can be given exactly "
            "the scopes it needs (kt auth token create)"
        )
    flags = ["--profile", inv.profile] if inv.profile_flag else []
    raise NotLoggedIn(
        f"the session does not have {', '.join(missing)}: a refresh cannot add scopes, a new "
        "consent in the browser can",
        hint=run_hint("kt", "auth", "login", "--browser", "--scope", scope, *flags),
    )
