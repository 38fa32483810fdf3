"""The small detached process behind `kt auth login --browser --start`: it holds the loopback
listener of one browser sign-in, hands the sign-in link to the `--start` that spawned it (one JSON
line on its stdout, then stdout is closed), waits for the callback, finishes the sign-in like
`kt auth login --browser` (one code exchange, the ID-token checks, the session kept), writes the
outcome into the pending state for `--complete`, and exits — on completion, on its timeout, or
when `--cancel` ends it. The PKCE verifier, state and nonce live in this process's memory only.

    python -m kt_login.cli.browser_holder HANDLE CONFIG_DIR
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..dpop import DpopKey, Prover
from ..errors import KtError
from ..output import Console
from ..signin.browser import browser_sign_in
from ..signin.oidc import SignInRequest
from ..store.pending import check_handle, read_state, write_state
from .app import App, Invocation
from .login_oauth import _finish, resource_options


def _say_to_parent(doc: dict[str, Any]) -> None:
    """The one line `--start` waits for; then stdout goes nowhere, so a parent that has exited
    can never make a later write fail."""
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def _record(directory: Path, handle: str, **changes: Any) -> None:
    """Update the pending state, unless it is gone (cancelled): never recreate it."""
    state = read_state(directory, handle)
    if state is not None:
        write_state(directory, handle, {**state, **changes})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def run(handle: str, directory: Path) -> int:
    state = read_state(directory, check_handle(handle))
    if state is None:
        return 1
    _record(directory, handle, pid=os.getpid(), status="starting")
    app = App(env=dict(os.environ), interactive=lambda: False)
    inv = Invocation(
        app,
        profile_flag=str(state["profile"]),
        api_url_flag=str(state["api_url"]),
        json_mode=True,
    )
    inv.console = Console(json_mode=True, out=io.StringIO(), err=io.StringIO())
    shown = False

    def show_url(link: str, redirect_uri: str) -> None:
        nonlocal shown
        _record(directory, handle, status="waiting", sign_in_url=link, redirect_uri=redirect_uri)
        _say_to_parent({"sign_in_url": link, "redirect_uri": redirect_uri})
        shown = True

    try:
        store = inv.store_for_new_session(insecure_storage=bool(state["insecure_storage"]))
        login = SignInRequest(
            issuer=str(state["issuer"]),
            client_id=str(state["client_id"]),
            api_url=str(state["api_url"]),
            scope=state["scope"] if isinstance(state["scope"], str) else None,
            port=int(state["port"]),
            redirect_host=str(state.get("redirect_host", "127.0.0.1")),
            timeout=float(state["timeout"]),
            # a step-up's (cli/step_up.py): asked for exactly, and checked in the ID token
            prompt=_text(state.get("prompt")),
            max_age=state["max_age"] if isinstance(state.get("max_age"), int) else None,
            acr_values=_text(state.get("acr_values")),
            **resource_options(state),
            dpop=Prover(DpopKey.generate(), clock=app.clock) if state.get("dpop") else None,
        )
        signed = browser_sign_in(login, http=inv.http(), show_url=show_url, clock=app.clock)
        _finish(inv, signed, login, store, method="browser")
        out = inv.console.out
        assert isinstance(out, io.StringIO)
        _record(directory, handle, status="done", result=json.loads(out.getvalue()))
        return 0
    except KtError as exc:
        error = exc.as_json()["error"]
    except Exception as exc:  # noqa: BLE001 - reported to --complete, never a traceback
        error = {"code": "kt.internal", "message": type(exc).__name__, "exit_code": 1}
    finally:
        inv.close()
    _record(directory, handle, status="failed", error=error)
    if not shown:
        _say_to_parent({"error": error})
    return 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], Path(sys.argv[2])))
