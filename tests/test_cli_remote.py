"""Signing in with the browser over SSH and in WSL (issue 13 item 3), the real `kt` against
kt-devserver.

Over SSH the browser is on the person's own computer, whose 127.0.0.1 is not this machine's: with a
fixed port kt prints the `ssh -L` command that forwards it, before it waits; without one it says
the listener cannot be reached and offers the device code. In WSL kt opens Windows' browser with
`wslview`, else `cmd.exe /c start`, else `powershell.exe Start-Process` (here: fake executables
on PATH that record their argv) and says which; only the one-time link is on their command line.
"""

from __future__ import annotations

import json
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.fixtures.oauth_client import form_of
from tests.kt_process import ALICE, free_port, kt, start_kt

SSH = {
    "SSH_CONNECTION": "203.0.113.7 50022 198.51.100.4 2222",
    "SSH_TTY": "/dev/pts/3",
    "USER": "alice",
}
# What must never be on a launcher's command line: the authorization request's parameters.
REQUEST_PARAMETERS = ("state=", "nonce=", "code_challenge", "client_id=", "redirect_uri=")


def waiting(env: dict[str, str], *args: str) -> tuple[list[str], dict[str, Any] | None]:
    """`kt auth login --browser ARGS --insecure-storage`, stopped once it waits: what it said on
    stderr up to the sign-in link, and (with --json) its progress line."""
    proc = start_kt("auth", "login", "--browser", "--insecure-storage", *args, env=env)
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("{") and "sign_in_url" in (doc := json.loads(line)):
                return lines, doc
            if line.startswith("  http://"):  # the link: kt waits from here on
                assert proc.poll() is None  # said before waiting, not after
                return lines, None
        raise AssertionError("kt printed no sign-in link: " + "\n".join(lines))
    finally:
        proc.kill()
        proc.communicate()


# --- SSH ---------------------------------------------------------------------------------------


def test_ssh_with_a_fixed_port_prints_the_tunnel_command_before_waiting(env):
    port = free_port()
    said, _ = waiting({**env, **SSH}, "--port", str(port))
    (hint,) = [line.strip() for line in said if "ssh -L" in line]
    assert hint == f"run: ssh -L {port}:127.0.0.1:{port} -p 2222 alice@198.51.100.4"
    text = "\n".join(said)
    assert "On your computer, first" in text
    assert said[-1] == f"  http://127.0.0.1:{port}/" + said[-1].rsplit("/", 1)[1]


def test_ssh_with_the_profile_s_port_and_json_carries_the_command(env):
    port = free_port()
    assert kt("config", "set", "port", str(port), env=env).code == 0
    _, doc = waiting({**env, **SSH}, "--json")
    assert doc is not None and doc["browser_opened"] is False
    assert shlex.split(doc["ssh_tunnel"]) == [
        "ssh", "-L", f"{port}:127.0.0.1:{port}", "-p", "2222", "alice@198.51.100.4",
    ]  # fmt: skip


def test_the_tunnel_command_is_quoted_and_follows_the_redirect_host(env):
    port = free_port()
    odd = {
        **env,
        "SSH_CONNECTION": "2001:db8::7 50022 2001:db8::4 22",
        "USER": "o'brien; rm -rf ~",
    }
    said, _ = waiting(odd, "--port", str(port), "--redirect-host", "[::1]")
    (hint,) = [line.strip() for line in said if "ssh -L" in line]
    assert shlex.split(hint.removeprefix("run: ")) == [
        "ssh", "-L", f"{port}:[::1]:{port}", "o'brien; rm -rf ~@2001:db8::4",
    ]  # fmt: skip


def test_ssh_without_an_address_names_this_machine(env):
    port = free_port()
    tty_only = {**env, "SSH_TTY": "/dev/pts/3", "USER": "alice"}
    said, _ = waiting(tty_only, "--port", str(port))
    (hint,) = [line.strip() for line in said if "ssh -L" in line]
    assert hint == shlex.join(
        ["run:", "ssh", "-L", f"{port}:127.0.0.1:{port}", f"alice@{socket.gethostname()}"]
    )


def test_ssh_without_a_fixed_port_says_the_laptop_cannot_reach_it_and_offers_the_device(env):
    said, _ = waiting({**env, **SSH})
    text = "\n".join(said)
    assert "a browser on\nyour own computer cannot reach" in text
    assert "(run: kt auth login --device)" in text
    assert "--port and forward it with ssh -L" in text
    assert "ssh -L " not in text.replace("with ssh -L (", "")  # no command for a random port


def test_an_ssh_session_whose_browser_opened_here_gets_no_tunnel_talk(env):
    """X forwarding: the browser runs on this machine, so its loopback is kt's."""
    port = free_port()
    forwarded = {**env, **SSH, "DISPLAY": "localhost:10.0", "BROWSER": "true"}
    said, _ = waiting(forwarded, "--port", str(port))
    assert not [line for line in said if "SSH session" in line or "ssh -L" in line]
    assert said[-2].startswith("Opened your browser to sign in.")


# --- WSL ---------------------------------------------------------------------------------------


RECORDER = """#!{python}
import json, os, sys
with open(os.environ["KT_FAKE_LAUNCHES"], "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
"""


@pytest.fixture
def wsl(env, tmp_path) -> dict[str, str]:
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    return {
        **env,
        "WSL_DISTRO_NAME": "Ubuntu",
        "PATH": f"{fake_bin}:{env['PATH']}",
        "KT_FAKE_LAUNCHES": str(tmp_path / "launches.jsonl"),
    }


def fake(wsl: dict[str, str], *names: str) -> None:
    for name in names:
        path = Path(wsl["PATH"].split(":")[0]) / name
        path.write_text(RECORDER.format(python=sys.executable))
        path.chmod(0o755)


def launches(wsl: dict[str, str]) -> list[list[str]]:
    log = Path(wsl["KT_FAKE_LAUNCHES"])
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def no_secret_in(argv: list[str]) -> bool:
    return not any(p in word for word in argv for p in REQUEST_PARAMETERS)


@pytest.mark.parametrize(
    ("present", "used", "before_url"),
    [
        (("wslview", "cmd.exe", "powershell.exe"), "wslview", []),
        (("cmd.exe", "powershell.exe"), "cmd.exe", ["/c", "start", ""]),
        (
            ("powershell.exe",),
            "powershell.exe",
            ["-NoProfile", "-NonInteractive", "-Command", "Start-Process"],
        ),
    ],
)
def test_wsl_opens_the_windows_browser_with_the_first_launcher_found(
    wsl, present, used, before_url
):
    fake(wsl, *present)
    _, doc = waiting(wsl, "--json")
    assert doc is not None
    assert doc["browser_opened"] is True and doc["opened_with"] == used
    (argv,) = launches(wsl)
    assert Path(argv[0]).name == used
    assert argv[1:] == [*before_url, doc["sign_in_url"]]  # the one-time link, nothing else
    assert no_secret_in(argv)


def test_wsl_says_which_launcher_opened_it(wsl):
    fake(wsl, "cmd.exe")
    said, _ = waiting(wsl)
    assert said[-2] == (
        "Opened the Windows browser with cmd.exe to sign in. If it did not open, visit this link"
        " (it works once):"
    )


def test_wsl_without_a_launcher_prints_the_link(wsl):
    _, doc = waiting(wsl, "--json")
    assert doc is not None and doc["browser_opened"] is False and "opened_with" not in doc
    assert launches(wsl) == []


def test_the_launchers_are_not_used_outside_wsl(wsl):
    fake(wsl, "wslview", "cmd.exe", "powershell.exe")
    outside = {k: v for k, v in wsl.items() if k != "WSL_DISTRO_NAME"}
    _, doc = waiting(outside, "--json")
    assert doc is not None and doc["browser_opened"] is False
    assert launches(wsl) == []


def sign_in_at_the_provider(authorize_url: str) -> httpx2.Response:
    """The provider's pages (sign-in, consent), up to its redirect back to kt."""
    with httpx2.Client(timeout=10) as browser:
        page = browser.get(authorize_url)
        for fields in ({"email": ALICE[0], "password": ALICE[1]}, {"decision": "approve"}):
            form = form_of(page)
            page = browser.post(str(page.url.join(form.action)), data={**form.fields, **fields})
        return page


def test_wsl_sign_in_through_the_link_the_launcher_got_completes(wsl):
    fake(wsl, "wslview")
    proc = start_kt("auth", "login", "--browser", "--insecure-storage", "--json", env=wsl)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("{") and "sign_in_url" in line:
                break
        ((_, link),) = launches(wsl)
        to_provider = httpx2.get(link, timeout=10)  # the Windows browser, following the link
        assert to_provider.status_code == 302
        back = sign_in_at_the_provider(to_provider.headers["location"])
        assert httpx2.get(back.headers["location"], timeout=10).status_code == 200
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["user"]["email"] == ALICE[0]


def test_the_tunnel_hint_and_the_launcher_never_meet(wsl):
    """WSL reached over SSH: Windows' browser there is not the person's; the tunnel is."""
    fake(wsl, "wslview")
    port = free_port()
    said, _ = waiting({**wsl, **SSH}, "--port", str(port))
    assert launches(wsl) == []
    assert any("ssh -L" in line for line in said)
