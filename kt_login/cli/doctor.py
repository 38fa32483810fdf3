"""`kt auth doctor`: check this machine for what a sign-in needs; the checks are kt_login.doctor."""

from __future__ import annotations

import click

from ..api import make_http_client
from ..doctor import FAIL, OK, Check, Surroundings, diagnose, failed
from .app import Invocation, common_options
from .examples import examples

MARK = {OK: "ok  ", "warn": "warn", FAIL: "FAIL"}


@examples(
    "kt auth doctor",
    "kt auth doctor --profile work --json",
)
@click.command()
@common_options
def doctor(inv: Invocation) -> None:
    """Check what signing in needs here, and say how to fix what is wrong.

    The checks: the config file (permissions, unknown keys); the API URL and its TLS
    (SSL_CERT_FILE); the clock against the API server's Date header (warns beyond 60 s); proxy
    variables and whether loopback bypasses them; the OS keyring (backend, locked, latency, a
    probe secret written, read back and deleted); listening on 127.0.0.1 and ::1 (and on the
    profile's fixed sign-in port, if it has one); whether a browser can be opened, and why not;
    the stored sessions (expired, refresh expiry); and the issuer's metadata (PKCE S256, iss in
    responses, device grant, revocation).

    Exits 0 when every check passes, 1 otherwise. --json prints one object: {"ok": bool,
    "checks": [{"name", "status": "ok" | "warn" | "fail", "detail", "fix"}]}.
    """
    run_doctor(inv)


def run_doctor(inv: Invocation) -> None:
    app = inv.app

    checks = diagnose(
        Surroundings(
            env=app.env,
            profile_flag=inv.profile_flag,
            api_url_flag=inv.api_url_flag,
            http=lambda: make_http_client(app.transport),
            store=inv.store_at,
            clock=app.clock,
        )
    )
    problem = failed(checks)
    doc = {"ok": problem is None, "checks": [c.as_dict() for c in checks]}
    inv.console.result(doc, [line for c in checks for line in _lines(c)])
    if problem is not None:
        raise problem


def _lines(check: Check) -> list[str]:
    lines = [f"{MARK.get(check.status, check.status)}  {check.name:9} {check.detail}"]
    if check.fix and check.status != OK:
        lines.append(f"{'':15} fix: {check.fix}")
    return lines
