"""`kt auth refresh [--scope S]`: refresh the profile's session now, or sign in again for
scopes it lacks (signin/more_scope.py)."""

from __future__ import annotations

import click

from ..authenticate import API_TOKEN, NoCredential, NotRefreshable
from ..errors import KtError, NotLoggedIn, UsageError
from ..session import OAUTH, Session
from ..signin.more_scope import (
    RECONSENT_METHODS,
    ScopeRequest,
    check_consentable,
    not_granted,
    scope_request,
)
from ..store import Location
from .app import Invocation, common_options
from .login_oauth import run_browser_login, run_device_login
from .views import timestamp


@click.command()
@click.option(
    "--scope",
    metavar="SCOPES",
    help="Scopes the session must have (space-separated). A browser or device session that "
    "lacks some signs in again the same way, asking for its scopes and these (on a terminal; "
    "elsewhere exit 3 with the command that does it).",
)
@common_options
def refresh(inv: Invocation, scope: str | None) -> None:
    """Refresh the profile's session now, whatever its expiry.

    An API token (KEEPTRUSTS_API_TOKEN, or one kept by login --with-token) is not refreshed
    (exit 1); a session without a usable refresh token exits 3 with the sign-in to run. The
    session is kept in both cases.

    With --scope, scopes the session already has just refresh it. Scopes it lacks need a new
    consent, which a refresh cannot give: for a browser or device session, on a terminal, kt
    signs in again the same way (same profile, issuer and store), asking for the session's
    scopes and the missing ones, and says what was added; without a terminal (or with --json)
    it exits 3 with that exact `kt auth login` command. A password session's scopes are its
    role's: no sign-in or API token adds to them (exit 2).

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
    before, where = inv.authenticator.stored()
    if before is not None and where is not None and scope is not None:
        request = scope_request(before, scope)
        if not request.complete:
            _more_scopes(inv, before, where, request)
            return
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


def _more_scopes(inv: Invocation, before: Session, where: Location, request: ScopeRequest) -> None:
    """Scopes the session lacks: a new consent where the session came from one (the same
    sign-in, asking for request.ask), else why none can add them."""
    missing = ", ".join(request.missing)
    if before.kind != OAUTH:
        raise UsageError(
            f"this {before.method} session's scopes follow your role "
            f"({', '.join(before.scopes) or 'none'}): {missing} is not among them, and neither a "
            "refresh, a new sign-in nor an API token can add it (a token gets at most the scopes "
            "of the session that creates it); an administrator can change your role"
        )
    check_consentable(before, request, http=inv.http())
    dpop = before.dpop_key is not None  # the new consent's session stays DPoP-bound
    command = inv.login_hint(
        method=before.method,
        more=[
            "--scope",
            request.ask,
            *(["--insecure-storage"] if where.name == "file" else []),
            *(["--dpop"] if dpop else []),
        ],
    )
    if before.method not in RECONSENT_METHODS or not inv.interactive:
        why = "" if before.method in RECONSENT_METHODS else " (sign in with --browser or --device)"
        raise NotLoggedIn(
            f"the session does not have {missing}: a refresh cannot add scopes, a new consent "
            f"can{why}",
            hint=command,
        )
    inv.console.info(
        f"The session of profile {inv.profile!r} does not have {missing}: signing in again "
        f"with your {before.method} to consent to {request.ask}."
    )
    if before.method == "device":
        run_device_login(
            inv,
            insecure_storage=where.name == "file",
            issuer=None,
            client_id=None,
            scope=request.ask,
            show_qr=True,
            dpop=dpop,
        )
    else:
        run_browser_login(
            inv,
            insecure_storage=where.name == "file",
            open_browser=True,
            issuer=None,
            client_id=None,
            port=None,
            timeout=300,
            scope=request.ask,
            dpop=dpop,
        )
    after = inv.stored_session()
    left = not_granted(request, after) if after is not None else request.missing
    added = [s for s in request.missing if s not in left]
    if added:
        inv.console.info(f"Added to the session: {', '.join(added)}.")
    if left:
        inv.console.warn(f"the identity provider did not grant {', '.join(left)}")
