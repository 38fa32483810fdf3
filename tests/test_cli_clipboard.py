"""`kt auth login --device --clipboard` (issue 12): the user code — and only it — copied with
OSC 52 when kt's output is a terminal, and with the platform's tool where one reaches the
person's clipboard; kt says how, or why not. The real `kt` against kt-devserver (a device code
that expires in 3 s, so each sign-in ends by itself with exit 3), on a pseudo-terminal for OSC
52 and with a stand-in `xclip` on PATH for the tool."""

from __future__ import annotations

import base64
import json
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

from kt_login.clipboard import Tool, copy_with, osc52, platform_tool
from tests.adversarial.hostile_as import HostileAS
from tests.kt_process import base_env, kt
from tests.terminal import Terminal

CODE_LINE = re.compile(r"enter the code:\s+(\S+)")
OSC52 = re.compile(r"\x1b\]52;c;([A-Za-z0-9+/=]*)\x07")
OPENER = Path(__file__).resolve().parent / "adversarial" / "browser.py"
CAT = shutil.which("cat")  # the stand-in tools run with only their own directory on PATH


@pytest.fixture
def server(devserver_factory):
    return devserver_factory("--device-code-ttl", "3", "--device-interval", "1")


@pytest.fixture
def env(tmp_path: Path, server) -> dict[str, str]:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    # no display and no clipboard tool on PATH (kt itself runs as sys.executable -m kt_login)
    return base_env(tmp_path, KEEPTRUSTS_API_URL=server.url, PATH=str(empty))


def fake_tool(directory: Path, name: str) -> Path:
    """A stand-in clipboard tool: what it got on stdin, its arguments and whether it saw the API
    token, each in a file beside it."""
    directory.mkdir(exist_ok=True)
    tool = directory / name
    tool.write_text(
        "#!/bin/sh\n"
        f'printf "%s" "$*" > "{directory}/argv"\n'
        f'printf "%s" "${{KEEPTRUSTS_API_TOKEN:-none}}" > "{directory}/token"\n'
        f'{CAT} > "{directory}/stdin"\n'
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return directory


def device_login(*extra: str) -> list[str]:
    return ["auth", "login", "--device", "--no-qr", "--insecure-storage", *extra]


def test_osc52_on_a_terminal_carries_the_user_code_only(env):
    term = Terminal(device_login("--clipboard"), env, columns=200)
    assert term.finish() == 3, term.seen  # the code expired: nobody approved it
    code = CODE_LINE.search(term.seen)
    assert code, term.seen
    sequences = OSC52.findall(term.seen)
    assert [base64.b64decode(s).decode() for s in sequences] == [code[1]]
    assert "Sent the code to your terminal's clipboard with OSC 52" in term.seen


def test_without_clipboard_nothing_is_copied(env):
    term = Terminal(device_login(), env, columns=200)
    assert term.finish() == 3, term.seen
    assert "\x1b]52" not in term.seen and "clipboard" not in term.seen


def test_the_platform_tool_gets_the_code_on_stdin(env, tmp_path):
    tools = fake_tool(tmp_path / "bin", "xclip")
    result = kt(*device_login("--clipboard"), env={**env, "PATH": str(tools), "DISPLAY": ":0"})
    assert result.code == 3, result.stderr
    code = CODE_LINE.search(result.stderr)
    assert code, result.stderr
    assert (tools / "stdin").read_text() == code[1]  # the user code, nothing more
    assert (tools / "argv").read_text() == "-selection clipboard"  # never the code in argv
    assert "Copied the code to the clipboard with xclip." in result.stderr
    assert "\x1b]52" not in result.stdout + result.stderr  # output not a terminal: no OSC 52


def test_json_says_how(env, tmp_path):
    tools = fake_tool(tmp_path / "bin", "wl-copy")
    result = kt(
        *device_login("--clipboard", "--json"),
        env={**env, "PATH": str(tools), "WAYLAND_DISPLAY": "wayland-0"},
    )
    assert result.code == 3, result.stderr
    progress = [json.loads(line) for line in result.stderr.splitlines() if "user_code" in line]
    assert len(progress) == 1, result.stderr
    assert progress[0]["clipboard"] == {
        "copied": True,
        "how": ["wl-copy"],
        "why_not": ["kt's output is not a terminal (for OSC 52)"],
    }
    assert (tools / "stdin").read_text() == progress[0]["user_code"]
    assert (tools / "token").read_text() == "none"


def test_no_way_to_copy_is_said_and_the_sign_in_goes_on(env):
    result = kt(*device_login("--clipboard"), env=env)
    assert result.code == 3, result.stderr
    assert (
        "Could not copy the code to the clipboard: kt's output is not a terminal (for OSC 52);"
        " no clipboard tool here reaches your clipboard (pbcopy, wl-copy, xclip, clip.exe)."
    ) in result.stderr
    assert CODE_LINE.search(result.stderr)


def test_the_profile_setting_copies_without_the_flag(env, tmp_path):
    tools = fake_tool(tmp_path / "bin", "xclip")
    with_tool = {**env, "PATH": str(tools), "DISPLAY": ":0"}
    bad = kt("config", "set", "clipboard", "yes", env=with_tool)
    assert bad.code == 2 and 'clipboard must be "true" or "false"' in bad.stderr
    assert kt("config", "set", "clipboard", "true", env=with_tool).code == 0
    result = kt(*device_login(), env=with_tool)
    assert result.code == 3, result.stderr
    assert "Copied the code to the clipboard with xclip." in result.stderr
    # a TOML boolean in config.toml reads the same
    config = Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "config.toml"
    config.write_text("[profiles.default]\nclipboard = false\n")
    (tools / "stdin").unlink()
    assert kt(*device_login(), env=with_tool).code == 3
    assert not (tools / "stdin").exists()


def test_remote_copies_the_device_code_it_shows_beside_the_links(env):
    """--remote (what kt also chooses over SSH on a terminal) shows a device code among its
    ways in: --clipboard copies that one, as over SSH it is the code to type elsewhere."""
    term = Terminal(
        ["auth", "login", "--remote", "--clipboard", "--no-qr", "--insecure-storage"],
        env,
        columns=400,
    )
    try:
        seen = term.expect("Paste here and press Enter: ")
    finally:
        term.proc.kill()
        term.finish()
    code = CODE_LINE.search(seen)
    assert code, seen
    assert [base64.b64decode(s).decode() for s in OSC52.findall(seen)] == [code[1]]
    assert "Sent the code to your terminal's clipboard with OSC 52" in seen


@pytest.mark.parametrize(
    "method",
    [
        ["--browser"],
        ["--email", "a@b.c"],
        ["--device", "--start"],
        ["--with-token"],
        ["--federated"],
    ],
)
def test_clipboard_with_another_method_is_a_usage_error(env, method):
    result = kt("auth", "login", *method, "--clipboard", env=env)
    assert result.code == 2, result.stderr
    assert "--clipboard copies the code of a device sign-in" in result.stderr


# --- which tool reaches the person's clipboard (kt_login.clipboard) ------------------------


def test_osc52_is_the_base64_of_the_text():
    assert osc52("WDJB-MJHT") == "\x1b]52;c;V0RKQi1NSkhU\x07"


def test_the_platform_tool(tmp_path):
    bin_dir = tmp_path / "bin"
    for name in ("pbcopy", "wl-copy", "xclip", "clip.exe"):
        fake_tool(bin_dir, name)
    path = {"PATH": str(bin_dir)}
    ssh = {"SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22"}

    def name(env: dict[str, str], platform: str) -> str | None:
        tool = platform_tool(env, platform)
        return tool.name if isinstance(tool, Tool) else None

    assert name(path, "darwin") == "pbcopy"
    assert name({**path, **ssh}, "darwin") is None  # the server's clipboard, not yours
    assert name(path, "win32") == "clip.exe"
    assert name({**path, "WAYLAND_DISPLAY": "w-0", "DISPLAY": ":0"}, "linux") == "wl-copy"
    assert name({**path, "DISPLAY": ":0"}, "linux") == "xclip"
    assert name({**path, **ssh, "DISPLAY": "localhost:10.0"}, "linux") == "xclip"  # forwarded
    assert name({**path, "WSL_DISTRO_NAME": "Ubuntu"}, "linux") == "clip.exe"
    assert name({**path, **ssh, "WSL_DISTRO_NAME": "Ubuntu"}, "linux") is None
    assert name(path, "linux") is None  # no display, not WSL
    assert name({"PATH": str(tmp_path), "DISPLAY": ":0"}, "linux") is None  # none installed


def test_a_failing_tool_is_said(tmp_path):
    failing = tmp_path / "xclip"
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o700)
    assert copy_with(Tool("xclip", [str(failing)]), "WDJB-MJHT", {}) == (
        "xclip failed (exit status 1)"
    )
    assert copy_with(Tool("xclip", [str(tmp_path / "gone")]), "WDJB-MJHT", {}) == (
        "xclip could not be run (No such file or directory)"
    )


def test_when_kt_chooses_the_browser_it_says_there_is_no_code_to_copy(tmp_path):
    issuer = HostileAS().start()
    try:
        result = kt(
            "auth", "login", "--issuer", issuer.issuer, "--client-id", issuer.client_id,
            "--clipboard", "--insecure-storage",
            env=base_env(
                tmp_path,
                KEEPTRUSTS_API_URL="https://api.invalid",
                BROWSER=f"{sys.executable} {OPENER} %s",
                KT_ADV_OPENER_LOG=str(tmp_path / "opened.log"),
            ),
        )  # fmt: skip
    finally:
        issuer.stop()
    assert result.code == 0, result.stderr
    assert "(--clipboard: a browser sign-in has no code to copy.)" in result.stderr
    assert "\x1b]52" not in result.stdout + result.stderr
