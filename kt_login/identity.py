"""Who a sign-in or a session names, as shown to people: one rule for every place kt names them.

A provider that grants only `openid` sends no `email`; the person is then named by the first of
`email`, `preferred_username`, `name`, `sub` that the provider gave (issue 10, case 1), cleaned
for the terminal (HY-04).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .text import clean

if TYPE_CHECKING:
    from .session import Session

NAME_CLAIMS = ("email", "preferred_username", "name", "sub")
UNKNOWN = "?"


def display_name(*claim_sets: Mapping[str, object]) -> str:
    """The first of NAME_CLAIMS that any of `claim_sets` carries as non-blank text (every set is
    asked for `email` before any is asked for `preferred_username`), cleaned; "?" when none."""
    for claim in NAME_CLAIMS:
        for claims in claim_sets:
            value = claims.get(claim)
            if isinstance(value, str) and value.strip():
                return clean(value.strip())
    return UNKNOWN


def session_name(session: Session) -> str:
    """The display name of a stored session's identity."""
    return display_name(
        {
            "email": session.user_email,
            "name": session.display_name,
            "sub": session.subject or session.user_id,
        }
    )


def actor_name(act: object) -> str | None:
    """Who acts for the user, from an RFC 8693 §4.1 `act` object ({"sub": "agent:deploy-bot"}),
    as shown to people ("agent deploy-bot"), cleaned; None when there is no actor."""
    sub = act.get("sub") if isinstance(act, Mapping) else None
    if not isinstance(sub, str) or not sub.strip():
        return None
    kind, sep, name = sub.strip().partition(":")
    return clean(f"{kind} {name}" if sep and kind and name else sub.strip())
