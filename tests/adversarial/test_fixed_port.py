"""Exact redirect matching and the fixed port (issue 10 case 10), through the real `kt`.

Some providers accept only the exact redirect URIs registered with them, so the person signs in
on a fixed port: `--port N`, or `port = N` in the profile. Signing in again on it at once must
work although the last sign-in's connection is in TIME-WAIT; a port another program holds is a
clear error and kt never moves to another port; when no callback arrives, the message names the
redirect URI to register and the port to use, and its hint works as printed.

The hostile provider (honest here) answers /authorize with a 302 straight to kt's listener, and
`BROWSER` is the recording stand-in that follows kt's link (tests/adversarial/browser.py).
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import socket
from urllib.parse import urlsplit

import pytest

from tests.kt_process import free_port, leave_in_time_wait

from .conftest import Box


def redirect_ports(box: Box) -> list[int | None]:
    return [urlsplit(c.query["redirect_uri"]).port for c in box.server.calls("GET", "/authorize")]


def write_config(box: Box, text: str) -> None:
    box.config.mkdir(mode=0o700, exist_ok=True)
    path = box.config / "config.toml"
    path.write_text(text)
    os.chmod(path, 0o600)


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's /proc/net/tcp")
def test_a_fixed_port_signs_in_again_at_once_despite_time_wait(box: Box) -> None:
    port = free_port()
    first = box.login("--port", str(port))
    assert first.code == 0, first.stderr
    # kt's listener closes the browser's connection first, which usually leaves it in TIME-WAIT;
    # whether the fake browser's close comes first depends on timing, so make sure of it.
    leave_in_time_wait(port)
    with socket.socket() as plain, pytest.raises(OSError) as caught:
        plain.bind(("127.0.0.1", port))
    assert caught.value.errno == errno.EADDRINUSE  # what failed before: "port … already in use"
    again = box.login("--port", str(port))
    assert again.code == 0, again.stderr
    assert again.json()["logged_in"] is True
    assert redirect_ports(box) == [port, port]


def test_the_profile_s_port_is_used_and_port_wins(box: Box) -> None:
    port, other = free_port(), free_port()
    write_config(box, f"[profiles.default]\nport = {port}\n")
    shown = box.kt("config", "show", "--json").json()
    assert shown["port"] == {"value": str(port), "source": "config file"}
    assert box.login().code == 0
    assert box.login("--port", str(other)).code == 0
    assert redirect_ports(box) == [port, other]
    shown = box.kt("config", "show", "--json").json()
    assert shown["port"] == {"value": str(port), "source": "config file"}


def test_a_port_set_with_kt_config_set_is_used(box: Box) -> None:
    port = free_port()
    assert box.kt("config", "set", "port", str(port)).code == 0
    assert box.login().code == 0
    assert redirect_ports(box) == [port]
    refused = box.kt("config", "set", "port", "70000", "--json")
    assert refused.code == 2 and "port must be a number" in refused.error()["message"]


@pytest.mark.parametrize("value", ['"http"', "-1", "65536", "true", "1.5"])
def test_a_port_in_the_config_that_is_not_a_port_is_refused(box: Box, value: str) -> None:
    write_config(box, f"[profiles.default]\nport = {value}\n")
    before = box.snapshot()
    result = box.login()
    assert result.code == 2, result.stderr
    message = result.error()["message"]
    assert "config.toml" in message and "port must be a number from 0 to 65535" in message
    assert not box.server.requests and not box.opener_calls
    assert box.snapshot() == before


@pytest.mark.parametrize("where", ["flag", "config"])
def test_a_taken_fixed_port_is_an_error_and_kt_never_moves(box: Box, where: str) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        if where == "config":
            write_config(box, f"[profiles.default]\nport = {port}\n")
        before = box.snapshot()
        result = box.login(*(["--port", str(port)] if where == "flag" else []))
    assert result.code == 1, result.stderr
    error = result.error()
    assert error["code"] == "kt.port_in_use"
    assert f"port {port} on 127.0.0.1 is in use by another program" in error["message"]
    assert "never moves to another port" in error["message"]
    assert "--port 0 takes any free port" in error["hint"]
    assert "Traceback" not in result.stderr
    assert not box.server.calls("GET", "/authorize") and not box.opener_calls
    assert box.snapshot() == before


def test_no_callback_names_the_redirect_uri_and_the_port_and_the_hint_works(box: Box) -> None:
    """A provider that refuses the redirect address shows its own page and never redirects:
    here the browser never comes back (a launcher that opens nothing)."""
    launcher = box.env["BROWSER"]
    box.env["BROWSER"] = "true"
    before = box.snapshot()
    result = box.login("--timeout", "10")
    assert result.code == 1, result.stderr
    assert not box.server.calls("GET", "/authorize")  # the browser never went there
    (shown,) = [doc for doc in map(json.loads, result.stderr.splitlines()) if "port" in doc]
    port = shown["port"]  # the port kt listened on (the progress line of --json)
    error = result.error()
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    assert error["code"] == "kt.sign_in_timeout"
    assert "no sign-in arrived within 10 s (was the browser tab closed?)" in error["message"]
    assert "shows its own error page about the redirect address" in error["message"]
    assert f"register {redirect_uri} with it and sign in with --port {port}" in error["message"]
    assert f"port = {port}" in error["message"]
    assert box.snapshot() == before

    # The hint, run as printed (with a browser that comes back), signs in on that port.
    assert error["hint"].startswith("run: kt auth login --browser --port ")
    argv = shlex.split(error["hint"].removeprefix("run: "))
    assert argv[argv.index("--port") + 1] == str(port)
    box.env["BROWSER"] = launcher
    again = box.kt(*argv[1:], "--json")
    assert again.code == 0, again.stderr
    assert redirect_ports(box)[-1] == port
