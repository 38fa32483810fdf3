"""Where the shipped Jinja2 pages live.

In the repository they are in the top-level `templates/`; the wheel carries them as
`kt_login/templates/` (pyproject's force-include). Both the callback server and kt-devserver load
their pages from here, so a wheel without them fails loudly instead of serving nothing.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent / "templates"
_SOURCE_TREE = Path(__file__).resolve().parent.parent / "templates"


def templates_dir() -> Path:
    for candidate in (_PACKAGED, _SOURCE_TREE):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"kt-login's page templates are missing (looked in {_PACKAGED})")
