"""Issue 11, the client side: the real `kt` process against a hostile API or provider on loopback.

Each test performs an attack and asserts the defence: the message, the exit code, that nothing
reached a proxy or was stored, and that kt's memory stayed bounded. `hostile_api.py` is the
hostile Keeptrusts API, `hostile_as.py` the hostile OpenID provider (cases 2, 5, 6, 7, 16, 20, 21;
docs/security.md PX-01, NT-05, NU-01, SH-01, DV-01, LC-07).
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kt_login.text import clean
from tests.kt_process import Result, base_env, kt, password_login
from tests.terminal import Terminal

from .conftest import Box
from .hostile_api import SESSION, HostileAPI, Reply, mfa_required
from .hostile_as import CLIENT_ID, EC_E1, RSA_K1, public

PASSWORD = "hunter2-canary-password"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def api_server() -> Iterator[HostileAPI]:
    server = HostileAPI().start()
    yield server
    server.stop()


@pytest.fixture
def api(api_server: HostileAPI) -> HostileAPI:
    api_server.reset()
    return api_server


@pytest.fixture
def env(tmp_path: Path, api: HostileAPI) -> dict[str, str]:
    return base_env(tmp_path, KEEPTRUSTS_API_URL=api.url)


def login(env: dict[str, str], *extra: str) -> Result:
    return password_login(env, ("eve@hostile.test", PASSWORD), "--insecure-storage", *extra)


def stored(env: dict[str, str]) -> list[str]:
    config = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    if not config.exists():
        return []
    return sorted(str(p.relative_to(config)) for p in config.rglob("*.json"))


def assert_clean_failure(result: Result, code: int, *needles: str) -> None:
    assert result.code == code, (result.code, result.stderr)
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


# --------------------------------------------------------------------------- case 2: proxies


class RecordingProxy:
    """An HTTP proxy that forwards nothing: it records every connection's first bytes, then
    answers 502 (so a CONNECT fails and kt reports a network error)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.seen: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.seen.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    server = RecordingProxy()
    yield server
    server.close()


def proxied(env: dict[str, str], proxy: RecordingProxy, no_proxy: str) -> dict[str, str]:
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    out = {**env, **{n: proxy.url for n in names}, **{n.lower(): proxy.url for n in names}}
    out["NO_PROXY"] = out["no_proxy"] = no_proxy
    return out


@pytest.mark.parametrize("no_proxy", ["", "example.com", "*.invalid,10.0.0.0/8"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_PX_01_loopback_never_goes_through_a_proxy(
    api: HostileAPI, env: dict[str, str], proxy: RecordingProxy, no_proxy: str, host: str
) -> None:
    env = proxied(env, proxy, no_proxy)
    env["KEEPTRUSTS_API_URL"] = api.url.replace("127.0.0.1", host)
    logged_in = login(env, "--debug")
    assert logged_in.code == 0, logged_in.stderr
    whoami = kt("auth", "whoami", "--debug", env=env)
    assert whoami.code == 0, whoami.stderr
    assert proxy.seen == []  # neither the password nor the bearer token reached the proxy
    assert api.calls() == ["POST /v1/auth/login", "GET /v1/auth/whoami"]
    assert "proxy" not in logged_in.stderr + whoami.stderr


def test_PX_01_https_may_use_the_proxy_tls_end_to_end_and_debug_says_so(
    env: dict[str, str], proxy: RecordingProxy
) -> None:
    env = proxied(env, proxy, "")
    env["KEEPTRUSTS_API_URL"] = "https://api.example.test"
    result = login(env, "--debug")
    assert_clean_failure(result, 5, "cannot reach the Keeptrusts API at https://api.example.test")
    assert len(proxy.seen) == 1
    assert proxy.seen[0].startswith(b"CONNECT api.example.test:443 HTTP/1.1\r\n")
    assert PASSWORD.encode() not in proxy.seen[0]  # the proxy only sees the tunnel request
    assert "https://api.example.test is reached through the proxy" in result.stderr
    assert stored(env) == []


def test_PX_01_a_socks_proxy_is_a_clear_error_not_a_crash(
    api: HostileAPI, env: dict[str, str]
) -> None:
    env = {**env, "ALL_PROXY": "socks5://127.0.0.1:1080"}
    result = login(env)
    assert_clean_failure(result, 2, "names a SOCKS proxy", "which kt does not support")
    assert api.requests == [] and stored(env) == []


# --------------------------------------------------------------------------- case 5: unbounded


# `kt`, reporting on exit the high-water mark of its own address space (VmHWM).
# Not the rusage of os.wait4: a child spawned by vfork + exec inherits its parent's peak RSS as
# its ru_maxrss, so that figure was pytest's once the suite's process grew past the limit.
# kt's own `main` (its `entry` leaves by os._exit, so nothing would run after it).
MEASURED = """
import os, sys

def report():
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(os.environ["KT_TEST_PEAK_FILE"], "w") as out:
        out.write(str(kib * 1024))

sys.argv[0] = "kt"
from kt_login.cli import main
try:
    code = main()
finally:
    report()
sys.exit(code)
"""


def kt_measured(*args: str, env: dict[str, str], input: str = "") -> tuple[Result, int]:
    """`kt` as `kt()` runs it, with the peak resident memory of that one process (bytes)."""
    home = Path(env["HOME"])
    out, err, peak = (home / name for name in ("measured.out", "measured.err", "measured.peak"))
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(
            [sys.executable, "-c", MEASURED, *args],
            env={**env, "KT_TEST_PEAK_FILE": str(peak)},
            stdin=subprocess.PIPE, stdout=o, stderr=e, text=True,
        )  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write(input)
        proc.stdin.close()
        proc.wait()
    return Result(proc.returncode, out.read_text(), err.read_text()), int(peak.read_text())


@pytest.mark.parametrize("attack", ["login-reply", "whoami-with-token", "whoami-401-with-session"])
def test_NT_05_a_600_mib_api_reply_is_abandoned_with_bounded_memory(
    api: HostileAPI, env: dict[str, str], attack: str
) -> None:
    endless = 600 * MIB
    if attack == "login-reply":
        api.routes[("POST", "/v1/auth/login")] = Reply(endless=endless)
        args = ["auth", "login", "--email", "e@x.test", "--password-stdin", "--insecure-storage"]
    elif attack == "whoami-with-token":
        api.routes[("GET", "/v1/auth/whoami")] = Reply(endless=endless)
        env = {**env, "KEEPTRUSTS_API_TOKEN": "kt_live_hostile_token"}
        args = ["auth", "whoami"]
    else:  # the self-refreshing session reads a 401's body to decide whether to refresh
        assert login(env).code == 0
        api.routes[("GET", "/v1/auth/whoami")] = Reply(401, endless=endless)
        args = ["auth", "whoami"]
    before = stored(env)
    result, peak = kt_measured(*args, "--json", env=env, input=PASSWORD + "\n")
    assert result.code == 6, result.stderr
    assert "too large" in result.error()["message"]
    assert api.hung_up.wait(10)
    assert api.sent < 64 * MIB, api.sent  # kt hung up after its cap, not after 600 MiB
    assert peak < 100 * MIB, f"peak RSS {peak / MIB:.0f} MiB"
    assert stored(env) == before


# --------------------------------------------------------------------------- case 6: numbers


@pytest.mark.parametrize(
    ("member", "text"),
    [
        ("expires_in", "NaN"),
        ("expires_in", "Infinity"),
        ("expires_in", "-Infinity"),
        ("expires_in", "1e999"),
        ("expires_in", "1e300"),
        ("expires_in", "1" + "0" * 30),
        ("refresh_expires_in", "NaN"),
        ("refresh_expires_in", "1e300"),
    ],
)
def test_NU_01_session_lifetimes_that_are_not_numbers_are_refused(
    api: HostileAPI, env: dict[str, str], member: str, text: str
) -> None:
    body = json.dumps({**SESSION, member: 0}).replace(f'"{member}": 0', f'"{member}": {text}')
    api.routes[("POST", "/v1/auth/login")] = Reply(200, body)
    for mode in ((), ("--json",)):
        result = login(env, *mode)
        assert_clean_failure(result, 6)
        assert "ValueError" not in result.stderr and "OverflowError" not in result.stderr
    assert stored(env) == []


@pytest.mark.parametrize(
    "body",
    [
        '{"user": {"id": NaN}, "scopes": []}',
        '{"user": {"id": "u"}, "mfa_authenticated": Infinity}',
        '{"user": {"id": "u"}, "n": -Infinity}',
        '{"user": {"id": "u"}, "n": 1e400}',
        '{"user": ' * 100_000 + "1" + "}" * 100_000,  # nesting too deep to read
    ],
)
def test_NU_01_whoami_json_with_non_numbers_is_a_clear_error(
    api: HostileAPI, env: dict[str, str], body: str
) -> None:
    api.routes[("GET", "/v1/auth/whoami")] = Reply(200, body)
    env = {**env, "KEEPTRUSTS_API_TOKEN": "kt_live_hostile_token"}
    for mode in ((), ("--json",)):
        result = kt("auth", "whoami", *mode, env=env)
        assert_clean_failure(result, 6, "not a JSON object")
        assert "NaN" not in result.stdout and "Infinity" not in result.stdout


@pytest.mark.parametrize(
    ("member", "value"),
    [("expires_in", float("nan")), ("expires_in", float("inf")), ("expires_in", 10**9)],
)
def test_NU_01_device_code_lifetime_that_is_not_a_number_is_refused(
    box: Box, member: str, value: float
) -> None:
    box.server.behaviour.device_reply[member] = value
    before = box.snapshot()
    result = box.kt(
        "auth", "login", "--device", "--issuer", box.server.issuer,
        "--client-id", CLIENT_ID, "--insecure-storage", "--json",
    )  # fmt: skip
    assert_clean_failure(result, 6)
    message = result.error()["message"]
    assert "expires_in" in message or "not a JSON object" in message  # NaN is not JSON
    assert not [r for r in box.server.requests if r.path == "/token"]  # never polled
    assert box.snapshot() == before


# --------------------------------------------------------------------------- case 7: hints

HOSTILE = [
    "x;touch pwned",
    "$(touch pwned)",
    "${IFS}touch${IFS}pwned",
    "`touch pwned`",
    "a'b\"c",
    "line\ntouch pwned",
    "a b|c&d>e",
    "--api-url=http://evil",
    "\x1b]0;title\x07",
]


def hint_argv(result: Result, json_mode: bool) -> list[str]:
    if json_mode:
        hint = result.error()["hint"]
    else:
        lines = [line for line in result.stderr.splitlines() if line.startswith("run: ")]
        assert len(lines) == 1, result.stderr
        hint = lines[0]
    assert hint.startswith("run: ")
    return shlex.split(hint.removeprefix("run: "))


@pytest.mark.parametrize("json_mode", [False, True], ids=["human", "json"])
@pytest.mark.parametrize("mfa_token", HOSTILE)
def test_SH_01_a_hostile_mfa_token_in_the_login_hint_is_inert(
    api: HostileAPI, env: dict[str, str], mfa_token: str, json_mode: bool
) -> None:
    api.routes[("POST", "/v1/auth/login")] = mfa_required(mfa_token)
    result = login(env, "--profile", "work", "--api-url", api.url, *(["--json"] * json_mode))
    assert result.code == 4, result.stderr
    assert hint_argv(result, json_mode) == [
        "kt", "auth", "mfa", "challenge", "--token", clean(mfa_token),
        "--insecure-storage", "--profile", "work", "--api-url", api.url,
    ]  # fmt: skip
    assert stored(env) == []


@pytest.mark.parametrize("mfa_token", HOSTILE)
def test_SH_01_a_hostile_mfa_token_in_the_step_up_hint_is_inert(
    api: HostileAPI, env: dict[str, str], mfa_token: str
) -> None:
    assert login(env).code == 0
    api.routes[("POST", "/v1/auth/tokens/tok_1/rotate")] = mfa_required(mfa_token, 403)
    result = kt("auth", "token", "rotate", "--id", "tok_1", env=env)
    assert result.code == 4, result.stderr
    assert hint_argv(result, False) == [
        "kt", "auth", "mfa", "challenge", "--token", clean(mfa_token),
    ]  # fmt: skip


def test_SH_01_an_api_url_with_shell_syntax_in_the_login_hint_is_inert(
    api: HostileAPI, env: dict[str, str]
) -> None:
    url = api.url + "/a;touch${IFS}pwned/$(id)/`id`"
    result = kt("auth", "whoami", "--api-url", url, env=env)
    assert result.code == 3, result.stderr
    assert hint_argv(result, False) == ["kt", "auth", "login", "--api-url", url]


# --------------------------------------------------------------------------- case 16: interval


def device_login(box: Box) -> Result:
    return box.kt(
        "auth", "login", "--device", "--issuer", box.server.issuer,
        "--client-id", CLIENT_ID, "--insecure-storage", "--json",
    )  # fmt: skip


def test_DV_01_the_server_s_interval_is_waited_before_the_first_poll(box: Box) -> None:
    box.server.behaviour.device_reply["interval"] = 3
    result = device_login(box)
    assert result.code == 0, result.stderr
    times = [r.at for r in box.server.requests if r.path in ("/device_authorization", "/token")]
    assert len(times) == 2 and times[1] - times[0] >= 3.0, times


def test_DV_01_an_absurd_interval_is_capped_and_kt_says_so(box: Box) -> None:
    box.server.behaviour.device_reply.update(interval=86400, expires_in=7200)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kt_login", "auth", "login", "--device", "--issuer",
         box.server.issuer, "--client-id", CLIENT_ID, "--insecure-storage", "--json"],
        env=box.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    while line and "warning" not in json.loads(line):  # --json: every stderr line is JSON
        line = proc.stderr.readline()
    proc.terminate()
    proc.communicate(timeout=30)
    warning = json.loads(line)["warning"]["message"]  # --json: warnings are JSON lines
    assert warning.startswith("the server asks kt to wait more than 3600 s between polls")
    assert "kt polls every 3600 s" in warning
    assert not [r for r in box.server.requests if r.path == "/token"]


# --------------------------------------------------------------------------- case 20: step-up


def test_LC_07_step_up_challenges_once_however_many_codes_are_typed(
    api: HostileAPI, env: dict[str, str]
) -> None:
    assert login(env).code == 0
    api.routes[("POST", "/v1/auth/tokens/tok_1/rotate")] = mfa_required("mfa_again", 403)
    term = Terminal(["auth", "token", "rotate", "--id", "tok_1"], env)
    term.expect("Authentication code:")
    for code in ("123456", "234567", "345678", "456789"):
        term.type(code)
    assert term.finish() == 4
    assert api.calls().count("POST /v1/auth/mfa/challenge") == 1
    assert api.calls().count("POST /v1/auth/tokens/tok_1/rotate") == 2
    assert term.seen.count("Authentication code:") == 1
    assert "MFA required" in term.seen


# --------------------------------------------------------------------------- case 21: 256 KiB


def padded(doc: dict[str, object], size: int) -> dict[str, object]:
    """`doc` with an extra member making its JSON exactly `size` bytes."""
    base = len(json.dumps({**doc, "x_padding": ""}))
    return {**doc, "x_padding": "a" * (size - base)}


@pytest.mark.parametrize(("size", "accepted"), [(255 * 1024, True), (300 * 1024, False)])
def test_NT_05_metadata_limit_is_256_kib(box: Box, size: int, accepted: bool) -> None:
    doc = padded(box.server.metadata_document(), size)
    box.server.behaviour.metadata_body = json.dumps(doc).encode()
    before = box.snapshot()
    result = box.login()
    if accepted:
        assert result.code == 0, result.stderr
    else:
        assert_clean_failure(result, 6, "provider metadata document is too large")
        assert box.snapshot() == before
        assert not box.opener_calls


@pytest.mark.parametrize(("size", "accepted"), [(255 * 1024, True), (300 * 1024, False)])
def test_NT_05_jwks_limit_is_256_kib(box: Box, size: int, accepted: bool) -> None:
    keys: list[object] = [public(RSA_K1), public(EC_E1)]
    junk = {"kty": "x-padding", "use": "enc", "k": ""}
    base = len(json.dumps({"keys": [*keys, junk]}))
    junk["k"] = "a" * (size - base)
    box.server.behaviour.jwks = [*keys, junk]
    before = box.snapshot()
    result = box.login()
    if accepted:
        assert result.code == 0, result.stderr
    else:
        assert_clean_failure(result, 6, "key set is too large")
        assert box.snapshot() == before
