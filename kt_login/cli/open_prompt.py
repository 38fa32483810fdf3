"""'Press Enter to open HOST in your browser' (issue 12, as gh does): on a terminal, a browser
sign-in shows its link first and opens the browser only when the person is ready, so a window
does not jump in front of them unannounced; `--yes` opens at once, and so does anything that is
not a person at a terminal (no prompt without a TTY on stdin and stdout, or with --json)."""

from __future__ import annotations

import os
import select
import signal
import sys
import termios
import time
from urllib.parse import urlsplit

from ..browser import Opener
from ..errors import KtError
from ..text import clean
from .app import Invocation


def provider_host(issuer: str) -> str:
    """What to call the sign-in service: its host (and port, when it names one)."""
    parts = urlsplit(issuer)
    host = parts.hostname or issuer
    if ":" in host:
        host = f"[{host}]"
    return clean(f"{host}:{parts.port}" if parts.port else host)


def can_ask(inv: Invocation) -> bool:
    """A person at a terminal: kt's input and both its outputs are one (POSIX)."""
    if not inv.interactive or sys.platform == "win32":
        return False
    try:
        return all(os.isatty(stream.fileno()) for stream in (sys.stdin, sys.stdout, sys.stderr))
    except (AttributeError, OSError, ValueError):  # a test's streams without a descriptor
        return False


class EnterToOpen:
    """Shows the sign-in link, then waits for Enter before opening the browser on it.

    Ctrl-C interrupts as anywhere (the listener is closed on the way out, nothing is kept);
    the end of input (Ctrl-D) means "do not open": the link stays to be opened by hand, and
    the sign-in waits for it as with --no-browser. Nobody pressing Enter within the sign-in's
    timeout ends it. Reads only up to the end of the line, from the descriptor itself, so what
    comes after (the paste-back prompt) reads the rest."""

    def __init__(self, inv: Invocation, fd: int, *, host: str, timeout: float) -> None:
        self._console, self._fd, self._host, self._timeout = inv.console, fd, host, timeout

    def __call__(self, url: str, opener: Opener, via: str | None) -> None:
        say = self._console.info
        say("The sign-in link (it works once; open it in a browser on this machine):")
        say(f"  {url}")
        if not self._ask():
            say("Not opening a browser: open the link above to sign in.")
            return
        if opener(url):
            say(f"Opened the Windows browser with {via}." if via else "Opened your browser.")
        else:
            say("Could not open a browser: open the link above to sign in.")

    def _ask(self) -> bool:
        # This runs on the listener's event loop, whose own SIGINT handler only cancels its task
        # once the loop gets control back: Ctrl-C must interrupt the wait here and now, from
        # before the question shows. Where SIGINT is ignored (nohup, a background job), it
        # stays ignored.
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
            return self._question()
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return self._question()
        finally:
            signal.signal(signal.SIGINT, previous)

    def _question(self) -> bool:
        err = self._console.err
        err.write(f"Press Enter to open {self._host} in your browser... ")
        err.flush()
        pressed = self._read_enter()
        if not pressed:
            err.write("\n")
        return pressed

    def _read_enter(self) -> bool:
        deadline = time.monotonic() + self._timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._discard_typed_ahead()
                self._console.err.write("\n")
                error = KtError(
                    f"nobody pressed Enter within {int(self._timeout)} s, so kt did not open"
                    " the browser and stopped the sign-in; nothing was kept (run it again, with"
                    " --yes to open the browser at once)"
                )
                error.code = "kt.sign_in_timeout"
                raise error
            if not select.select([self._fd], [], [], remaining)[0]:
                continue
            chunk = os.read(self._fd, 1)  # one byte at a time: nothing past the line is taken
            if not chunk:
                return False  # end of input
            if chunk == b"\n":
                return True

    def _discard_typed_ahead(self) -> None:
        try:
            termios.tcflush(self._fd, termios.TCIFLUSH)
        except termios.error:
            pass
