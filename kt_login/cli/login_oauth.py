"""`kt auth login --browser` and `--device`: OAuth sign-ins, ending in the same store as a
password login."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO, cast

from ..config import origin
from ..errors import KtError
from ..text import clean
from .app import Invocation
from .views import logged_in_line, session_document

if TYPE_CHECKING:
    from ..flows.device import DeviceAuthorization
    from ..oidc_login import SignedIn, SignInRequest
    from ..session import Session
    from ..store import CredentialStore


def run_browser_login(
    inv: Invocation,
    *,
    insecure_storage: bool,
    open_browser: bool,
    issuer: str | None,
    client_id: str | None,
    port: int,
    timeout: int,
    scope: str | None,
    prompt: str | None = None,
    max_age: int | None = None,
    acr_values: str | None = None,
) -> None:
    from ..browser import no_browser_reason, system_opener
    from ..oidc_login import sign_in

    store, login = _prepare(
        inv,
        insecure_storage=insecure_storage,
        issuer=issuer,
        client_id=client_id,
        scope=scope,
        port=port,
        timeout=float(timeout),
        prompt=prompt,
        max_age=max_age,
        acr_values=acr_values,
    )
    signed = sign_in(
        login,
        http=inv.http(),
        console=inv.console,
        opener=(inv.app.opener or system_opener) if open_browser else None,
        why_no_browser=(
            no_browser_reason(inv.app.env) if open_browser and inv.app.opener is None else None
        ),
        clock=inv.app.clock,
    )
    _keep(inv, signed, login, store, method="browser")


def _keep(
    inv: Invocation, signed: SignedIn, login: SignInRequest, store: CredentialStore, *, method: str
) -> None:
    from ..oidc_login import session_from_sign_in

    api_url = inv.base_settings.api_url.value
    # Tokens from the Keeptrusts issuer are API sessions; a foreign issuer's stay with it.
    keeptrusts = origin(login.issuer) == origin(api_url)
    session = session_from_sign_in(
        signed,
        login=login,
        api_url=api_url if keeptrusts else login.issuer,
        now=inv.now(),
        method=method,
    )
    if keeptrusts:
        session = _with_account(inv, session)
    inv.replace_session(store, session)
    inv.console.result(
        {"logged_in": True, **session_document(session, profile=inv.profile, storage=store.kind)},
        [logged_in_line(session, store.kind)],
    )


def run_device_login(
    inv: Invocation,
    *,
    insecure_storage: bool,
    issuer: str | None,
    client_id: str | None,
    scope: str | None,
    show_qr: bool,
) -> None:
    from ..oidc_login import device_sign_in

    store, login = _prepare(
        inv, insecure_storage=insecure_storage, issuer=issuer, client_id=client_id, scope=scope
    )
    countdown = Countdown(inv) if inv.interactive else None
    signed = device_sign_in(
        login,
        http=inv.http(),
        show=lambda auth: show_device_code(inv, auth, show_qr=show_qr),
        on_wait=countdown.update if countdown else None,
        clock=inv.app.clock,
    )
    if countdown:
        countdown.done()
    _keep(inv, signed, login, store, method="device")


def show_device_code(inv: Invocation, auth: DeviceAuthorization, *, show_qr: bool) -> None:
    """The code, where to enter it, a QR code, and the phishing warning (DV-03, DV-05)."""
    import json
    import socket

    if inv.json_mode:
        inv.console.err.write(
            json.dumps(
                {
                    "verification_uri": auth.verification_uri,
                    "verification_uri_complete": auth.verification_uri_complete,
                    "user_code": auth.user_code,
                    "expires_in": int(auth.expires_in),
                }
            )
            + "\n"
        )
        inv.console.err.flush()
        return
    say = inv.console.info
    say(f"To sign in, open {auth.verification_uri} on your phone or computer")
    say(f"and enter the code:   {clean(auth.user_code)}")
    if show_qr and auth.verification_uri_complete:
        import segno

        say("or scan this QR code, which opens that page with the code filled in:")
        segno.make(auth.verification_uri_complete, error="m").terminal(
            out=cast("TextIO", inv.console.err), compact=True, border=2
        )
    say(
        f"Only enter this code if you started this sign-in yourself, just now, on "
        f"{clean(socket.gethostname())}. Never enter a code someone sent you."
    )
    inv.console.err.flush()


class Countdown:
    """A one-line 'waiting' status on the terminal, rewritten at every poll."""

    def __init__(self, inv: Invocation) -> None:
        self._err = inv.console.err

    def update(self, remaining: float) -> None:
        minutes, seconds = divmod(int(remaining), 60)
        self._err.write(f"\rWaiting for approval… code expires in {minutes}:{seconds:02d} ")
        self._err.flush()

    def done(self) -> None:
        self._err.write("\r\x1b[K")
        self._err.flush()


def _prepare(
    inv: Invocation,
    *,
    insecure_storage: bool,
    issuer: str | None,
    client_id: str | None,
    scope: str | None,
    **options: Any,
) -> tuple[CredentialStore, SignInRequest]:
    """The store (probed, fails closed now) and what to ask which issuer for."""
    from ..flows.authcode import DEFAULT_SCOPE
    from ..oidc_login import SignInRequest

    store = inv.store_for_login(insecure_storage=insecure_storage)
    settings = inv.sign_in_settings(issuer=issuer, client_id=client_id)
    return store, SignInRequest(
        issuer=settings.issuer.value,
        client_id=settings.client_id.value,
        scope=scope or DEFAULT_SCOPE,
        **options,
    )


def run_browser_step_up(inv: Invocation, *, acr_values: str, insecure_storage: bool) -> None:
    """A fresh browser sign-in at a higher level (RFC 9470 style), with the same issuer and
    client as the current session; the ID token's acr and auth_time must show it (LC-07)."""
    try:
        current = inv.find_session()[0]
    except KtError:
        current = None
    issuer = current.issuer if current is not None and current.issuer else None
    client_id = current.client_id if current is not None and current.client_id else None
    run_browser_login(
        inv,
        insecure_storage=insecure_storage,
        open_browser=True,
        issuer=issuer,
        client_id=client_id,
        port=0,
        timeout=300,
        scope=None,
        prompt="login",
        max_age=0,
        acr_values=acr_values,
    )


def _with_account(inv: Invocation, session: Session) -> Session:
    """Organization, role and scopes as the API sees the new session (whoami)."""
    import dataclasses

    from ..api import BearerAuth

    try:
        account = inv.api(session.api_url).whoami(BearerAuth(session.access_token, session.api_url))
    except KtError:
        inv.revoke_quietly(session)
        raise
    return dataclasses.replace(
        session,
        user_email=session.user_email if account.email is None else account.email,
        user_id=session.user_id if account.user_id is None else account.user_id,
        organization=account.organization or "",
        role=account.role or "",
        scopes=account.scopes,
        mfa_authenticated=account.mfa_authenticated,
    )
