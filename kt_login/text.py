"""Server-supplied text made inert for a terminal (SECURITY.md HY-04).

The lowest layer: flows, the API client and the presentation code all clean text with `clean()`,
so none of them needs to import the others.
"""

from __future__ import annotations

import os
import re
import shlex

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


def run_hint(*words: str | os.PathLike[str]) -> str:
    """`run: <the command>`, the one way a command to paste is written (SECURITY.md SH-01): each
    word made inert (`clean`) and shell-quoted, so a value from a server, a flag, a URL or a path
    stays one word and `shlex.split` gives back exactly the words."""
    return "run: " + shell_words(*words)


def shell_words(*words: str | os.PathLike[str]) -> str:
    """The command of `run_hint` without its `run: ` (for a JSON field that holds one)."""
    return shlex.join(clean(os.fspath(word)) for word in words)
