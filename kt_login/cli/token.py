"""`kt auth token …`: scoped API tokens for CI and automation (LC-06)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from ..api import IssuedToken, token_path_segment
from ..errors import EXIT_NOT_LOGGED_IN, ApiError, OAuthError, UsageError
from ..identity import actor_name
from ..signin.delegation import check_actor, delegate
from ..text import clean
from .app import Invocation, common_options
from .examples import examples
from .print_token import Duration
from .step_up import with_step_up
from .views import public_token, timestamp, token_summary, token_table

DEFAULT_EXPIRY_DAYS = 90


@dataclass(frozen=True)
class CreateOptions:
    name: str
    scope: tuple[str, ...]
    expires_in_days: int = DEFAULT_EXPIRY_DAYS


@dataclass(frozen=True)
class ListOptions:
    all_tokens: bool = False


@dataclass(frozen=True)
class RevokeOptions:
    token_id: str
    yes: bool = False


@dataclass(frozen=True)
class RotateOptions:
    token_id: str
    expires_in_days: int | None = None


@dataclass(frozen=True)
class ExchangeOptions:
    scope: tuple[str, ...]
    actor: str
    ttl: int = 900


def _token_id_option(fn: Any) -> Any:
    return click.option(
        "--token-id",
        "--id",
        "token_id",
        required=True,
        metavar="ID",
        help="The token's id (tok_…); --id and --token-id are the same.",
    )(fn)


def _scopes(values: tuple[str, ...]) -> list[str]:
    scopes = [s.strip() for v in values for s in v.split(",") if s.strip()]
    if not scopes:
        raise UsageError("--scope needs at least one scope, e.g. --scope configurations:read")
    return list(dict.fromkeys(scopes))


@examples(
    "kt auth token create --name ci --scope configurations:read",
    "kt auth token create --name deploy --scope gateways:read,gateways:write --expires-in-days 30",
)
@click.command("create")
@click.option("--name", required=True, help="A name to recognise the token by.")
@click.option(
    "--scope",
    "scope",
    multiple=True,
    required=True,
    help="Scopes, comma-separated or repeated (e.g. configurations:write,gateways:read).",
)
@click.option(
    "--expires-in-days",
    type=click.IntRange(1, 365),
    default=DEFAULT_EXPIRY_DAYS,
    show_default=True,
    help="Lifetime of the token.",
)
@common_options
def create(inv: Invocation, **flags: Any) -> None:
    """Create a token. Its secret is printed once, alone on stdout: store it now."""
    run_create(inv, CreateOptions(**flags))


def run_create(inv: Invocation, opts: CreateOptions) -> None:
    scopes = _scopes(opts.scope)
    issued = with_step_up(
        inv,
        lambda: inv.authenticated().call(
            lambda api, auth: api.tokens.create(
                auth, name=opts.name, scopes=scopes, expires_in_days=opts.expires_in_days
            )
        ),
    )
    _print_secret(inv, issued, "Created API token")


@examples(
    "kt auth token list",
    "kt auth token list --all --json",
)
@click.command("list")
@click.option("--all", "all_tokens", is_flag=True, help="Include revoked and expired tokens.")
@common_options
def list_tokens(inv: Invocation, **flags: Any) -> None:
    """List active tokens (with --all, revoked and expired ones too), never their secrets.

    On a terminal the table fits its width: narrow ones drop the PREFIX, CREATED and LAST USED
    columns and cut long names and scopes short; --json has every field.
    """
    run_list(inv, ListOptions(**flags))


def run_list(inv: Invocation, opts: ListOptions = ListOptions()) -> None:
    listed = _list(inv)
    tokens = listed if opts.all_tokens else [t for t in listed if t.get("state") == "active"]
    hidden = len(listed) - len(tokens)
    lines = token_table(tokens, width=inv.console.width()) if tokens or not hidden else []
    if hidden:
        lines.append(
            f"{hidden} revoked or expired token{'s' if hidden != 1 else ''} not shown "
            "(kt auth token list --all shows them)."
        )
    inv.console.result({"tokens": tokens}, lines)


def _list(inv: Invocation) -> list[dict[str, Any]]:
    listed = with_step_up(
        inv, lambda: inv.authenticated().call(lambda api, auth: api.tokens.list(auth))
    )
    return [public_token(t) for t in listed]


@examples(
    "kt auth token revoke --id tok_123",
    "kt auth token revoke --id tok_123 --yes",
)
@click.command("revoke")
@_token_id_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@common_options
def revoke(inv: Invocation, **flags: Any) -> None:
    """Revoke a token: every request made with it fails from now on.

    On a terminal kt shows the token (name, scopes, when last used) and asks first; answering
    no (or Enter) revokes nothing and exits 0. A token already revoked is left as it is.
    """
    run_revoke(inv, RevokeOptions(**flags))


def run_revoke(inv: Invocation, opts: RevokeOptions) -> None:
    token_id = opts.token_id
    token_path_segment(token_id)  # a bad id is refused before anything is sent
    known = _find(inv, token_id)
    if known is not None and known.get("state") == "revoked":
        when = known.get("revoked_at")
        inv.console.result(
            {"revoked": known, "already_revoked": True},
            [
                f"API token {token_summary(known)} was already revoked"
                + (f" at {clean(when)}" if when else "")
                + "; nothing changed."
            ],
        )
        return
    if inv.interactive and not opts.yes:
        what = token_summary(known) if known is not None else clean(token_id)
        if not click.confirm(f"Revoke API token {what}? This cannot be undone", err=True):
            inv.console.result(
                {"revoked": None},
                [f"Nothing was revoked: API token {clean(token_id)} is unchanged."],
            )
            return
    info = with_step_up(
        inv, lambda: inv.authenticated().call(lambda api, auth: api.tokens.revoke(auth, token_id))
    )
    inv.console.result(
        {"revoked": public_token(info), "already_revoked": False},
        [f"Revoked API token {clean(info.get('id', token_id))} ({clean(info.get('name', ''))})."],
    )


def _find(inv: Invocation, token_id: str) -> dict[str, Any] | None:
    """The token as the list describes it, or None when it is not listed or cannot be listed
    (a credential without tokens:read can still revoke)."""
    try:
        listed = _list(inv)
    except ApiError:
        return None
    return next((t for t in listed if t.get("id") == token_id), None)


@examples(
    "kt auth token rotate --id tok_123",
    "kt auth token rotate --id tok_123 --expires-in-days 30",
)
@click.command("rotate")
@_token_id_option
@click.option(
    "--expires-in-days",
    type=click.IntRange(1, 365),
    default=None,
    help="Lifetime of the new token (default: the same lifetime the old one was given).",
)
@common_options
def rotate(inv: Invocation, **flags: Any) -> None:
    """Replace a token in one step: the old one is revoked and a new one with the same name,
    scopes and lifetime is issued (or --expires-in-days). Needs an MFA-authenticated session."""
    run_rotate(inv, RotateOptions(**flags))


def run_rotate(inv: Invocation, opts: RotateOptions) -> None:
    token_id = opts.token_id
    token_path_segment(token_id)
    issued = with_step_up(
        inv,
        lambda: inv.authenticated().call(
            lambda api, auth: api.tokens.rotate(
                auth, token_id, expires_in_days=opts.expires_in_days
            )
        ),
    )
    old = issued.revoked or {}
    _print_secret(inv, issued, f"Revoked {clean(old.get('id', token_id))}; issued API token")


def _print_secret(inv: Invocation, issued: IssuedToken, what: str) -> None:
    info = issued.token
    if inv.json_mode:
        doc = {"token": public_token(info), "secret": issued.secret}
        if issued.revoked is not None:
            doc["revoked"] = public_token(issued.revoked)
        inv.console.result(doc)
        return
    scopes = ",".join(str(s) for s in info.get("scopes", []) if isinstance(s, str))
    inv.console.info(
        f"{what} {clean(info.get('id', '?'))} '{clean(info.get('name', ''))}' "
        f"(scopes: {clean(scopes)}; expires {clean(info.get('expires_at') or 'never')})."
    )
    inv.console.info("Copy the secret below now; it will not be shown again:")
    inv.console.secret(issued.secret)


@examples(
    "kt auth token exchange --scope gateways:read --ttl 15m --actor agent:deploy-bot",
    "kt auth token exchange --scope gateways:read --actor agent:triage --json",
)
@click.command("exchange")
@click.option(
    "--scope",
    "scope",
    multiple=True,
    required=True,
    help="The scopes the token gets, comma-separated or repeated: at most the session's.",
)
@click.option(
    "--ttl",
    type=Duration(),
    default="15m",
    show_default=True,
    metavar="DURATION",
    help="How long it lives (900, 15m, 1h); the server caps it (kt-devserver: 1h, and never "
    "past the session).",
)
@click.option(
    "--actor",
    required=True,
    metavar="KIND:NAME",
    help="Who will use it, e.g. agent:deploy-bot; whoami with the token says "
    "'agent deploy-bot on behalf of' you.",
)
@common_options
def exchange(inv: Invocation, **flags: Any) -> None:
    """Turn the signed-in session into a short-lived token for an agent, with fewer scopes.

    RFC 8693 token exchange: the token names the actor (act), carries at most the scopes asked
    for and lives at most --ttl; the server refuses a scope beyond the session's or a longer
    lifetime than it allows (exit 1). Its secret is printed alone on stdout, to hand to the
    agent as KEEPTRUSTS_API_TOKEN: the agent never sees the session. Logging out (or any end
    of the session) revokes it.
    """
    run_exchange(inv, ExchangeOptions(**flags))


def run_exchange(inv: Invocation, opts: ExchangeOptions) -> None:
    scopes = _scopes(opts.scope)
    actor = check_actor(opts.actor.strip())
    if opts.ttl < 1:
        raise UsageError("--ttl must be at least 1 second, e.g. --ttl 15m")
    credential = inv.authenticated()
    if credential.session is None:  # KEEPTRUSTS_API_TOKEN: the server says whether it may
        subject, stored = inv.env_token or "", None
    else:
        stored = credential.session()
        subject = stored.access_token
    settings = inv.settings_for(stored)
    try:
        delegated = delegate(
            inv.authenticator,
            subject_token=subject,
            issuer=(stored.issuer if stored is not None and stored.issuer else None)
            or settings.issuer.value,
            client_id=(stored.client_id if stored is not None and stored.client_id else None)
            or settings.client_id.value,
            token_endpoint=None if stored is None else stored.token_endpoint,
            scopes=scopes,
            ttl=opts.ttl,
            actor=actor,
        )
    except OAuthError as exc:
        if exc.exit_code == EXIT_NOT_LOGGED_IN:
            exc.hint = inv.login_hint()
        raise
    shown = actor_name({"sub": delegated.actor}) or clean(delegated.actor)
    if inv.json_mode:
        inv.console.result(
            {
                "access_token": delegated.access_token,
                "token_type": "Bearer",
                "actor": delegated.actor,
                "scopes": list(delegated.scopes),
                "expires_at": timestamp(delegated.expires_at),
                "expires_in": None if delegated.expires_in is None else int(delegated.expires_in),
                "profile": inv.profile,
            }
        )
        return
    minutes = None if delegated.expires_in is None else max(1, round(delegated.expires_in / 60))
    lasting = "" if minutes is None else f", {minutes} minute{'s' if minutes != 1 else ''}"
    inv.console.info(
        f"Delegated token for {shown} (scopes: {clean(','.join(delegated.scopes))}; expires "
        f"{timestamp(delegated.expires_at) or 'with the session'}{lasting})."
    )
    if delegated.expires_in is not None and delegated.expires_in < opts.ttl - 60:
        inv.console.info(
            "The server gave it less than --ttl asked for (its cap, or the session ends)."
        )
    inv.console.info(
        "Hand the secret below to the agent as KEEPTRUSTS_API_TOKEN; it stops working when it "
        "expires or when this session ends (kt auth logout):"
    )
    inv.console.secret(delegated.access_token)
