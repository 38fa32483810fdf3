"""What reaches the terminal: human text on a TTY-friendly path, or one JSON document for machines.

stdout carries the result (the JSON document under --json, the human answer otherwise, and for
`token create`/`rotate` only the secret); progress, warnings and errors go to stderr. Text that
came from a server is passed through `clean()` first, so a hostile server cannot drive the
terminal (SECURITY.md HY-04).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

# C0/C1 controls and DEL (tab and newline aside): without ESC, CSI and BEL no escape sequence
# can start, so showing each as `\xNN` makes the whole text inert. Bidi overrides go too: they
# can make a terminal show text in an order other than the bytes'.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    n = ord(match.group(0))
    return f"\\x{n:02x}" if n <= 0xFF else f"\\u{n:04x}"


def clean(text: object, *, keep_newlines: bool = False) -> str:
    """Server-supplied text made inert for a terminal: control characters shown as `\\xNN`."""
    s = _CONTROL.sub(_escaped, str(text))
    if not keep_newlines:
        s = s.replace("\n", "\\x0a")
    return s


@dataclass
class Console:
    json_mode: bool = False
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)

    def result(self, document: dict[str, Any], human: Sequence[str] = ()) -> None:
        """The command's answer on stdout: the JSON document, or the human lines."""
        if self.json_mode:
            self.out.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
        else:
            for line in human:
                self.out.write(line + "\n")
        self.out.flush()

    def secret(self, value: str) -> None:
        """The one place a secret is printed: bare, on stdout, so `| cat` gets exactly one line."""
        self.out.write(value + "\n")
        self.out.flush()

    def info(self, line: str) -> None:
        if not self.json_mode:
            self.err.write(line + "\n")

    def warn(self, line: str) -> None:
        """Warnings reach stderr in both modes; JSON consumers read stdout only."""
        self.err.write(f"Warning: {line}\n")
        self.err.flush()

    def error(self, document: dict[str, Any], line: str, hint: str | None = None) -> None:
        if self.json_mode:
            self.err.write(json.dumps(document, sort_keys=True) + "\n")
        else:
            self.err.write(f"Error: {line}\n")
            if hint:
                self.err.write(f"{hint}\n")
        self.err.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    cells = [[clean(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip()] + [fmt.format(*r).rstrip() for r in cells]
