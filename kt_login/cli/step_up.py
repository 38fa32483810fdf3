"""A second factor from the person at the terminal: the MFA code after a password, and a step-up
when an API call answers that it needs more than the session has — MFA or a more recent sign-in
(auth.mfa_required, RFC 9470 insufficient_user_authentication), or more scopes (RFC 6750
insufficient_scope). Without a person, the error carries the way to continue (issue 12's
step-up handoff)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from ..errors import ApiError, InsufficientScope, KtError, MfaRequired, UsageError
from ..session import OAUTH, Session
from ..signin.password import MAX_CODE_ATTEMPTS, answer_mfa_challenge
from ..store import CredentialStore, Location
from ..text import clean, run_hint
from .app import Invocation
from .views import logged_in_line, session_document

if TYPE_CHECKING:
    from ..signin.oidc import SignInRequest

# The browser sign-in's modules (asyncio, the ID-token check) load only when a step-up needs
# them: a command that needs none stays on its short import path (tests/test_startup_imports.py).

T = TypeVar("T")


def complete_challenge(
    inv: Invocation,
    mfa_token: str,
    *,
    code: str | None = None,
    store: CredentialStore | None = None,
    announce: bool = False,
    insecure_storage: bool = False,
) -> Session:
    """Ask for the code (or use `code`), exchange it, and store the session in place of the old.
    A code the server will not take ends with the `kt auth mfa challenge` command that tries
    again with the same mfa_token; a token it no longer takes, with the login command."""
    if store is None:
        store = inv.store_for_new_session(insecure_storage=insecure_storage)

    def ask_code() -> str:
        if code is not None:
            return code
        if not inv.interactive:
            raise UsageError("no MFA code: pipe it on stdin or run on a terminal")
        return prompt_code()

    with continue_hints(inv, insecure_storage=insecure_storage):
        session = answer_mfa_challenge(
            inv.api(),
            mfa_token,
            ask_code,
            attempts=1 if code is not None else MAX_CODE_ATTEMPTS,
            on_rejected=lambda why: code_rejected(inv, why),
        )
    inv.authenticator.save(store, session)
    if announce:
        inv.console.result(
            {
                "logged_in": True,
                **session_document(session, profile=inv.profile, storage=store.kind),
            },
            [logged_in_line(session, store.kind), "MFA: verified for this session."],
        )
    return session


def prompt_code() -> str:
    value = click.prompt("Authentication code", hide_input=True, err=True)
    return str(value).strip().replace(" ", "")


def code_rejected(inv: Invocation, why: str) -> None:
    inv.console.warn(f"that code was not accepted: {clean(why)}")


@contextmanager
def continue_hints(inv: Invocation, *, insecure_storage: bool) -> Iterator[None]:
    """An MFA challenge that ends without a session says how to go on: the exact
    `kt auth mfa challenge` command while the mfa_token is good, else the login command."""
    try:
        yield
    except MfaRequired as exc:
        exc.hint = inv.mfa_hint(exc.mfa_token, insecure_storage=insecure_storage)
        raise
    except ApiError as exc:
        if exc.code == "auth.mfa_token_expired":
            exc.hint = inv.login_hint()
        raise


# How long a step-up sign-in handed over without a person waits for its browser (kt auth login's
# default --timeout).
HANDOFF_TIMEOUT = 300


def with_step_up(inv: Invocation, run: Callable[[], T]) -> T:
    """Run `run`; when the server wants more than this credential has and a person is at the
    terminal, sign in again as it asks and retry once — never more: a second refusal is the
    error. MFA: a browser (OAuth) session signs in again in the browser with exactly the
    acr_values/max_age the server's challenge named (the new ID token must show them), a
    password session answers the code prompt. insufficient_scope: a browser session asks for
    the scopes it had plus those required, never fewer.

    Without a person the error leaves with the way to continue (exit 4 for MFA): the exact
    `kt auth mfa challenge` command, or a two-step step-up sign-in already started (its handle,
    link and --complete command in the JSON error)."""
    try:
        return run()
    except MfaRequired as exc:
        _step_up(inv, exc)
    except InsufficientScope as exc:
        _more_scope(inv, exc)
    try:
        return run()
    except InsufficientScope as again:
        again.message = (
            f"{again.message} (still, after signing in again for {again.scope}: the identity "
            "provider did not grant it, or your account does not hold it)"
        )
        again.hint = None
        raise


def _step_up(inv: Invocation, exc: MfaRequired) -> None:
    """Return once the session meets what `exc` asked for; raise `exc` with the way to go on
    otherwise."""
    found = _oauth_session(inv)
    if found is not None and exc.insufficient_user_authentication:
        session, store = found
        from ..signin.browser import step_up

        if inv.interactive:
            inv.console.info(
                f"This operation needs a stronger or more recent sign-in ({exc.message})."
            )
            keep, login = _sign_in_again(inv, session, store)
            request = step_up(login, acr_values=exc.acr_values, max_age=exc.max_age)
            _browser_again(inv, keep, request)
            inv.console.info("Signed in again at the level it needs; retrying.")
            return
        _hand_over(inv, exc, session, store)
    if not (inv.interactive and exc.mfa_token):
        exc.hint = inv.mfa_hint(exc.mfa_token)
        raise exc
    inv.console.info(f"This operation needs multi-factor authentication ({exc.message}).")
    complete_challenge(inv, exc.mfa_token)


def _hand_over(inv: Invocation, exc: MfaRequired, session: Session, store: Location) -> NoReturn:
    """No person here: start the step-up sign-in two-step (login_steps), so that an agent can
    give its person the link and finish with the printed --complete command; exit 4."""
    from ..signin.browser import step_up
    from .login_steps import start_browser_sign_in

    _, login = _sign_in_again(inv, session, store)
    request = step_up(login, acr_values=exc.acr_values, max_age=exc.max_age)
    try:
        started = start_browser_sign_in(
            inv, request, insecure_storage=store.name == "file", timeout=HANDOFF_TIMEOUT
        )
    except KtError as failed:
        where = ["--profile", inv.profile] if inv.profile_flag else []
        exc.message = f"{exc.message} (a step-up sign-in could not be started: {failed.message})"
        exc.hint = run_hint("kt", "auth", "mfa", "challenge", "--browser", *where)
        raise exc from None
    exc.step_up = started
    exc.message = (
        f"{exc.message} A sign-in at that level was started: open {started['sign_in_url']} in a "
        f"browser on this machine (until {started['expires_at']}), then finish it and retry."
    )
    exc.hint = run_hint("kt", "auth", "login", "--complete", str(started["handle"]))
    raise exc


def _more_scope(inv: Invocation, exc: InsufficientScope) -> None:
    """A browser (OAuth) session asks for the scopes it was granted and the required ones
    (signin/more_scope, as `kt auth refresh --scope` does); any other credential's scopes are
    its own or its role's, which signing in again cannot change."""
    from ..signin.more_scope import check_consentable, scope_request

    found = _oauth_session(inv)
    if found is None:
        raise exc
    session, store = found
    request = scope_request(session, exc.scope)
    if request.complete:  # it holds them, as far as kt knows: a new consent would change nothing
        raise exc
    try:
        check_consentable(session, request, http=inv.http())
    except UsageError as beyond:
        exc.message = f"{exc.message} ({beyond.message})"
        raise exc from None
    if not inv.interactive:
        exc.hint = run_hint("kt", "auth", "login", "--browser", "--start", "--scope", request.ask)
        raise exc
    inv.console.info(f"This operation needs the scope {exc.scope}: signing in again to ask for it.")
    keep, login = _sign_in_again(inv, session, store)
    _browser_again(inv, keep, dataclasses.replace(login, scope=request.ask))


def _oauth_session(inv: Invocation) -> tuple[Session, Location] | None:
    """The stored browser/device session the command used, and where it is kept; None for an
    API token from the environment or a password session."""
    if inv.env_token:
        return None
    try:
        session, store = inv.find_session()
    except KtError:
        return None
    if session is None or store is None or session.kind != OAUTH:
        return None
    return session, store


def _sign_in_again(
    inv: Invocation, session: Session, where: Location
) -> tuple[CredentialStore, SignInRequest]:
    """The sign-in `session` came from, prepared as `kt auth mfa challenge --browser` prepares
    its own (login_oauth._prepare: the profile's port, redirect host, resource indicators, and a
    new DPoP key for a DPoP-bound session), kept where the session is kept."""
    from .login_oauth import _prepare

    return _prepare(
        inv,
        insecure_storage=where.name == "file",
        issuer=session.issuer,
        client_id=session.client_id,
        scope=None,
        dpop=session.dpop_key is not None,  # stays DPoP-bound
    )


def _browser_again(inv: Invocation, store: CredentialStore, request: SignInRequest) -> None:
    """The browser sign-in `request` asks for, its checks passed, kept in `store` in place of
    the session it steps up."""
    from ..signin.finish import finish_oauth_sign_in
    from .login_oauth import browser_signed_in

    def rerun(port: int) -> str:
        where = ["--profile", inv.profile] if inv.profile_flag else []
        return run_hint("kt", "config", "set", "port", str(port), *where)

    signed = browser_signed_in(inv, request, open_browser=True, rerun=rerun)
    finish_oauth_sign_in(inv.authenticator, store, signed, request, method="browser")
