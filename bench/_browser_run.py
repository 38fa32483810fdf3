"""What bench/browser_login and bench/floor share: one `kt auth login --browser` whose browser
is this process (the URL handed over a FIFO by e2e/record_url.py), and the bare token request it
is measured against. See bench/browser_login for what each figure includes."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx2

EMAIL, PASSWORD = "alice@example.com", "alice-password"
URL_TIMEOUT = 30.0  # for kt to open the "browser"
EXIT_TIMEOUT = 60.0  # for kt to exit after the callback
BARE_REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: only the Location is read


class BenchError(RuntimeError):
    pass


def read_url(fifo_fd: int, proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The line the BROWSER script writes to the FIFO; fails if kt exits or time runs out first."""
    pidfd = os.pidfd_open(proc.pid) if hasattr(os, "pidfd_open") else None
    try:
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            waiting = [fifo_fd] if pidfd is None else [fifo_fd, pidfd]
            ready = select.select(waiting, [], [], max(left, 0))[0] if left > 0 else []
            if fifo_fd in ready:
                buf += os.read(fifo_fd, 65536)
            elif ready:
                raise BenchError(f"kt exited ({proc.wait()}) before opening a browser")
            else:
                raise BenchError(f"kt did not open a browser within {timeout:g} s")
        return buf.split(b"\n", 1)[0].decode()
    finally:
        if pidfd is not None:
            os.close(pidfd)


def kt_login_run(kt: Path, env: dict[str, str], run_dir: Path, fifo_fd: int, issuer: str) -> float:
    """Seconds from just before the callback GET to kt's exit with the session stored."""
    from _drive_as import authorize

    config = run_dir / "config"
    env = {**env, "KEEPTRUSTS_CONFIG_DIR": str(config), "HOME": str(run_dir)}
    out_path, err_path = run_dir / "kt.stdout", run_dir / "kt.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [str(kt), "auth", "login", "--browser", "--insecure-storage"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: the browser script dies with it
        )
    try:
        try:
            url = read_url(fifo_fd, proc, URL_TIMEOUT)
        except BenchError as exc:
            raise BenchError(
                f"{exc}; its stderr:\n{err_path.read_text(errors='replace')}"
            ) from None
        with httpx2.Client(follow_redirects=False) as browser:
            url = authorization_url(browser, url, issuer)
            callback = authorize(browser, url, email=EMAIL, password=PASSWORD)
            if urlsplit(callback).hostname != "127.0.0.1":
                raise BenchError(f"the final redirect is not to the loopback listener: {callback}")
            t0 = time.perf_counter()
            answer = browser.get(callback)
            code = proc.wait(timeout=EXIT_TIMEOUT)
            t1 = time.perf_counter()
        if answer.status_code != 200:
            raise BenchError(f"the loopback listener answered {answer.status_code}")
        if code != 0:
            raise BenchError(f"kt exited {code}: {err_path.read_text(errors='replace')}")
        if not (config / "credentials" / "default.json").is_file():
            raise BenchError(f"kt exited 0 but stored no session under {config}")
        return t1 - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def authorization_url(browser: httpx2.Client, opened: str, issuer: str) -> str:
    """The authorization request behind the one-time loopback link kt opens (LU-01)."""
    if urlsplit(opened).hostname == "127.0.0.1":
        hop = browser.get(opened)
        if hop.status_code != 302:
            raise BenchError(f"kt's one-time link answered {hop.status_code}, not a redirect")
        opened = hop.headers["location"]
    if not opened.startswith(issuer + "/oauth/authorize?"):
        raise BenchError(f"kt opened an unexpected URL: {opened}")
    return opened


def bare_token_run(token_client: httpx2.Client, issuer: str) -> float:
    """Seconds for one authorization_code exchange on a warm connection."""
    from _drive_as import CLIENT_ID, authorize, code_from, pkce_request

    request = pkce_request(issuer, BARE_REDIRECT_URI)
    with httpx2.Client(follow_redirects=False) as browser:
        location = authorize(browser, request.url, email=EMAIL, password=PASSWORD)
    code = code_from(location, request)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "client_id": CLIENT_ID,
        "code_verifier": request.verifier,
    }
    token_client.get(f"{issuer}/.well-known/openid-configuration").raise_for_status()
    t0 = time.perf_counter()
    response = token_client.post(f"{issuer}/oauth/token", data=form)
    t1 = time.perf_counter()
    body = response.json()
    if response.status_code != 200 or not {"access_token", "id_token"} <= body.keys():
        raise BenchError(f"token request failed: HTTP {response.status_code} {body}")
    return t1 - t0
