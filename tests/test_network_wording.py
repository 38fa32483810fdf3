"""One wording for a failed exchange on every path (issue 12, defect 8): `cannot reach THE
SERVER at URL (REASON)`, the reason in words — connection refused, timed out, name not found,
TLS — never an exception's class name, and the same hint for the same reason whichever part of
kt made the request. Refused and TLS through the real `kt` against real loopback servers (a
closed port; a TLS listener with a self-signed certificate), timed out against a listener that
never answers, name not found through httpx2.MockTransport raising what the resolver raises."""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from kt_login.api import ApiClient
from kt_login.cli import main
from kt_login.cli.app import App
from kt_login.errors import NetworkError
from kt_login.flows import adrive, drive
from kt_login.flows.discovery import discover
from kt_login.store import FileStore
from tests.kt_process import ALICE, Result, base_env, kt, self_signed_certificate
from tests.sample_sessions import make_session

# An exception's class name in a message: ConnectError, ReadTimeout, SSLError …
CLASS_NAME = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:Error|Exception|Timeout)\b")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """Accepts connections (the kernel completes them) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def tls_listener(tmp_path: Path) -> Iterator[str]:
    """A loopback TLS server whose certificate is self-signed (trusted by nobody)."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    with context.wrap_socket(conn, server_side=True):
                        pass
                except (OSError, ssl.SSLError):
                    pass  # the client refuses the certificate: that is the point

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    server.close()
    thread.join(timeout=5)


def stored_session_env(tmp_path: Path, api_url: str) -> dict[str, str]:
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=api_url)
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text('credential_store = "file"\n')
    FileStore(cfg).save("default", make_session(api_url=api_url))
    return env


def every_path(tmp_path: Path, url: str) -> dict[str, Result]:
    """A failed exchange with `url` from each part of kt: password login, browser and device
    sign-in (discovery at the issuer), an API call with an API token, and logout."""
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=url)
    return {
        "password login": kt(
            "auth", "login", "--email", ALICE[0], "--password-stdin", "--insecure-storage",
            env=env, input=ALICE[1] + "\n",
        ),
        "browser login": kt(
            "auth", "login", "--browser", "--no-browser", "--insecure-storage", env=env
        ),
        "device login": kt("auth", "login", "--device", "--insecure-storage", env=env),
        "whoami (API token)": kt(
            "auth", "whoami", env=dict(env, KEEPTRUSTS_API_TOKEN="kt_live_CANARY")
        ),
        "logout": kt("auth", "logout", env=stored_session_env(tmp_path / "logout", url)),
    }  # fmt: skip


def the_error(result: Result) -> tuple[str, str]:
    """(the error line, the hint line) of a failed human-mode command."""
    lines = result.stderr.strip().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("Error: "))
    return lines[index], lines[index + 1] if index + 1 < len(lines) else ""


def assert_one_wording(results: dict[str, Result], url: str, reason: str) -> None:
    hints = set()
    for path, result in results.items():
        assert result.code == 5, (path, result.stderr)
        error, hint = the_error(result)
        assert re.search(rf"cannot reach the [A-Za-z ]+ at {re.escape(url)} \({reason}", error), (
            path,
            error,
        )
        assert not CLASS_NAME.search(result.stderr), (path, result.stderr)
        assert "Traceback" not in result.stderr
        if path != "logout":  # which says what the failure means for the session instead
            hints.add(hint)
    assert len(hints) == 1, hints  # the same advice for the same failure


def test_a_refused_connection_reads_the_same_on_every_path(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    assert_one_wording(every_path(tmp_path, url), url, "connection refused")


def test_an_untrusted_tls_certificate_reads_the_same_on_every_path(tmp_path, tls_listener):
    results = every_path(tmp_path, tls_listener)
    assert_one_wording(
        results, tls_listener, "TLS certificate not trusted: self-signed certificate"
    )


@pytest.mark.parametrize("client", ["sync", "async"])
async def test_a_listener_that_never_answers_is_timed_out(silent_listener, client):
    timeout = httpx2.Timeout(0.5)
    if client == "sync":
        with httpx2.Client(timeout=timeout) as http:
            with pytest.raises(NetworkError) as from_api:
                ApiClient(silent_listener, http).request("GET", "/v1/auth/whoami")
            with pytest.raises(NetworkError) as from_flow:
                drive(discover(silent_listener), http)
        assert from_api.value.message == (
            f"cannot reach the Keeptrusts API at {silent_listener} (timed out)"
        )
        assert from_api.value.hint == from_flow.value.hint
    else:
        async with httpx2.AsyncClient(timeout=timeout) as http:
            with pytest.raises(NetworkError) as from_flow:
                await adrive(discover(silent_listener), http)
    assert from_flow.value.message == (
        f"cannot reach the identity provider at {silent_listener} (timed out)"
    )
    assert from_flow.value.exit_code == 5 and "try again" in (from_flow.value.hint or "")


def test_a_name_that_does_not_resolve_is_name_not_found(tmp_path, capsys):
    def unresolvable(request: httpx2.Request) -> httpx2.Response:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx2.ConnectError(
                "[Errno -2] Name or service not known", request=request
            ) from exc

    url = "https://api.nowhere.example"
    app = App(
        env={"KEEPTRUSTS_CONFIG_DIR": str(tmp_path), "KEEPTRUSTS_API_URL": url,
             "KEEPTRUSTS_API_TOKEN": "kt_live_CANARY"},
        transport=httpx2.MockTransport(unresolvable),
    )  # fmt: skip
    assert main(["auth", "whoami"], obj=app) == 5
    err = capsys.readouterr().err
    assert f"Error: cannot reach the Keeptrusts API at {url} (name not found)" in err
    assert "check the host name" in err and not CLASS_NAME.search(err)
    app.env = {**app.env, "KEEPTRUSTS_API_TOKEN": ""}
    assert main(["auth", "login", "--device", "--insecure-storage"], obj=app) == 5
    err = capsys.readouterr().err
    assert f"cannot reach the identity provider at {url} (name not found)" in err
