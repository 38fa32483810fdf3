"""What reaches the terminal: human text on a TTY-friendly path, or one JSON document for machines.

stdout carries the result (the JSON document under --json, the human answer otherwise, and for
`token create`/`rotate` only the secret); progress, warnings and errors go to stderr. Text that
came from a server is passed through `text.clean()` first, so a hostile server cannot drive the
terminal (SECURITY.md HY-04).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .text import clean


def columns(stream: IO[str]) -> int:
    """The width of the terminal `stream` writes to (its own size, then $COLUMNS, then 80)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        pass
    try:  # shutil.get_terminal_size's rule, without importing shutil (~3 ms of `kt --help`)
        return int(os.environ.get("COLUMNS", "")) or 80
    except ValueError:
        return 80


def help_width() -> int:
    """The width click formats --help to: its own rule (the terminal, at most 80, less 2, at
    least 50), computed here so that click does not import shutil to find the terminal."""
    return max(min(columns(sys.stdout), 80) - 2, 50)


@dataclass
class Console:
    json_mode: bool = False
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    # A status line (the device countdown) is on the terminal, to be cleared before other output.
    _status: bool = field(default=False, init=False, repr=False)

    def status(self, variants: Sequence[str]) -> None:
        """Rewrite the one-line status on stderr with the longest of `variants` that fits the
        terminal's width, so it never wraps (a wrapped line cannot be rewritten in place)."""
        width = columns(self.err) - 1  # the last column would wrap at once on some terminals
        line = next((v for v in variants if len(v) <= width), variants[-1][:width])
        self.err.write(f"\r\x1b[K{line}")
        self.err.flush()
        self._status = True

    def clear_status(self) -> None:
        if self._status:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self._status = False

    def result(self, document: dict[str, Any], human: Sequence[str] = ()) -> None:
        """The command's answer on stdout: the JSON document, or the human lines."""
        self.clear_status()
        if self.json_mode:
            self.out.write(_dumps(document, indent=2, sort_keys=True) + "\n")
        else:
            for line in human:
                self.out.write(line + "\n")
        self.out.flush()

    def width(self) -> int | None:
        """The terminal's width when stdout is one (what a table must fit), else None."""
        isatty = getattr(self.out, "isatty", None)
        if not (isatty and isatty()):
            return None
        return columns(self.out)

    def secret(self, value: str) -> None:
        """The one place a secret is printed: bare, on stdout, so `| cat` gets exactly one line."""
        self.out.write(value + "\n")
        self.out.flush()

    def info(self, line: str) -> None:
        if not self.json_mode:
            self.clear_status()
            self.err.write(line + "\n")

    def progress(self, document: dict[str, Any]) -> None:
        """What a --json caller needs while the command still runs (a sign-in URL, a device
        code): one JSON line on stderr, as the result is on stdout only at the end."""
        if self.json_mode:
            self.clear_status()
            self.err.write(_dumps(document, sort_keys=True) + "\n")
            self.err.flush()

    def warn(self, line: str, *, code: str = "kt.warning") -> None:
        """Warnings reach stderr in both modes, as one JSON line with --json
        (`{"warning": {"code", "message"}}`); JSON consumers read the result on stdout only."""
        if self.json_mode:
            self.progress({"warning": {"code": code, "message": line}})
            return
        self.clear_status()
        self.err.write(f"Warning: {line}\n")
        self.err.flush()

    def error(self, document: dict[str, Any], line: str, hint: str | None = None) -> None:
        self.clear_status()
        if self.json_mode:
            self.err.write(_dumps(document, sort_keys=True) + "\n")
        else:
            self.err.write(f"Error: {line}\n")
            if hint:
                self.err.write(f"{hint}\n")
        self.err.flush()


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    drop: Sequence[str] = (),
    shrink: Sequence[str] = (),
) -> list[str]:
    """Rows under headers, columns two spaces apart. With a `width`, a table wider than it
    loses the columns named in `drop` (in that order) and then cuts the cells of the `shrink`
    columns (with …) until it fits or they are down to their header's width."""
    cells = [[clean(c) for c in row] for row in rows]
    shown = list(range(len(headers)))

    def natural(i: int) -> int:
        return max([len(headers[i])] + [len(r[i]) for r in cells])

    widths = {i: natural(i) for i in shown}

    def total() -> int:
        return sum(widths[i] for i in shown) + 2 * (len(shown) - 1)

    if width is not None:
        for name in drop:
            if total() <= width:
                break
            shown.remove(headers.index(name))
        for name in shrink:
            i = headers.index(name)
            if i in shown and total() > width:
                widths[i] = max(len(headers[i]), widths[i] - (total() - width))

    def fit(text: str, w: int) -> str:
        return text if len(text) <= w else text[: max(w - 1, 0)] + "…"

    def line(values: Sequence[str]) -> str:
        return "  ".join(f"{fit(values[i], widths[i]):<{widths[i]}}" for i in shown).rstrip()

    return [line(headers)] + [line(r) for r in cells]


def _dumps(document: Any, **options: Any) -> str:
    import json  # imported on the --json path only, so `kt --help` does not pay for it

    return json.dumps(document, **options)
