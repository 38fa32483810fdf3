"""WWW-Authenticate challenges, read and written by the RFC 9110 grammar (§11.6.1, §11.2, §5.6).

    WWW-Authenticate = #challenge
    challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param       = token BWS "=" BWS ( token / quoted-string )
    token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    quoted-string    = DQUOTE *( qdtext / quoted-pair ) DQUOTE
    quoted-pair      = "\\" ( HTAB / SP / VCHAR / obs-text )

A header may hold several challenges, and a reply several headers (one list, §5.3); empty list
elements are skipped (§5.6.1). Scheme and parameter names compare case-insensitively, so names
are kept lower-cased; a parameter named twice in one challenge is refused (§11.2). Anything the
grammar does not allow raises `MalformedChallenge`, the only exception `parse` raises: a
challenge is acted on (step-up, scope, discovery) only when it reads exactly as sent.

A pure module of the lowest layer: the API client (RFC 9470 step-up, RFC 6750 scope), RFC 9728
discovery and kt-devserver's replies all use this one reading and writing of the grammar.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_TCHAR = "!#$%&'*+\\-.^_`|~0-9A-Za-z"
_TOKEN = re.compile(f"[{_TCHAR}]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_OWS = re.compile(r"[ \t]*")
_SP = re.compile(r" +")
# qdtext and the characters a quoted-pair may escape; obs-text is %x80-FF (a header decoded as
# Latin-1, as HTTP clients do).
_QDTEXT = re.compile(r"[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]+")
_QUOTABLE = re.compile(r"[\t \x21-\x7e\x80-\xff]")
_FULLY_TOKEN = re.compile(f"[{_TCHAR}]+\\Z")
_DIGITS = re.compile(r"[0-9]+\Z")


class MalformedChallenge(ValueError):
    """The header does not follow the RFC 9110 challenge grammar (`where` is the offset)."""

    def __init__(self, why: str, where: int) -> None:
        super().__init__(f"malformed WWW-Authenticate header: {why} at character {where}")
        self.why = why
        self.where = where


@dataclass(frozen=True)
class Challenge:
    """One challenge: its scheme (lower-cased), its auth-params (names lower-cased, values with
    quoting undone) or its token68."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    def param(self, name: str) -> str | None:
        return self.params.get(name.lower())


def parse(header: str | Iterable[str]) -> list[Challenge]:
    """Every challenge of one WWW-Authenticate field value, or of several (in order)."""
    values = [header] if isinstance(header, str) else list(header)
    found: list[Challenge] = []
    for value in values:
        found.extend(_Reader(value).challenges())
    return found


def find(challenges: Iterable[Challenge], scheme: str) -> Challenge | None:
    """The first challenge of `scheme` (case-insensitive), if any."""
    scheme = scheme.lower()
    return next((c for c in challenges if c.scheme == scheme), None)


def challenge(scheme: str, params: Mapping[str, str | int]) -> str:
    """One challenge written by the grammar: `Scheme name="value", …`, each value a
    quoted-string except whole numbers (RFC 9470's `max_age=5`). ValueError for a scheme or
    name that is not a token, or a value no quoted-string can carry (a control character)."""
    if not _FULLY_TOKEN.match(scheme):
        raise ValueError(f"not a token: {scheme!r}")
    parts = []
    for name, value in params.items():
        if not _FULLY_TOKEN.match(name):
            raise ValueError(f"not a token: {name!r}")
        text = str(value)
        parts.append(f"{name}={text if _DIGITS.match(text) else quoted(text)}")
    return f"{scheme} {', '.join(parts)}" if parts else scheme


def quoted(value: str) -> str:
    """`value` as a quoted-string (backslash and double quote escaped)."""
    for ch in value:
        if not _QUOTABLE.match(ch):
            raise ValueError(f"a quoted-string cannot carry {ch!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> MalformedChallenge:
        return MalformedChallenge(why, self.pos)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def match(self, pattern: re.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.pos)
        if not m or not m.group(0):
            return None
        self.pos = m.end()
        return m.group(0)

    def ows(self) -> None:
        self.match(_OWS)

    def separators(self) -> None:
        """OWS and commas: the gaps between list elements, empty elements included."""
        while True:
            self.ows()
            if self.peek() != ",":
                return
            self.pos += 1

    def challenges(self) -> list[Challenge]:
        found: list[Challenge] = []
        self.separators()
        while not self.at_end():
            found.append(self.one_challenge())
            self.ows()
            if self.at_end():
                break
            if self.peek() != ",":
                raise self.fail("expected a comma between challenges")
            self.separators()
        return found

    def one_challenge(self) -> Challenge:
        scheme = self.match(_TOKEN)
        if scheme is None:
            raise self.fail("expected an authentication scheme")
        if self.match(_SP) is None:
            return Challenge(scheme.lower())
        if self.at_end() or self.peek() == ",":
            return Challenge(scheme.lower())
        start = self.pos
        param = self.auth_param()
        if param is None:
            self.pos = start
            token68 = self.match(_TOKEN68)
            if token68 is None:
                raise self.fail("expected auth-params or a token68")
            end = self.pos
            self.ows()
            if not (self.at_end() or self.peek() == ","):
                raise self.fail("unexpected text after a token68")
            self.pos = end
            return Challenge(scheme.lower(), token68=token68)
        params: dict[str, str] = {}
        while param is not None:
            name, value = param
            if name in params:
                raise self.fail(f"parameter {name!r} given twice")
            params[name] = value
            param = self.next_param()
        return Challenge(scheme.lower(), params)

    def next_param(self) -> tuple[str, str] | None:
        """The next auth-param of this challenge, or None (leaving the position before the
        comma) when the list ends or the next element starts another challenge."""
        before = self.pos
        self.ows()
        if self.peek() != ",":
            self.pos = before
            return None
        self.separators()
        start = self.pos
        if self.at_end():
            self.pos = before
            return None
        name = self.match(_TOKEN)
        if name is not None:
            self.ows()
            if self.peek() == "=":
                self.pos = start
                param = self.auth_param()
                if param is None:
                    raise self.fail("expected a token or a quoted-string after '='")
                return param
        self.pos = before  # another challenge begins here
        return None

    def auth_param(self) -> tuple[str, str] | None:
        name = self.match(_TOKEN)
        if name is None:
            return None
        self.ows()
        if self.peek() != "=":
            return None
        self.pos += 1
        self.ows()
        if self.peek() == '"':
            return name.lower(), self.quoted_string()
        value = self.match(_TOKEN)
        if value is None:
            return None
        return name.lower(), value

    def quoted_string(self) -> str:
        self.pos += 1  # the opening DQUOTE
        out: list[str] = []
        while True:
            text = self.match(_QDTEXT)
            if text is not None:
                out.append(text)
            ch = self.peek()
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                self.pos += 1
                escaped = self.peek()
                if not escaped or not _QUOTABLE.match(escaped):
                    raise self.fail("a backslash must escape a visible character")
                out.append(escaped)
                self.pos += 1
                continue
            if not ch:
                raise self.fail("unterminated quoted-string")
            raise self.fail(f"character {ch!r} is not allowed in a quoted-string")
