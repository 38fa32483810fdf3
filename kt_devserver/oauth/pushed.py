"""The pushed authorization requests (RFC 9126) waiting for their authorization request, and
their resolution at the authorization endpoint (authorize.py); the endpoint itself is par.py.

`resolve` gives the authorization endpoint the pushed parameters for a `request_uri`: it must be
this server's, unspent and unexpired, pushed by that same client_id, and nothing else may ride
beside it — a parameter added to the short URL (a changed redirect_uri, a wider scope) is
refused, as only the pushed request counts (RFC 9126 §4, RFC 9101 §5). A request_uri is spent
when resolved: a reload asks the client to start again. A request that was not pushed is refused
(`invalid_request`, §4) under `--require-par`, or from a client registered with `require_par`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiohttp import web

from kt_devserver.oauth import clients
from kt_devserver.oauth.http import OAuthContext
from kt_devserver.oauth.pages import error_page
from kt_devserver.state import DEFAULT_PAR_REQUEST_TTL

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
PUSHED_REQUEST_TTL = DEFAULT_PAR_REQUEST_TTL  # the default; Settings.par_request_ttl
# Pushed requests held at once; a push beyond answers 429 (§2.3) until some expire.
MAX_PUSHED = 10_000
# What may accompany a request_uri at the authorization endpoint.
_BESIDE_REQUEST_URI = frozenset({"client_id", "request_uri"})


@dataclass(frozen=True)
class Pushed:
    client_id: str
    pairs: list[tuple[str, str]]
    expires_at: float


@dataclass
class PushedRequests:
    """The pushed requests waiting for their authorization request, by request_uri (memory only:
    none outlives its minute, nor the process)."""

    by_uri: dict[str, Pushed] = field(default_factory=dict)

    def add(self, pushed: Pushed, *, now: float) -> str | None:
        """The new request_uri, or None when too many are waiting."""
        for uri in [u for u, p in self.by_uri.items() if now >= p.expires_at]:
            del self.by_uri[uri]
        if len(self.by_uri) >= MAX_PUSHED:
            return None
        uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(16)
        self.by_uri[uri] = pushed
        return uri

    def take(self, uri: str, *, now: float) -> Pushed | None:
        """The pushed request, spent; None when unknown, already spent or expired."""
        pushed = self.by_uri.pop(uri, None)
        if pushed is None or now >= pushed.expires_at:
            return None
        return pushed


PUSHED = web.AppKey("kt_devserver.oauth.par", PushedRequests)


def enabled(ctx: OAuthContext) -> bool:
    settings = ctx.state.settings
    return settings.par or settings.require_par


def required_for(ctx: OAuthContext, client_id: str | None) -> bool:
    """Whether this client's authorization requests must come through the PAR endpoint."""
    client = clients.find(client_id)
    return ctx.state.settings.require_par or (client is not None and client.require_par)


class Refused(Exception):
    """An authorization request the pushed-request rules refuse; `page` says why."""

    def __init__(self, page: web.Response) -> None:
        super().__init__("refused")
        self.page = page


def resolve(
    request: web.Request, ctx: OAuthContext, pairs: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The authorization request's parameters: the pushed ones for a request_uri, else `pairs`
    as sent (unless they must have been pushed). Raises Refused with the page to show."""
    names = [name for name, _ in pairs]
    if "request_uri" not in names:
        client_id = dict(pairs).get("client_id")
        if required_for(ctx, client_id):
            raise Refused(
                error_page(
                    400,
                    "invalid_request",
                    "This client must push its authorization requests first (RFC 9126): "
                    "start the sign-in again from the application.",
                )
            )
        return pairs
    extra = sorted(set(names) - _BESIDE_REQUEST_URI)
    if extra or len(names) != len(set(names)):
        raise Refused(
            error_page(
                400,
                "invalid_request",
                "This sign-in link was changed: only client_id may accompany request_uri "
                f"(found {(extra or ['a repeated parameter'])[0][:40]}).",
            )
        )
    query = dict(pairs)
    uri = query["request_uri"]
    pushed = request.app[PUSHED].take(uri, now=ctx.state.clock()) if enabled(ctx) else None
    if pushed is None:
        raise Refused(
            error_page(
                400,
                "invalid_request_uri",
                "This sign-in link has expired or was already used: start the sign-in again "
                "from the application.",
            )
        )
    if query.get("client_id") != pushed.client_id:
        raise Refused(
            error_page(
                400,
                "invalid_request",
                "This sign-in link belongs to another application (client_id differs).",
            )
        )
    return pushed.pairs
