"""`kt-devserver`: serve the local Keeptrusts-compatible API (or print a demo user's TOTP code)."""

from __future__ import annotations

import logging
import re
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
import platformdirs

from kt_devserver import demo, exchanges, hosts, logs, scopes, serve, totp
from kt_devserver.app import create_app
from kt_devserver.db import Database
from kt_devserver.signin_checks import ACCOUNT_FREE_FAILURES, ADDRESS_FREE_FAILURES
from kt_devserver.state import (
    DEFAULT_ACCESS_TOKEN_TTL,
    DEFAULT_DEVICE_CODE_TTL,
    DEFAULT_DEVICE_INTERVAL,
    DEFAULT_DPOP_NONCE_TTL,
    DEFAULT_MFA_TOKEN_TTL,
    DEFAULT_PAR_REQUEST_TTL,
    DEFAULT_REFRESH_TOKEN_TTL,
    DEFAULT_THROTTLE_BASE_DELAY,
    DEFAULT_THROTTLE_MAX_DELAY,
    Settings,
    SsoConfig,
)

EXIT_USAGE = 2


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("kt-devserver")) / "devserver.db"


def _fail(message: str, exit_code: int = 1) -> NoReturn:
    click.echo(f"kt-devserver: error: {message}", err=True)
    sys.exit(exit_code)


def _open_db(db_path: str | None) -> Database:
    path = db_path or str(default_db_path())
    try:
        database = Database(path)
    except (OSError, sqlite3.Error) as exc:
        _fail(f"cannot open database {path}: {type(exc).__name__}: {exc}")
    return database


_TTL = click.IntRange(min=0)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind; 0 picks a free one (the readiness line shows it).",
)
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="SQLite database file (default: under the user data dir); ':memory:' for a throwaway run.",
)
@click.option(
    "--public",
    is_flag=True,
    help="Allow binding a non-loopback address. The demo credentials are public: "
    "anyone who can reach the port can sign in.",
)
@click.option(
    "--public-url",
    metavar="URL",
    help="The URL clients reach this server at besides the bound address (a name, a port "
    "forward, a proxy): http(s)://HOST[:PORT]. Its host is accepted in the Host header and it "
    "becomes the OAuth issuer. Requests naming any other host get 421 (DNS-rebinding defence).",
)
@click.option(
    "--access-token-ttl",
    default=DEFAULT_ACCESS_TOKEN_TTL,
    show_default=True,
    type=_TTL,
    metavar="SECONDS",
    help="[testing] Session access token lifetime.",
)
@click.option(
    "--refresh-token-ttl",
    default=DEFAULT_REFRESH_TOKEN_TTL,
    show_default=True,
    type=_TTL,
    metavar="SECONDS",
    help="[testing] Absolute lifetime of a session's refresh tokens.",
)
@click.option(
    "--mfa-token-ttl",
    default=DEFAULT_MFA_TOKEN_TTL,
    show_default=True,
    type=_TTL,
    metavar="SECONDS",
    help="[testing] Lifetime of the mfa_token from a login or step-up.",
)
@click.option(
    "--mfa-max-age",
    default=None,
    type=_TTL,
    metavar="SECONDS",
    help="[testing] Make MFA-gated operations (token rotate) answer a step-up challenge "
    "when the session's MFA is older than this. Default: no limit.",
)
@click.option(
    "--device-code-ttl",
    default=DEFAULT_DEVICE_CODE_TTL,
    show_default=True,
    type=_TTL,
    metavar="SECONDS",
    help="[testing] Lifetime of a device flow's device code and user code (expires_in).",
)
@click.option(
    "--device-interval",
    default=DEFAULT_DEVICE_INTERVAL,
    show_default=True,
    type=_TTL,
    metavar="SECONDS",
    help="[testing] Device flow polling interval; polling sooner answers slow_down "
    "and adds 5 s to it.",
)
@click.option(
    "--no-device-flow",
    is_flag=True,
    help="Turn the device grant (RFC 8628) off, as organisations do against device-code "
    "phishing: discovery omits device_authorization_endpoint and the endpoint answers "
    "unauthorized_client.",
)
@click.option(
    "--par",
    is_flag=True,
    help="Offer pushed authorization requests (RFC 9126): POST /oauth/par, advertised as "
    "pushed_authorization_request_endpoint; its request_uri is good once, for 60 s.",
)
@click.option(
    "--require-par",
    is_flag=True,
    help="Accept only pushed authorization requests, from every client (metadata "
    "require_pushed_authorization_requests: true); implies --par. Client kt-cli-par requires "
    "them anyway.",
)
@click.option(
    "--par-request-ttl",
    default=DEFAULT_PAR_REQUEST_TTL,
    show_default=True,
    type=_TTL,
    metavar="SECONDS",
    help="[testing] Lifetime of a pushed authorization request's request_uri (expires_in).",
)
@click.option(
    "--throttle-base-delay",
    default=DEFAULT_THROTTLE_BASE_DELAY,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help=f"[testing] After {ACCOUNT_FREE_FAILURES} failed passwords for an account, "
    f"{ACCOUNT_FREE_FAILURES} wrong codes for a user or {ADDRESS_FREE_FAILURES} failures from one "
    "address, answer 429 for this long after each further failure, doubling each time; "
    "0 turns throttling off.",
)
@click.option(
    "--throttle-max-delay",
    default=DEFAULT_THROTTLE_MAX_DELAY,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="[testing] The longest such wait (the lockout).",
)
@click.option(
    "--dpop-nonce-ttl",
    default=DEFAULT_DPOP_NONCE_TTL,
    show_default=True,
    type=_TTL,
    metavar="SECONDS",
    help="[testing] DPoP (RFC 9449): how long a server nonce is current; proofs must carry the "
    "current nonce or the one before it (else use_dpop_nonce, with DPoP-Nonce). 0 asks for none.",
)
@click.option(
    "--sso-issuer",
    metavar="URL",
    help="Federate: offer 'Sign in with SSO' through this OpenID Connect provider "
    "(its issuer, byte for byte as its discovery document states it).",
)
@click.option("--sso-client-id", metavar="ID", help="This server's client_id at the SSO provider.")
@click.option(
    "--sso-client-secret",
    envvar="KT_DEVSERVER_SSO_CLIENT_SECRET",
    metavar="SECRET",
    help="Client secret at the SSO provider (prefer env KT_DEVSERVER_SSO_CLIENT_SECRET, which "
    "keeps it out of argv). Omit it for a public client.",
)
@click.option(
    "--sso-domain",
    "sso_domains",
    multiple=True,
    metavar="DOMAIN",
    help="Email domain whose SSO users belong to organization Acme (repeatable); users from "
    "other domains are refused.",
)
@click.pass_context
def main(
    ctx: click.Context,
    host: str,
    port: int,
    db_path: str | None,
    public: bool,
    public_url: str | None,
    access_token_ttl: int,
    refresh_token_ttl: int,
    mfa_token_ttl: int,
    mfa_max_age: int | None,
    device_code_ttl: int,
    device_interval: int,
    no_device_flow: bool,
    par: bool,
    require_par: bool,
    par_request_ttl: int,
    throttle_base_delay: float,
    throttle_max_delay: float,
    dpop_nonce_ttl: int,
    sso_issuer: str | None,
    sso_client_id: str | None,
    sso_client_secret: str | None,
    sso_domains: tuple[str, ...],
) -> None:
    """Serve the local Keeptrusts-compatible API (docs/api-contract.md).

    Prints one line, "kt-devserver listening on http://HOST:PORT", once it accepts connections.
    Stop it with Ctrl-C or SIGTERM.

    \b
    Demo users (public credentials, seeded on first start):
      alice@example.com / alice-password   admin, no MFA
      bob@example.com / bob-password       member, TOTP MFA (code: kt-devserver totp EMAIL)
    """
    ctx.ensure_object(dict)
    ctx.obj["db_path"] = db_path
    if ctx.invoked_subcommand is not None:
        return
    host = host.strip("[]")
    if not host:
        _fail("--host must not be empty", EXIT_USAGE)
    if not serve.is_loopback(host) and not public:
        _fail(f"refusing to bind non-loopback host {host!r}; pass --public to allow it", EXIT_USAGE)
    sso = _sso_config(sso_issuer, sso_client_id, sso_client_secret, sso_domains)
    if public_url is not None:
        try:
            public_url = hosts.parse_public_url(public_url)
        except ValueError as exc:
            _fail(f"--public-url {exc}", EXIT_USAGE)
    logs.configure()
    if public and not serve.is_loopback(host):
        logging.getLogger("kt_devserver").warning(
            "serving on %s with PUBLIC demo credentials; anyone who can reach it can sign in", host
        )
    settings = Settings(
        access_token_ttl=access_token_ttl,
        refresh_token_ttl=refresh_token_ttl,
        mfa_token_ttl=mfa_token_ttl,
        mfa_max_age=mfa_max_age,
        device_code_ttl=device_code_ttl,
        device_interval=device_interval,
        device_flow=not no_device_flow,
        par=par or require_par,
        require_par=require_par,
        par_request_ttl=par_request_ttl,
        sso=sso,
        public_url=public_url,
        throttle_base_delay=throttle_base_delay,
        throttle_max_delay=throttle_max_delay,
        dpop_nonce_ttl=dpop_nonce_ttl,
    )
    database = _open_db(db_path)
    try:
        serve.run(create_app(db=database, settings=settings), host=host, port=port)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    finally:
        database.close()


def _sso_config(
    issuer: str | None, client_id: str | None, secret: str | None, domains: tuple[str, ...]
) -> SsoConfig | None:
    if issuer is None:
        if client_id is not None or domains:
            _fail("--sso-client-id and --sso-domain need --sso-issuer", EXIT_USAGE)
        return None
    if not client_id:
        _fail("--sso-issuer needs --sso-client-id", EXIT_USAGE)
    if not issuer.startswith(("https://", "http://127.0.0.1", "http://localhost", "http://[::1]")):
        _fail("--sso-issuer must be an https URL (or http on loopback)", EXIT_USAGE)
    cleaned = tuple(sorted({d.strip().lstrip("@").lower() for d in domains if d.strip()}))
    return SsoConfig(
        issuer=issuer, client_id=client_id, client_secret=secret or None, domains=cleaned
    )


@main.command("totp")
@click.argument("email")
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="SQLite database file (default: the group's --db, else the default file).",
)
@click.pass_context
def totp_command(ctx: click.Context, email: str, db_path: str | None) -> None:
    """Print a TOTP code of EMAIL's that the server accepts now (for signing in as an MFA demo
    user): the current one, or the next one once the current one was used."""
    database = _open_db(db_path or ctx.obj.get("db_path"))
    try:
        demo.seed(database)
        user = database.find_user_by_email(email)
    finally:
        database.close()
    if user is None:
        _fail(f"no user {email!r} in this database")
    if user.totp_secret is None:
        _fail(f"{email} has no MFA enrolled")
    # A code is good once: after a sign-in, this prints the next step's code (valid already).
    code = totp.unused_code(user.totp_secret, user.totp_last_step, time.time())
    if code is None:
        _fail("the current and the next code were both used; run this again within 30 s")
    click.echo(code)


@main.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(sorted(scopes.ROLE_SCOPES)))
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="SQLite database file (default: the group's --db, else the default file).",
)
@click.pass_context
def role_command(ctx: click.Context, email: str, role: str, db_path: str | None) -> None:
    """Give EMAIL the role ROLE. A running server applies it at the user's next request: its
    sessions and API tokens then carry only the new role's scopes."""
    database = _open_db(db_path or ctx.obj.get("db_path"))
    try:
        demo.seed(database)
        user = database.find_user_by_email(email)
        if user is None:
            _fail(f"no user {email!r} in this database")
        database.set_user_role(user.id, role)
    finally:
        database.close()
    click.echo(f"{user.email}: {user.role} -> {role}")


@main.group("trust")
def trust() -> None:
    """Trust rules: CI jobs sign in with their own identity, a JWT from an external OpenID
    Connect issuer (RFC 8693 token exchange; `kt auth login --federated`)."""


def _db_option(fn: Any) -> Any:
    return click.option(
        "--db",
        "db_path",
        metavar="PATH",
        help="SQLite database file (default: the group's --db, else the default file).",
    )(fn)


@trust.command("add")
@click.argument("name")
@click.option("--issuer", required=True, metavar="URL", help="The CI's OIDC issuer, exactly.")
@click.option(
    "--audience", required=True, metavar="AUD", help="The `aud` its tokens must carry, alone."
)
@click.option(
    "--claim",
    "claims",
    multiple=True,
    required=True,
    metavar="NAME=PATTERN",
    help="A claim every token must match (fnmatch, case-sensitive; repeatable), e.g. "
    "repository=acme/app, ref=refs/heads/main.",
)
@click.option(
    "--scope",
    "rule_scopes",
    multiple=True,
    required=True,
    type=click.Choice(exchanges.GRANTABLE_SCOPES),
    help="An API scope the tokens get (repeatable); tokens:* cannot be granted.",
)
@click.option(
    "--lifetime",
    default=exchanges.DEFAULT_RULE_LIFETIME,
    show_default=True,
    type=click.IntRange(1, exchanges.MAX_RULE_LIFETIME),
    metavar="SECONDS",
    help="How long a token from this rule lives.",
)
@click.option("--org", default=demo.ORGANIZATION_NAME, show_default=True, help="The organization.")
@_db_option
@click.pass_context
def trust_add(
    ctx: click.Context,
    name: str,
    issuer: str,
    audience: str,
    claims: tuple[str, ...],
    rule_scopes: tuple[str, ...],
    lifetime: int,
    org: str,
    db_path: str | None,
) -> None:
    """Trust the CI identity tokens of ISSUER whose claims match, as NAME (the workload the
    tokens are for, name@workload.invalid in whoami)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
        _fail("NAME is lower-case letters, digits and dashes, e.g. deploy", EXIT_USAGE)
    if not issuer.startswith(("https://", "http://127.0.0.1", "http://localhost", "http://[::1]")):
        _fail("--issuer must be an https URL (or http on loopback)", EXIT_USAGE)
    try:
        patterns = exchanges.parse_claim_patterns(claims)
    except exchanges.RuleError as exc:
        _fail(str(exc), EXIT_USAGE)
    database = _open_db(db_path or ctx.obj.get("db_path"))
    try:
        demo.seed(database)
        organization = database.get_or_create_organization(org)
        rule = exchanges.Exchanges(database).add_rule(
            name=name,
            org_id=organization.id,
            issuer=issuer,
            audience=audience,
            claims=patterns,
            rule_scopes=rule_scopes,
            lifetime=lifetime,
            now=time.time(),
        )
    except exchanges.RuleError as exc:
        _fail(str(exc), EXIT_USAGE)
    finally:
        database.close()
    click.echo(_describe(rule, org))


def _describe(rule: exchanges.TrustRule, org: str) -> str:
    claims = " ".join(f"{k}={v}" for k, v in rule.claims.items())
    return (
        f"{rule.name} ({org}): {rule.issuer} aud={rule.audience} {claims} -> "
        f"{' '.join(rule.scopes)} for {rule.lifetime} s"
    )


@trust.command("list")
@_db_option
@click.pass_context
def trust_list(ctx: click.Context, db_path: str | None) -> None:
    """List the trust rules, one a line."""
    database = _open_db(db_path or ctx.obj.get("db_path"))
    try:
        for rule in exchanges.Exchanges(database).rules():
            click.echo(_describe(rule, database.get_organization(rule.org_id).name))
    finally:
        database.close()


@trust.command("remove")
@click.argument("name")
@_db_option
@click.pass_context
def trust_remove(ctx: click.Context, name: str, db_path: str | None) -> None:
    """Remove the trust rule NAME; the tokens it issued are revoked."""
    database = _open_db(db_path or ctx.obj.get("db_path"))
    try:
        removed = exchanges.Exchanges(database).remove_rule(name, now=time.time())
    finally:
        database.close()
    if not removed:
        _fail(f"no trust rule {name!r}")
    click.echo(f"removed trust rule {name}; its tokens are revoked")


@main.command("org")
@click.argument("name")
@click.option(
    "--device-flow/--no-device-flow",
    default=None,
    help="Allow or turn off device sign-in (RFC 8628) for the organization's users, as "
    "organizations do against device-code phishing: a device sign-in one of them approves is "
    "refused on the page, and the device's poll answers unauthorized_client saying why.",
)
@_db_option
@click.pass_context
def org_command(
    ctx: click.Context, name: str, device_flow: bool | None, db_path: str | None
) -> None:
    """Show the organization NAME's settings, or change them. A running server applies a
    change at the next request."""
    database = _open_db(db_path or ctx.obj.get("db_path"))
    try:
        demo.seed(database)
        org = database.find_organization(name)
        if org is None:
            _fail(f"no organization {name!r} in this database")
        if device_flow is not None:
            database.set_organization_device_flow(org.id, device_flow)
            org = database.get_organization(org.id)
    finally:
        database.close()
    click.echo(f"{org.name}: device sign-in {'allowed' if org.device_flow else 'turned off'}")


if __name__ == "__main__":
    main(prog_name="kt-devserver")
