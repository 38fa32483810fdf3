"""CB-04: Ctrl-C during `receive()` in a real process closes the listener, then interrupts."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
from callback_server import receive

try:
    receive("s" * 22, on_ready=lambda uri: print(uri, flush=True), timeout=60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.stdin.read()  # stay alive until the test has probed the port
    sys.exit(130)
"""


def test_cb04_sigint_closes_the_listener_then_raises_keyboard_interrupt():
    with subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdin is not None
            port = urlsplit(proc.stdout.readline().strip()).port
            assert port
            proc.send_signal(signal.SIGINT)
            assert proc.stdout.readline() == "interrupted\n"
            with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
                probe.settimeout(1)
                probe.connect(("127.0.0.1", port))
            proc.stdin.close()
            assert proc.wait(timeout=10) == 130
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
