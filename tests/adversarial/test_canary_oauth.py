"""The OAuth canary sweep (SECURITY.md HY-02, HY-01, DV-04, CB-09): the real `kt`, with
KT_DEBUG=1, signs in through the browser and the device grant against the hostile provider, which
issues canary tokens; every secret of those flows (authorization code, PKCE verifier, state,
access/refresh/ID token, device_code) must stay out of kt's stdout/stderr, out of every file under
the config dir but the credentials store, and out of kt's argv while it waits for the callback.
"""

from __future__ import annotations

import os
import queue
import secrets
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from tests.kt_process import Result

from .conftest import Box
from .hostile_as import CLIENT_ID, HostileAS

WAIT = 30.0

# An opener that hands the authorization URL to the test through a FIFO instead of following it,
# so kt is still waiting for the callback while the test looks at /proc/<pid>/cmdline.
OPENER = """
import sys
with open(sys.argv[1], "w", encoding="utf-8") as fifo:
    fifo.write(sys.argv[2] + "\\n")
"""


def canary(kind: str) -> str:
    return f"{kind}-CANARY{secrets.token_hex(12)}"


class IdTokens:
    """Records every compact ID token the hostile provider issues."""

    def __init__(self, server: HostileAS) -> None:
        self.issued: list[str] = []
        self._server = server
        self._original = server.id_token

    def __enter__(self) -> IdTokens:
        def recording(claims: dict[str, Any], *, refresh: bool = False) -> str:
            token = self._original(claims, refresh=refresh)
            self.issued.append(token)
            return token

        self._server.id_token = recording  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self._server.id_token  # back to the class's method


def config_files(box: Box) -> dict[str, str]:
    return {
        str(path): path.read_bytes().decode("utf-8", "replace")
        for path in sorted(box.config.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def browser_login_watching_argv(box: Box, tmp_path: Path) -> tuple[Result, bytes]:
    """`kt auth login --browser`; while it waits for the callback, read its cmdline, then play
    the browser (follow the authorization URL to kt's listener)."""
    fifo = tmp_path / "opener.fifo"
    os.mkfifo(fifo)
    script = tmp_path / "opener.py"
    script.write_text(OPENER)
    env = dict(box.env, BROWSER=f"{sys.executable} {script} {fifo} %s")
    urls: queue.Queue[str] = queue.Queue()

    def read_fifo() -> None:
        with open(fifo, encoding="utf-8") as f:  # blocks until the opener opens it
            urls.put(f.read().strip())

    reader = threading.Thread(target=read_fifo, daemon=True)
    reader.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kt_login", "auth", "login", "--browser",
         "--issuer", box.server.issuer, "--client-id", CLIENT_ID, "--insecure-storage",
         "--timeout", "60", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        try:
            url = urls.get(timeout=WAIT)
        except queue.Empty:
            proc.kill()
            out, err = proc.communicate(timeout=WAIT)
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # free the reader
            raise AssertionError(f"kt never opened the browser: {err}") from None
        # The opener runs once the listener is up (CB-04): kt is now waiting for the callback.
        assert proc.poll() is None
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        urllib.request.urlopen(url, timeout=WAIT).read()  # 302 to kt's loopback listener
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return Result(proc.returncode, out, err), cmdline


def device_login(box: Box) -> Result:
    return box.kt(
        "auth", "login", "--device", "--issuer", box.server.issuer,
        "--client-id", CLIENT_ID, "--insecure-storage", "--json",
    )  # fmt: skip


def test_HY_02_HY_01_DV_04_CB_09_no_oauth_secret_leaks(box: Box, tmp_path: Path) -> None:
    box.env["KT_DEBUG"] = "1"
    server = box.server
    outputs: list[tuple[str, str]] = []  # (where, text)
    secrets_seen: set[str] = set()  # never anywhere but the wire
    tokens: set[str] = set()  # allowed in the credentials store only

    def run(where: str, result: Result) -> Result:
        outputs.append((where + " stdout", result.stdout))
        outputs.append((where + " stderr", result.stderr))
        for path, text in config_files(box).items():
            outputs.append((f"{where}: {path}", text))
        return result

    def flow_secrets() -> None:
        for seen in server.calls("GET", "/authorize"):
            secrets_seen.add(seen.query["state"])
        for seen in server.token_calls("authorization_code"):
            secrets_seen.add(seen.form["code"])
            secrets_seen.add(seen.form["code_verifier"])
        for seen in server.token_calls("urn:ietf:params:oauth:grant-type:device_code"):
            secrets_seen.add(seen.form["device_code"])

    with IdTokens(server) as id_tokens:
        # 1. a good browser sign-in with canary tokens; argv checked while it waits (HY-01)
        at, rt = canary("at"), canary("rt")
        tokens |= {at, rt}
        server.behaviour.token_reply = {"access_token": at, "refresh_token": rt}
        result, cmdline = browser_login_watching_argv(box, tmp_path)
        run("login --browser", result)
        assert result.code == 0, result.stderr
        flow_secrets()
        (authorize,) = server.calls("GET", "/authorize")
        for value in [authorize.query["state"], at, rt, *secrets_seen]:
            assert value.encode() not in cmdline, "a secret in kt's argv"
        stored = box.credentials.read_text()
        assert at in stored  # the canaries really are the session kt keeps

        # 2. status, status --json, logout
        assert run("status", box.kt("auth", "status")).code == 0
        assert run("status --json", box.kt("auth", "status", "--json")).code == 0
        for value in secrets_seen:
            assert value not in box.credentials.read_text()
        assert run("logout", box.kt("auth", "logout")).code == 0

        # 3. a failing browser sign-in: the token reply arrives, the ID token's nonce is wrong
        server.reset()
        at, rt = canary("at"), canary("rt")
        tokens |= {at, rt}
        server.behaviour.token_reply = {"access_token": at, "refresh_token": rt}
        server.behaviour.id_claims = {"nonce": "not-this-login"}
        result = run("failing login", box.login())
        assert result.code == 7, result.stderr
        assert len(server.token_calls("authorization_code")) == 1
        flow_secrets()
        secrets_seen |= {at, rt}  # refused: these are never stored

        # 4. a device sign-in (DV-04), status and logout again
        server.reset()
        at, rt = canary("at"), canary("rt")
        tokens |= {at, rt}
        server.behaviour.token_reply = {"access_token": at, "refresh_token": rt}
        result = run("login --device", device_login(box))
        assert result.code == 0, result.stderr
        flow_secrets()
        for value in secrets_seen:
            assert value not in box.credentials.read_text()
        assert run("status after device", box.kt("auth", "status", "--json")).code == 0
        assert run("logout after device", box.kt("auth", "logout")).code == 0

    assert len(id_tokens.issued) == 3
    device_codes = [
        s.form["device_code"]
        for s in server.token_calls("urn:ietf:params:oauth:grant-type:device_code")
    ]
    assert device_codes and all(d in secrets_seen for d in device_codes)
    everything = secrets_seen | tokens | set(id_tokens.issued)
    # the ID tokens' signatures are long random strings: a truncated or re-encoded copy shows up
    everything |= {t.rsplit(".", 1)[1] for t in id_tokens.issued}
    assert len(everything) >= 14
    credentials = str(box.credentials)
    for where, text in outputs:
        if where.endswith(credentials):
            continue
        for value in everything:
            assert value not in text, f"a canary ({value[:12]}...) in {where}"
