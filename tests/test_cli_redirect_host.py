"""`kt auth login --browser --redirect-host 127.0.0.1|[::1]|localhost` (issue 13 item 2), the
real `kt` against a real kt-devserver, the person's browser scripted over HTTP.

For `localhost`, kt listens on the same port on 127.0.0.1 and ::1 and names
`http://localhost:PORT/callback`; the browser here reaches kt over ::1, as a browser or a port
forwarder that resolves `localhost` to ::1 does. kt-devserver's `kt-cli-localhost` client is
registered as a provider that refuses IP literals registers it: `http://localhost/callback`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from kt_login.store import FileStore
from tests.fixtures.oauth_client import form_of
from tests.kt_process import (
    ALICE,
    kt,
    start_browser_login,
)

LOCALHOST_CLIENT = "kt-cli-localhost"


def over(literal: str, url: str) -> httpx2.Response:
    """GET `url` (on kt's listener) by connecting to `literal`, with the URL's own Host."""
    parts = urlsplit(url)
    target = f"http://{'[::1]' if literal == '::1' else literal}:{parts.port}{parts.path}"
    if parts.query:
        target += "?" + parts.query
    return httpx2.get(target, headers={"Host": parts.netloc}, timeout=10)


def sign_in_at_the_provider(authorize_url: str) -> httpx2.Response:
    """The provider's pages (sign-in, consent), up to its redirect back to the client."""
    with httpx2.Client(timeout=10) as browser:
        page = browser.get(authorize_url)
        for fields in ({"email": ALICE[0], "password": ALICE[1]}, {"decision": "approve"}):
            while page.is_redirect and page.headers["location"].startswith("/"):
                page = browser.get(str(page.url.join(page.headers["location"])))
            form = form_of(page)
            page = browser.post(str(page.url.join(form.action)), data={**form.fields, **fields})
        return page


def finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, json.loads(out) if out.strip() else {}, err


def test_localhost_is_answered_over_ipv6_and_the_sign_in_completes(env, devserver):
    proc, shown = start_browser_login(
        env, "--redirect-host", "localhost", "--client-id", LOCALHOST_CLIENT
    )
    try:
        port = shown["port"]
        assert shown["redirect_uri"] == f"http://localhost:{port}/callback"
        link = urlsplit(shown["sign_in_url"])
        assert link.netloc == f"localhost:{port}"  # the one-time link names localhost too
        # Both families answer on the one port (and the Host pin refuses the bare literals).
        assert over("127.0.0.1", f"http://localhost:{port}/").status_code == 404
        assert over("::1", f"http://localhost:{port}/").status_code == 404
        assert over("::1", f"http://[::1]:{port}/callback").status_code == 421

        to_provider = over("::1", shown["sign_in_url"])
        assert to_provider.status_code == 302
        authorize_url = to_provider.headers["location"]
        assert authorize_url.startswith(devserver.url)
        back = sign_in_at_the_provider(authorize_url)
        assert back.status_code == 302
        callback = back.headers["location"]
        assert callback.startswith(f"http://localhost:{port}/callback?")
        assert over("::1", callback).status_code == 200  # the browser's redirect, over ::1
        code, doc, err = finish(proc)
    finally:
        proc.kill()
    assert code == 0, err
    assert doc["logged_in"] is True and doc["user"]["email"] == ALICE[0]
    session = FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default")
    assert session is not None and session.method == "browser"
    assert kt("auth", "whoami", env=env).code == 0
    with pytest.raises(httpx2.ConnectError):  # both halves of the listener are closed
        over("::1", f"http://localhost:{port}/")
    with pytest.raises(httpx2.ConnectError):
        over("127.0.0.1", f"http://localhost:{port}/")


def test_a_provider_that_registered_only_localhost_refuses_the_ip_literal(env):
    """What --redirect-host localhost is for: the same client without it gets the provider's
    error page, and kt's wait ends with the message naming the redirect URI."""
    proc, shown = start_browser_login(env, "--client-id", LOCALHOST_CLIENT, "--timeout", "10")
    try:
        assert shown["redirect_uri"].startswith("http://127.0.0.1:")
        refused = httpx2.get(over("127.0.0.1", shown["sign_in_url"]).headers["location"])
        assert refused.status_code == 400 and "cannot continue" in refused.text
        code, _, err = finish(proc)
    finally:
        proc.kill()
    assert code == 1
    assert (
        "register " + shown["redirect_uri"] in json.loads(err.splitlines()[-1])["error"]["message"]
    )


def test_ipv6_literal_redirect_host(env):
    proc, shown = start_browser_login(env, "--redirect-host", "[::1]")
    try:
        port = shown["port"]
        assert shown["redirect_uri"] == f"http://[::1]:{port}/callback"
        with pytest.raises(httpx2.ConnectError):  # nothing on 127.0.0.1
            over("127.0.0.1", f"http://[::1]:{port}/")
        back = sign_in_at_the_provider(over("::1", shown["sign_in_url"]).headers["location"])
        assert back.headers["location"].startswith(f"http://[::1]:{port}/callback?")
        assert over("::1", back.headers["location"]).status_code == 200
        code, doc, err = finish(proc)
    finally:
        proc.kill()
    assert code == 0, err
    assert doc["logged_in"] is True


def test_the_profile_s_redirect_host_is_used_with_its_source_and_the_flag_wins(env):
    assert kt("config", "set", "redirect_host", "localhost", env=env).code == 0
    shown = kt("config", "show", "--json", env=env).json()
    assert shown["redirect_host"] == {"value": "localhost", "source": "config file"}
    proc, progress = start_browser_login(env)
    proc.kill()
    proc.communicate()
    assert progress["redirect_uri"] == f"http://localhost:{progress['port']}/callback"
    proc, progress = start_browser_login(env, "--redirect-host", "127.0.0.1")
    proc.kill()
    proc.communicate()
    assert progress["redirect_uri"] == f"http://127.0.0.1:{progress['port']}/callback"


def test_a_redirect_host_that_is_not_one_is_refused(env):
    refused = kt("config", "set", "redirect_host", "0.0.0.0", "--json", env=env)
    assert refused.code == 2
    assert refused.error()["message"] == (
        'redirect_host must be "127.0.0.1", "[::1]" or "localhost", not \'0.0.0.0\''
    )
    flag = kt("auth", "login", "--browser", "--redirect-host", "example.com", env=env)
    assert flag.code == 2 and "Traceback" not in flag.stderr
    config = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    config.mkdir(mode=0o700, exist_ok=True)
    (config / "config.toml").write_text('[profiles.default]\nredirect_host = "::"\n')
    os.chmod(config / "config.toml", 0o600)
    result = kt("auth", "login", "--browser", "--no-browser", "--json", env=env)
    assert result.code == 2, result.stderr
    message = result.error()["message"]
    assert "config.toml" in message and "redirect_host must be" in message
    assert "Traceback" not in result.stderr


def test_the_two_step_sign_in_listens_on_the_redirect_host_too(env, devserver):
    """--browser --start: the process holding the listener gets the redirect host as well."""
    started = kt(
        "auth", "login", "--browser", "--start", "--redirect-host", "localhost",
        "--client-id", LOCALHOST_CLIENT, "--insecure-storage", "--json", env=env,
    )  # fmt: skip
    assert started.code == 0, started.stderr
    info = started.json()
    link = urlsplit(info["sign_in_url"])
    assert link.hostname == "localhost"
    try:
        to_provider = over("::1", info["sign_in_url"])  # the holder answers over ::1
        back = sign_in_at_the_provider(to_provider.headers["location"])
        assert back.headers["location"].startswith(f"http://localhost:{link.port}/callback?")
        assert over("::1", back.headers["location"]).status_code == 200
        done = kt("auth", "login", "--complete", info["handle"], "--json", env=env, timeout=120)
        assert done.code == 0, done.stderr
        assert done.json()["user"]["email"] == ALICE[0]
    finally:
        kt("auth", "login", "--cancel", info["handle"], env=env)
