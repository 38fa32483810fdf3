"""Two-step device sign-in for agents and scripts: `kt auth login --device --start` prints what
the person needs (URL, code, QR payload) and a handle, and exits at once; `kt auth login
--complete HANDLE [--wait SECONDS]` waits for the approval and keeps the session; `--cancel
HANDLE` forgets it. The pending state is store/pending.py's owner-only file."""

from __future__ import annotations

import click

from ..errors import KtError, NetworkError, NotLoggedIn, OAuthError, ServerError, UsageError
from ..flows.device import DeviceAuthorization
from ..signin.device import (
    DeviceStarted,
    provider_with_device_grant,
    start_device_sign_in,
    wait_for_approval,
)
from ..signin.oidc import SignInRequest
from ..store.pending import delete_pending, load_pending, new_handle, save_pending
from ..text import run_hint
from .app import Invocation
from .login_oauth import Countdown, _finish, _prepare
from .views import timestamp

STATE_VERSION = 1


def _command(*words: str) -> str:
    return run_hint(*words).removeprefix("run: ")


def run_device_start(
    inv: Invocation,
    *,
    insecure_storage: bool,
    issuer: str | None,
    client_id: str | None,
    scope: str | None,
) -> None:
    store, login = _prepare(
        inv, insecure_storage=insecure_storage, issuer=issuer, client_id=client_id, scope=scope
    )
    started = start_device_sign_in(login, http=inv.http())
    auth = started.authorization
    now = inv.now()
    handle = new_handle()
    save_pending(
        inv.base_settings.dir,
        handle,
        {
            "version": STATE_VERSION,
            "method": "device",
            "profile": inv.profile,
            "api_url": login.api_url,
            "issuer": login.issuer,
            "client_id": login.client_id,
            "requested_scope": login.scope,
            "scope": started.scope,
            "user_code": auth.user_code,
            "verification_uri": auth.verification_uri,
            "verification_uri_complete": auth.verification_uri_complete,
            "interval": auth.interval,
            "expires_at": now + auth.expires_in,
            "insecure_storage": insecure_storage,
        },
        device_code=auth.device_code,
        # the device code goes where the session will: the keyring, or the opted-in file
        keyring=inv.session_store.keyring if store.kind == "keyring" else None,
    )
    complete = _command("kt", "auth", "login", "--complete", handle)
    cancel = _command("kt", "auth", "login", "--cancel", handle)
    inv.console.result(
        {
            "handle": handle,
            "method": "device",
            "profile": inv.profile,
            "verification_uri": auth.verification_uri,
            "verification_uri_complete": auth.verification_uri_complete,
            "user_code": auth.user_code,
            "qr_payload": auth.verification_uri_complete or auth.verification_uri,
            "expires_at": timestamp(now + auth.expires_in),
            "expires_in": int(auth.expires_in),
            "interval": auth.interval,
            "complete_command": complete,
            "cancel_command": cancel,
        },
        [
            f"To sign in, open {auth.verification_uri} and enter the code {auth.user_code}",
            f"(it expires at {timestamp(now + auth.expires_in)}). Then finish here with:",
            f"  {complete}",
        ],
    )


def run_complete(inv: Invocation, handle: str, *, wait: int) -> None:
    directory = inv.base_settings.dir
    keyring = inv.session_store.keyring
    found = load_pending(directory, handle, keyring=keyring)
    state, device_code = found if found is not None else ({}, "")
    if found is None or state.get("version") != STATE_VERSION:
        raise UsageError(
            f"no pending sign-in {handle} here (it finished, failed, expired or was cancelled)",
            hint=run_hint("kt", "auth", "login", "--device", "--start"),
        )
    profile = str(state["profile"])
    if inv.profile_flag and inv.profile_flag != profile:
        raise UsageError(f"sign-in {handle} is for profile {profile!r}, not {inv.profile_flag!r}")
    # The profile and API URL the sign-in was started for, whatever this shell's defaults are.
    sub = Invocation(
        inv.app, profile_flag=profile, api_url_flag=str(state["api_url"]), json_mode=inv.json_mode
    )
    click.get_current_context().call_on_close(sub.close)
    expires_at = float(state["expires_at"])
    start_again = run_hint("kt", "auth", "login", "--device", "--start", "--profile", profile)
    if expires_at <= sub.now():
        delete_pending(directory, handle, keyring=keyring)
        raise NotLoggedIn(
            f"the device code of sign-in {handle} expired at {timestamp(expires_at)} before it "
            "was approved",
            hint=start_again,
        )
    store = sub.store_for_new_session(insecure_storage=bool(state["insecure_storage"]))
    login = SignInRequest(
        issuer=str(state["issuer"]),
        client_id=str(state["client_id"]),
        api_url=str(state["api_url"]),
        scope=state["requested_scope"] if isinstance(state["requested_scope"], str) else None,
    )
    remaining = expires_at - sub.now()
    budget = min(remaining, float(wait))
    started = DeviceStarted(
        provider_with_device_grant(login, http=sub.http()),
        str(state["scope"]),
        DeviceAuthorization(
            device_code=device_code,
            user_code=str(state["user_code"]),
            verification_uri=str(state["verification_uri"]),
            verification_uri_complete=state["verification_uri_complete"] or None,
            expires_in=budget,
            interval=float(state["interval"]),
        ),
    )
    countdown = Countdown(sub) if sub.interactive else None
    try:
        signed = wait_for_approval(
            login,
            started,
            http=sub.http(),
            on_wait=countdown.update if countdown else None,
            clock=sub.app.clock,
        )
    except OAuthError as exc:
        if exc.error == "expired_token" and budget < remaining and sub.now() < expires_at:
            pending = NotLoggedIn(
                f"sign-in {handle} is not approved yet (waited {wait} s); it can be approved "
                f"until {timestamp(expires_at)}",
                hint=run_hint("kt", "auth", "login", "--complete", handle),
            )
            pending.code = "auth.sign_in_pending"
            raise pending from None
        delete_pending(directory, handle, keyring=keyring)
        if exc.error == "expired_token":
            exc.hint = start_again
        raise
    except (NetworkError, ServerError):
        raise  # the sign-in may still be approved: --complete can be run again
    except KtError:
        delete_pending(directory, handle, keyring=keyring)
        raise
    finally:
        sub.console.clear_status()
    delete_pending(directory, handle, keyring=keyring)
    _finish(sub, signed, login, store, method="device")


def run_cancel(inv: Invocation, handle: str) -> None:
    removed = delete_pending(inv.base_settings.dir, handle, keyring=inv.session_store.keyring)
    if not removed:
        raise UsageError(
            f"no pending sign-in {handle} here (it finished, failed, expired or was cancelled)"
        )
    inv.console.result(
        {"cancelled": True, "handle": handle},
        [f"Cancelled sign-in {handle}; its code can no longer be used from this machine."],
    )
