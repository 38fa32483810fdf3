"""A second factor from the person at the terminal: the MFA code after a password, and a step-up
when an API call answers that it needs MFA."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import click

from ..errors import ApiError, MfaRequired, UsageError
from ..session import Session
from ..signin.password import MAX_CODE_ATTEMPTS, answer_mfa_challenge
from ..store import CredentialStore
from ..text import clean
from .app import Invocation
from .views import logged_in_line, session_document

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


def with_step_up(inv: Invocation, run: Callable[[], T]) -> T:
    """Run `run`; if the server wants MFA and a person is at the terminal, prompt once and retry.

    Otherwise the MfaRequired error leaves with the exact `kt auth mfa challenge` command to run.
    """
    try:
        return run()
    except MfaRequired as exc:
        if not (inv.interactive and exc.mfa_token):
            exc.hint = inv.mfa_hint(exc.mfa_token)
            raise
        inv.console.info(f"This operation needs multi-factor authentication ({exc.message}).")
        complete_challenge(inv, exc.mfa_token)
    return run()
