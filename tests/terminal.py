"""`kt` on a pseudo-terminal, for tests where a person is at the terminal: what it writes is read
back, answers are typed in, and the terminal's size is set like a real window's."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

DEADLINE = 30.0


class Terminal:
    """`kt ARGS` on a pseudo-terminal `columns` wide; stdin, stdout and stderr all on it."""

    def __init__(self, args, env, *, columns: int = 80, rows: int = 24):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kt_login", *args],
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, times: int = 1) -> str:
        """Read until `text` has appeared `times` times (or fail after DEADLINE).

        Answer only after the prompt is shown: getpass flushes input typed ahead of it."""
        end = time.monotonic() + DEADLINE
        while self.seen.count(text) < times:
            remaining = end - time.monotonic()
            assert remaining > 0, f"never saw {text!r}; got {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"kt exited before {text!r}; got {self.seen!r}"
                self.seen += chunk.decode(errors="replace")
        return self.seen

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def finish(self) -> int:
        code = self.proc.wait(timeout=DEADLINE)
        try:
            while chunk := os.read(self.master, 4096):
                self.seen += chunk.decode(errors="replace")
        except OSError:
            pass
        os.close(self.master)
        return code
