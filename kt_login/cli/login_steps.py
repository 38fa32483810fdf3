"""Two-step device sign-in for agents and scripts: `kt auth login --device --start` prints what
the person needs (URL, code, QR payload) and a handle, and exits at once; `kt auth login
--complete HANDLE [--wait SECONDS]` waits for the approval and keeps the session; `--cancel
HANDLE` forgets it. The pending state is store/pending.py's owner-only file."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

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
from ..store.pending import (
    delete_pending,
    load_pending,
    new_handle,
    read_state,
    save_pending,
    write_state,
)
from ..text import run_hint
from .app import Invocation
from .login_oauth import Countdown, _finish, _prepare, resource_options
from .views import timestamp

STATE_VERSION = 1
HOLDER_START_TIMEOUT = 60.0  # for the listener to be up and the link ready
COMPLETE_POLL = 0.2  # how often --complete looks at a browser sign-in's state


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
            "issuer_from_api": login.issuer_from_api,
            "send_resource": login.send_resource,
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
    state = read_state(directory, handle)
    if state is not None and state.get("method") == "browser":
        _complete_browser(inv, handle, state, wait=wait)
        return
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
        **resource_options(state),
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
    state = read_state(inv.base_settings.dir, handle)
    if state is not None and state.get("method") == "browser":
        _stop_holder(state, handle)
    removed = delete_pending(inv.base_settings.dir, handle, keyring=inv.session_store.keyring)
    if not removed:
        raise UsageError(
            f"no pending sign-in {handle} here (it finished, failed, expired or was cancelled)"
        )
    inv.console.result(
        {"cancelled": True, "handle": handle},
        [f"Cancelled sign-in {handle}; its code can no longer be used from this machine."],
    )


# --------------------------------------------------------------------------- --browser --start


def run_browser_start(
    inv: Invocation,
    *,
    insecure_storage: bool,
    issuer: str | None,
    client_id: str | None,
    scope: str | None,
    port: int | None,
    timeout: int,
    redirect_host: str | None = None,
) -> None:
    """Spawn the process that holds the listener (cli/browser_holder.py), print the link it
    gives and exit; the holder finishes the sign-in and leaves the outcome for --complete."""
    _, login = _prepare(
        inv,
        insecure_storage=insecure_storage,
        issuer=issuer,
        client_id=client_id,
        scope=scope,
        port=port,  # --port, else the profile's port, else any free one
        redirect_host=redirect_host,  # likewise
    )
    started = start_browser_sign_in(inv, login, insecure_storage=insecure_storage, timeout=timeout)
    inv.console.result(
        started,
        [
            f"To sign in, open this link in a browser on this machine (it works once, until "
            f"{started['expires_at']}):",
            f"  {started['sign_in_url']}",
            "Then finish here with:",
            f"  {started['complete_command']}",
        ],
    )


def start_browser_sign_in(
    inv: Invocation, login: SignInRequest, *, insecure_storage: bool, timeout: int
) -> dict[str, Any]:
    """A browser sign-in left to a detached holder: `login` as asked (a step-up's prompt,
    max_age and acr_values included), its handle, one-time link and the commands that finish or
    cancel it — what `--start` prints, and what a step-up without a person hands over."""
    directory = inv.base_settings.dir
    handle = new_handle()
    now = inv.now()
    write_state(
        directory,
        handle,
        {
            "version": STATE_VERSION,
            "method": "browser",
            "status": "starting",
            "profile": inv.profile,
            "api_url": login.api_url,
            "issuer": login.issuer,
            "issuer_from_api": login.issuer_from_api,
            "send_resource": login.send_resource,
            "client_id": login.client_id,
            "scope": login.scope,
            "prompt": login.prompt,
            "max_age": login.max_age,
            "acr_values": login.acr_values,
            # a DPoP sign-in (--dpop, the profile's dpop, a DPoP session's step-up): the holder
            # makes its own key, which never leaves its memory until the session is kept
            "dpop": login.dpop is not None,
            "port": login.port,
            "redirect_host": login.redirect_host,
            "timeout": timeout,
            "expires_at": now + timeout,
            "insecure_storage": insecure_storage,
        },
    )
    holder = subprocess.Popen(  # noqa: S603 - this interpreter, our module, our arguments
        [sys.executable, "-m", "kt_login.cli.browser_holder", handle, str(directory)],
        env=dict(inv.app.env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not ended with this terminal's session or process group
        close_fds=True,
    )
    assert holder.stdout is not None
    ready, _, _ = select.select([holder.stdout], [], [], HOLDER_START_TIMEOUT)
    line = holder.stdout.readline() if ready else b""
    holder.stdout.close()
    try:
        said: dict[str, Any] = json.loads(line) if line else {}
    except ValueError:
        said = {}
    if "sign_in_url" not in said:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        delete_pending(directory, handle, keyring=inv.session_store.keyring)
        raise _error_from(said.get("error") or {"message": "the sign-in listener did not start"})
    return {
        "handle": handle,
        "method": "browser",
        "profile": inv.profile,
        "sign_in_url": str(said["sign_in_url"]),
        "redirect_uri": said.get("redirect_uri"),
        "expires_at": timestamp(now + timeout),
        "expires_in": timeout,
        "complete_command": _command("kt", "auth", "login", "--complete", handle),
        "cancel_command": _command("kt", "auth", "login", "--cancel", handle),
    }


def _complete_browser(inv: Invocation, handle: str, state: dict[str, Any], *, wait: int) -> None:
    directory = inv.base_settings.dir
    if inv.profile_flag and inv.profile_flag != state.get("profile"):
        raise UsageError(
            f"sign-in {handle} is for profile {state.get('profile')!r}, not {inv.profile_flag!r}"
        )
    deadline = time.monotonic() + wait
    while True:
        status = state.get("status")
        if status in ("done", "failed"):
            break
        if not _alive(state, handle):
            state = read_state(directory, handle) or state  # it may have just finished
            if state.get("status") in ("done", "failed"):
                break
            state = {
                **state,
                "status": "failed",
                "error": {
                    "message": "the sign-in's listener stopped before the sign-in finished",
                    "exit_code": 1,
                },
            }
            break
        if time.monotonic() >= deadline:
            pending = NotLoggedIn(
                f"sign-in {handle} has not come back from the browser yet (waited {wait} s); "
                f"it can be finished until {timestamp(float(state['expires_at']))}",
                hint=run_hint("kt", "auth", "login", "--complete", handle),
            )
            pending.code = "auth.sign_in_pending"
            raise pending
        time.sleep(COMPLETE_POLL)
        state = read_state(directory, handle) or {
            **state,
            "status": "failed",
            "error": {"message": f"sign-in {handle} was cancelled"},
        }
    delete_pending(directory, handle, keyring=inv.session_store.keyring)
    if state["status"] == "failed":
        raise _error_from(state.get("error") or {})
    inv.console.result(state["result"], [_logged_in_text(state["result"])])


def _logged_in_text(doc: dict[str, Any]) -> str:
    user = doc.get("user") or {}
    return (
        f"Logged in to {doc.get('api_url')} as {user.get('name') or user.get('email')}. "
        f"Session stored in: {doc.get('credential_store')}."
    )


def _error_from(error: dict[str, Any]) -> KtError:
    failure = KtError(str(error.get("message") or "the sign-in failed"), hint=error.get("hint"))
    failure.code = str(error.get("code") or "kt.error")
    code = error.get("exit_code")
    failure.exit_code = code if isinstance(code, int) and 0 < code < 256 else 1
    return failure


def _alive(state: dict[str, Any], handle: str) -> bool:
    """Is this sign-in's holder still running? (True until it has said who it is.)"""
    pid = state.get("pid")
    if not isinstance(pid, int):
        return state.get("status") == "starting"
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's: not ours
        return False
    return _is_holder(pid, handle)


def _is_holder(pid: int, handle: str) -> bool:
    """Only this sign-in's holder is ever signalled, never a process that got its pid later."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): the pid is all there is to go on
    return b"kt_login.cli.browser_holder" in argv and handle.encode() in argv


def _stop_holder(state: dict[str, Any], handle: str) -> None:
    pid = state.get("pid")
    if isinstance(pid, int) and _alive(state, handle):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
