"""A short-lived, down-scoped token for an agent (`kt auth token exchange`, RFC 8693 delegation;
issue 15 part 3): the signed-in session's access token is exchanged at the issuer's token
endpoint for a token that names the actor (`act`, §4.1), carries at most the scopes asked for
(which the server holds to the session's) and lives at most the TTL asked for (which the server
caps). The agent only ever sees the derived token; revoking the session revokes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..authenticate import Authenticator
from ..errors import EXIT_ERROR, OAuthError, UsageError
from ..flows import drive
from ..flows.discovery import discover
from ..flows.token_exchange import ACCESS_TOKEN, exchange_token

# What an actor is called: its kind and name, e.g. agent:deploy-bot (as kt-devserver wants it).
MAX_ACTOR = 97


@dataclass(frozen=True)
class Delegated:
    access_token: str = field(repr=False)
    actor: str
    scopes: tuple[str, ...]
    expires_at: float | None
    expires_in: float | None


def check_actor(actor: str) -> str:
    kind, sep, name = actor.partition(":")
    if not sep or not kind or not name or len(actor) > MAX_ACTOR or any(c.isspace() for c in actor):
        raise UsageError(
            "--actor names who will use the token as KIND:NAME, e.g. --actor agent:deploy-bot"
        )
    return actor


def delegate(
    authenticator: Authenticator,
    *,
    subject_token: str,
    issuer: str,
    client_id: str,
    token_endpoint: str | None,
    scopes: list[str],
    ttl: int,
    actor: str,
) -> Delegated:
    """The derived token; the server's refusal (a scope beyond the session's, a longer TTL than
    it allows) restated, exit 1, or exit 3 when the session itself was refused."""
    http = authenticator.http
    endpoint = token_endpoint or drive(discover(issuer), http).token_endpoint
    try:
        tokens = drive(
            exchange_token(
                endpoint,
                client_id=client_id,
                subject_token=subject_token,
                subject_token_type=ACCESS_TOKEN,
                scope=" ".join(scopes),
                actor=actor,
                expires_in=ttl,
            ),
            http,
        )
    except OAuthError as exc:
        raise _refused(exc, issuer) from None
    now = authenticator.clock()
    return Delegated(
        access_token=tokens.access_token,
        actor=actor,
        scopes=tuple((tokens.scope or " ".join(scopes)).split()),
        expires_at=None if tokens.expires_in is None else now + tokens.expires_in,
        expires_in=tokens.expires_in,
    )


def _refused(exc: OAuthError, issuer: str) -> OAuthError:
    if exc.error in ("unsupported_grant_type", "unauthorized_client"):
        refused = exc.restated(f"{issuer} does not offer delegated tokens (RFC 8693)")
        refused.exit_code = EXIT_ERROR
        return refused
    if exc.error in ("invalid_scope", "invalid_request"):
        refused = exc.restated(f"{issuer} refused to make that delegated token")
        refused.exit_code = EXIT_ERROR
        return refused
    return exc.restated(f"{issuer} refused this session for delegation")
