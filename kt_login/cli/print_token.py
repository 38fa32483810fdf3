"""`kt auth print-access-token`: the profile's access token, fresh, alone on stdout (gh `auth
token`, gcloud `auth print-access-token`, az `account get-access-token`)."""

from __future__ import annotations

import re
from typing import Any

import click

from ..authenticate import ENVIRONMENT, NoCredential, NotRefreshable
from ..errors import NotLoggedIn
from .app import Invocation, common_options
from .views import timestamp

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d{1,7})\s*([smhd]?)")


class Duration(click.ParamType[int]):
    """Seconds, written `600`, `30s`, `10m`, `2h` or `1d`."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _DURATION.fullmatch(str(value).strip().lower())
        if match is None:
            self.fail(f"{value!r} is not a duration (e.g. 600, 30s, 10m, 2h, 1d)", param, ctx)
        return int(match.group(1)) * _UNITS[match.group(2)]


@click.command("print-access-token")
@click.option(
    "--min-ttl",
    type=Duration(),
    default="0",
    metavar="DURATION",
    help="Refresh first unless the token stays valid this long (600, 30s, 10m, 2h).",
)
@common_options
def print_access_token(inv: Invocation, min_ttl: int) -> None:
    """Print an access token for the profile, refreshed if needed, alone on stdout.

    Never prompts. KEEPTRUSTS_API_TOKEN, when set, is printed as it is. With --json: one
    object with access_token, token_type, expires_at, expires_in, profile, api_url and
    credential_source. Exits 3, with the login command on stderr, when there is no usable
    session (or it expires sooner than --min-ttl and cannot be refreshed).

    \b
    Examples:
      curl -H "Authorization: Bearer $(kt auth print-access-token)" "$URL"
      kt auth print-access-token --min-ttl 10m --profile ci --json
    """
    run_print_access_token(inv, min_ttl=min_ttl)


def run_print_access_token(inv: Invocation, *, min_ttl: int) -> None:
    if inv.env_token:
        _print(inv, inv.env_token, None, inv.base_settings.api_url.value, ENVIRONMENT)
        return
    try:
        session, where = inv.authenticator.fresh_session(min_ttl=float(min_ttl))
    except NotRefreshable as exc:
        exc.message = (
            f"the access token of profile {inv.profile!r} expires sooner than --min-ttl "
            f"{min_ttl} s and cannot be refreshed: {exc.message}"
        )
        exc.hint = inv.login_hint()
        raise
    except NoCredential as exc:
        exc.hint = inv.login_hint(exc.api_url)
        raise
    except NotLoggedIn as exc:
        exc.hint = inv.login_hint()  # the refresh's hint does not name the profile
        raise
    if min_ttl and session.expires_at is not None and session.expires_at - inv.now() < min_ttl:
        inv.console.warn(
            f"the server issued an access token valid for {int(session.expires_at - inv.now())} s,"
            f" less than --min-ttl {min_ttl} s"
        )
    _print(inv, session.access_token, session.expires_at, session.api_url, where.kind)


def _print(
    inv: Invocation, token: str, expires_at: float | None, api_url: str, source: str
) -> None:
    if not inv.json_mode:
        inv.console.secret(token)
        return
    inv.console.result(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_at": timestamp(expires_at),
            "expires_in": None if expires_at is None else max(0, int(expires_at - inv.now())),
            "profile": inv.profile,
            "api_url": api_url,
            "credential_source": source,
        }
    )
