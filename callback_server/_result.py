"""What a callback means: the result type, the errors and the query judgement (no I/O)."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

# RFC 6749 §3.1: response parameters MUST NOT be included more than once (EH-01).
_SINGLE_VALUED = frozenset({"code", "state", "iss", "error", "error_description", "error_uri"})
_MAX_FIELDS = 64
_MAX_PASTE = 8190  # like a request line: authorization codes fit easily
# A code and its state as a provider's "copy this code" page shows them: CODE#STATE or CODE STATE.
_PAIR = re.compile(r"([A-Za-z0-9._~+/=-]+)(?:#|\s+)([A-Za-z0-9._~+/=-]+)")
_BARE = re.compile(r"[A-Za-z0-9._~+/=-]+")


class CallbackError(Exception):
    """The callback could not be received (bind failure, listener closed, rejected URL...)."""


class CallbackTimeout(CallbackError):
    """No valid callback arrived within the timeout."""


class PortInUse(CallbackError):
    """The fixed port asked for is taken by another listener (the server never picks another)."""

    def __init__(self, message: str, *, host: str, port: int) -> None:
        super().__init__(message)
        self.host, self.port = host, port


class NotThisRedirect(CallbackError):
    """A pasted address that is not the redirect address it was checked against (it may be
    another pending request's, when a caller waits on more than one)."""


class LinkReused(CallbackError):
    """The one-time sign-in link was fetched a second time: someone else may hold the
    authorization request, so the wait was abandoned."""


@dataclass(frozen=True)
class CallbackResult:
    """The authorization response that carried the right state.

    Exactly one of `code` and `error` is set. `iss` (RFC 9207) is passed on as received: the caller
    knows the issuer and compares it. `error_description` is raw text from the query: sanitise it
    before printing.
    """

    code: str | None
    state: str
    iss: str | None
    error: str | None
    error_description: str | None

    def __repr__(self) -> str:
        code = None if self.code is None else "***"
        return (
            f"CallbackResult(code={code!r}, state='***', iss={self.iss!r}, "
            f"error={self.error!r}, error_description={self.error_description!r})"
        )


def judge(raw_query: str, state: str) -> CallbackResult | None:
    """The result carried by a raw (still percent-encoded) query string, or None if it is not one.

    None when: the query does not decode as UTF-8, a response parameter appears twice, the state
    is missing or wrong, or there is not exactly one of `code` and `error`. Others are ignored.
    """
    try:
        pairs = parse_qsl(
            raw_query, keep_blank_values=True, errors="strict", max_num_fields=_MAX_FIELDS
        )
    except ValueError:  # includes UnicodeDecodeError and "too many fields"
        return None
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in _SINGLE_VALUED:
            if key in values:
                return None
            values[key] = value
    received = values.get("state")
    # Compared as bytes: compare_digest refuses non-ASCII str.
    if received is None or not hmac.compare_digest(received.encode(), state.encode()):
        return None
    code = values.get("code") or None
    error = values.get("error") or None
    if (code is None) == (error is None):
        return None
    return CallbackResult(
        code=code,
        state=received,
        iss=values.get("iss"),
        error=error,
        error_description=values.get("error_description"),
    )


def parse_redirect(url: str, *, redirect_uri: str, state: str) -> CallbackResult:
    """Check a redirect URL pasted by a person exactly like a live callback (AZ-10).

    Scheme, host, port and path must equal `redirect_uri`'s; the query is judged as by the server.
    Raises CallbackError with a fixed message (it never quotes the URL).
    """
    result = judge(_redirect_query(url.strip(), redirect_uri), state)
    if result is None:
        raise CallbackError("the pasted URL does not carry a valid response for this sign-in")
    return result


def pasted_query(text: str, *, redirect_uri: str) -> str:
    """The raw query a pasted answer stands for, to be judged like a callback's (`judge`).

    Two forms: the whole address the browser ended on, whose scheme, host, port and path must
    equal `redirect_uri`'s (its query is taken as is, `iss` included); or a code with its state
    as a provider's page shows them, `CODE#STATE` or `CODE STATE` (no `iss` then: a caller whose
    provider promises one refuses it, RFC 9207 §2.4). A code alone is refused: its state could
    not be checked. Raises CallbackError with a fixed message (it never quotes the paste).
    """
    text = text.strip()
    if not text or len(text) > _MAX_PASTE:
        raise CallbackError("nothing that looks like a sign-in answer was pasted")
    if "://" in text:
        return _redirect_query(text, redirect_uri)
    if pair := _PAIR.fullmatch(text):
        return urlencode({"code": pair[1], "state": pair[2]})
    if _BARE.fullmatch(text):
        raise CallbackError(
            "a code alone cannot be checked against this sign-in: paste it with its state"
            " (CODE#STATE), or the whole address the browser ended on"
        )
    raise CallbackError(
        "paste the whole address the browser ended on, or the code and state as the page"
        " shows them (CODE#STATE)"
    )


def _redirect_query(url: str, redirect_uri: str) -> str:
    """The raw query of `url`, whose scheme, host, port and path must equal `redirect_uri`'s."""
    try:
        got, want = urlsplit(url), urlsplit(redirect_uri)
        same_place = (got.scheme, got.netloc, got.path) == (want.scheme, want.netloc, want.path)
    except ValueError:
        same_place = False
    if not same_place:
        raise NotThisRedirect("the pasted address is not this sign-in's redirect address")
    return got.query


def parse_pasted(text: str, *, redirect_uri: str, state: str) -> CallbackResult:
    """A pasted answer (`pasted_query`'s forms) judged exactly like a live callback (`judge`).

    Raises CallbackError with a fixed message (it never quotes the paste)."""
    result = judge(pasted_query(text, redirect_uri=redirect_uri), state)
    if result is None:
        raise CallbackError(
            "the pasted answer does not belong to this sign-in (its state does not match)"
        )
    return result
