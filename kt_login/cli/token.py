"""`kt auth token …`: scoped API tokens for CI and automation (LC-06)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from ..api import IssuedToken, token_path_segment
from ..errors import ApiError, UsageError
from ..text import clean
from .app import Invocation, common_options
from .examples import examples
from .step_up import with_step_up
from .views import public_token, token_summary, token_table

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
