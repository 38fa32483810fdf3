"""OAuth 2.0 Token Exchange (RFC 8693) at the token endpoint, for two uses:

- CI sign-in (`subject_token_type` jwt or id_token): a JWT from an external OpenID Connect
  issuer that a trust rule names (exchanges.py) is checked — its signature against that
  issuer's JWKS (found through its discovery document), then `iss`, `aud`, `exp`/`iat` strictly,
  by kt_login.idtoken's one validation — then the rule's claim patterns; its `jti` is good once.
  The reply is an access token for the rule's workload user, with the rule's scopes (or the
  `scope` asked for, within them) and lifetime, and no refresh token.
- Delegation (`subject_token_type` access_token): a session's access token is turned into a
  token for an actor (`actor=KIND:NAME`, an extension parameter; RFC 8693 §4.1's `act` names it
  in whoami) with at most the session's scopes (`scope`, required) and at most
  MAX_DELEGATION_TTL seconds (`expires_in`, an extension parameter; never past the session's
  own end). Revoking the session revokes it (families.revoke).

authlib has no RFC 8693 grant, hence this one on its BaseGrant. The issuer's keys are fetched
before authlib runs (`prepare`, awaited by the route: authlib is synchronous), only for an
issuer some trust rule names, so no token makes the server fetch an arbitrary URL.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import BaseGrant, TokenEndpointMixin  # type: ignore[import-untyped]

from kt_devserver import scopes
from kt_devserver.credentials import ACCESS_TOKEN_PREFIX, hash_secret, new_id, new_secret
from kt_devserver.dpop import TOKEN_TYPE as DPOP_TOKEN_TYPE
from kt_devserver.exchanges import Exchanged, Exchanges, TrustRule
from kt_devserver.families import Grant, IssuedPair, Session
from kt_devserver.oauth.metadata import TOKEN_EXCHANGE
from kt_devserver.oauth.request import KtRequest, OnServer
from kt_devserver.state import State
from kt_login.errors import KtError, ValidationFailed
from kt_login.flows import Flow, adrive
from kt_login.flows.discovery import OIDC_PATH, endpoint, read_document
from kt_login.idtoken import ALLOWED_ALGS, INVALID, LEEWAY, check_claims, fetch_jwks
from kt_login.idtoken import verify_signature as verify_jwt

JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
MAX_DELEGATION_TTL = 3600
DEFAULT_DELEGATION_TTL = 900
MAX_SUBJECT_TOKEN = 16 * 1024
HTTP_TIMEOUT = 10.0
# An actor: its kind and name, e.g. agent:deploy-bot.
ACTOR = re.compile(r"[a-z][a-z0-9-]{0,31}:[A-Za-z0-9._@-]{1,64}")


class IssuerUnavailable(OAuth2Error):  # type: ignore[misc]
    """The trusted issuer's keys could not be fetched: try again later."""

    error = "temporarily_unavailable"
    status_code = 503


@dataclass(frozen=True)
class SubjectKeys:
    """What `prepare` found for a subject token's (unverified) issuer."""

    issuer: str
    keys: list[Any] | None
    failure: str | None = None


def unverified_issuer(token: str) -> str | None:
    """The `iss` a JWT claims, unverified: only to choose the trust rules to check it with."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) else None


def issuer_keys(issuer: str) -> Flow[list[Any]]:
    """The issuer's signing keys: its OpenID discovery document (naming exactly `issuer`), then
    the `jwks_uri` it lists (https, or http on loopback)."""
    response = yield httpx2.Request(
        "GET", issuer.rstrip("/") + OIDC_PATH, headers={"Accept": "application/json"}
    )
    if response.status_code != 200:
        raise KtError(f"its discovery document answered HTTP {response.status_code}")
    jwks_uri = endpoint(read_document(response.content, issuer), "jwks_uri", required=True)
    assert jwks_uri is not None
    keys: list[Any] = yield from fetch_jwks(jwks_uri)
    return keys


def wanted(request: KtRequest) -> bool:
    data = request.payload.data
    return bool(
        data.get("grant_type") == TOKEN_EXCHANGE
        and data.get("subject_token_type") in (JWT_TYPE, ID_TOKEN_TYPE)
    )


async def prepare(state: State, request: KtRequest) -> None:
    """Fetch the keys of the issuer a CI sign-in's subject token claims, when a trust rule
    names that issuer; the grant then checks the token with them."""
    if not wanted(request):
        return
    token = request.payload.data.get("subject_token", "")
    issuer = unverified_issuer(token) if len(token) <= MAX_SUBJECT_TOKEN else None
    if issuer is None or not Exchanges(state.db).rules(issuer=issuer):
        return
    try:
        async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            keys = await adrive(issuer_keys(issuer), http)
    except KtError as exc:
        request.kt_subject_keys = SubjectKeys(issuer, None, exc.message)
        return
    request.kt_subject_keys = SubjectKeys(issuer, keys)


def _why(exc: ValidationFailed) -> str:
    """idtoken's reason, said of the subject token."""
    reason = exc.message.removeprefix(INVALID)
    return f"The subject token is not valid: {reason}."


class TokenExchangeGrant(OnServer, BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("This client may not use token exchange.")
        self.request.client = client
        data = self.request.payload.data
        if not data.get("subject_token") or not data.get("subject_token_type"):
            raise InvalidRequestError("Send subject_token and subject_token_type.")
        if len(data["subject_token"]) > MAX_SUBJECT_TOKEN:
            raise InvalidRequestError("The subject token is too large.")
        if data.get("requested_token_type") not in (None, "", ACCESS_TOKEN_TYPE):
            raise InvalidRequestError("Only access tokens are issued (requested_token_type).")
        if data.get("actor_token"):
            raise InvalidRequestError("actor_token is not supported; name the actor with actor.")
        if data["subject_token_type"] not in (JWT_TYPE, ID_TOKEN_TYPE, ACCESS_TOKEN_TYPE):
            raise InvalidRequestError("Unsupported subject_token_type.")

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        data = self.request.payload.data
        if data["subject_token_type"] == ACCESS_TOKEN_TYPE:
            token = self._delegated(data)
        else:
            token = self._federated(data["subject_token"])
        return 200, token, [("Cache-Control", "no-store"), ("Pragma", "no-cache")]

    # --- CI sign-in ----------------------------------------------------------------------------

    def _federated(self, subject_token: str) -> dict[str, Any]:
        kt = self.kt
        now = kt.clock()
        exchanges = Exchanges(kt.state.db)
        issuer = unverified_issuer(subject_token)
        rules = [] if issuer is None else exchanges.rules(issuer=issuer)
        if issuer is None or not rules:
            raise InvalidGrantError("No trust rule accepts tokens from the subject token's issuer.")
        found: SubjectKeys | None = self.request.kt_subject_keys
        if found is None or found.issuer != issuer or found.keys is None:
            why = found.failure if found is not None else None
            raise IssuerUnavailable(f"The trusted issuer's keys could not be fetched ({why}).")
        try:
            payload = verify_jwt(subject_token, found.keys, ALLOWED_ALGS)
        except ValidationFailed as exc:
            raise InvalidGrantError(_why(exc)) from None
        rule, claims_exp = self._matching_rule(rules, payload, now)
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise InvalidGrantError("The subject token has no jti, so a replay could not be seen.")
        granted = self._scopes_within(rule.scopes, "the trust rule grants")
        if not exchanges.spend_jti(issuer, jti, expires_at=claims_exp + LEEWAY, now=now):
            raise InvalidGrantError("The subject token was already used (its jti was seen before).")
        subject = payload.get("sub")
        return self._issue(
            user_id=rule.user_id,
            expires_at=now + rule.lifetime,
            granted=granted,
            issuer=issuer,
            subject=subject if isinstance(subject, str) else "",
        )

    def _matching_rule(
        self, rules: list[TrustRule], payload: dict[str, Any], now: float
    ) -> tuple[TrustRule, float]:
        """The first rule the verified claims satisfy; else the refusal of the rule that came
        closest (audience, then the idtoken checks, then the claim patterns)."""
        aud = payload.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        refusals: list[tuple[int, str]] = []
        for rule in rules:
            if rule.audience not in audiences:
                refusals.append((0, "The subject token's aud is not an audience a rule expects."))
                continue
            try:
                claims = check_claims(
                    payload, issuer=rule.issuer, client_id=rule.audience, now=now, nonce=None
                )
            except ValidationFailed as exc:
                refusals.append((1, _why(exc)))
                continue
            mismatch = rule.mismatch(payload)
            if mismatch is not None:
                refusals.append((2, f"The subject token's {mismatch[:40]} claim matches no rule."))
                continue
            return rule, claims.exp
        raise InvalidGrantError(max(refusals)[1])

    # --- delegation ----------------------------------------------------------------------------

    def _delegated(self, data: dict[str, str]) -> dict[str, Any]:
        kt = self.kt
        now = kt.clock()
        token = data["subject_token"]
        found = None
        if token.startswith(ACCESS_TOKEN_PREFIX):
            found = kt.families.find_access_token(hash_secret(token))
        if found is None:
            raise InvalidGrantError(
                "The subject token is not a session's access token (API tokens are not delegated)."
            )
        session, token_expires_at = found
        if session.revoked_at is not None or now >= token_expires_at:
            raise InvalidGrantError("The subject token is revoked or expired; sign in again.")
        if Exchanges(kt.state.db).find(session.id) is not None:
            raise InvalidGrantError("A token from a token exchange cannot be exchanged again.")
        if session.dpop_jkt is not None and self.request.kt_dpop_jkt != session.dpop_jkt:
            # A bound token copied without its key must not become an unbound one (RFC 9449).
            raise InvalidGrantError("The subject token is DPoP-bound; send a proof of its key.")
        actor = data.get("actor", "")
        if not ACTOR.fullmatch(actor):
            raise InvalidRequestError("Name the actor as KIND:NAME, e.g. agent:deploy-bot.")
        user = kt.state.db.get_user(session.user_id)
        held = scopes.ordered(scopes.for_role(user.role))
        if not self.request.payload.scope:
            raise InvalidScopeError("Name the scopes the delegated token needs (scope).")
        granted = self._scopes_within(tuple(held), "the session holds")
        lifetime = _lifetime(data.get("expires_in"))
        return self._issue(
            user_id=user.id,
            expires_at=min(now + lifetime, session.expires_at),
            granted=granted,
            parent=session,
            actor=actor,
        )

    # --- both ----------------------------------------------------------------------------------

    def _scopes_within(self, allowed: tuple[str, ...], who: str) -> tuple[str, ...]:
        """The `scope` asked for (all of `allowed` when none is), refused beyond `allowed`."""
        requested = self.request.payload.scope
        if not requested:
            return allowed
        asked = list(dict.fromkeys(requested.split()))
        unknown = [s for s in asked if s not in scopes.ALL_SCOPES]
        if unknown:
            raise InvalidScopeError(f"Unknown scope: {unknown[0][:40]}.")
        beyond = [s for s in scopes.ordered(asked) if s not in allowed]
        if beyond:
            raise InvalidScopeError(
                f"{', '.join(beyond)} is beyond what {who} ({', '.join(allowed) or 'none'})."
            )
        return tuple(scopes.ordered(asked))

    def _issue(
        self,
        *,
        user_id: str,
        expires_at: float,
        granted: tuple[str, ...],
        issuer: str | None = None,
        subject: str | None = None,
        parent: Session | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """A new token family of one access token and no refresh token, described as an
        exchanged one (its scopes, and where it came from)."""
        kt = self.kt
        now = kt.clock()
        access = new_secret(ACCESS_TOKEN_PREFIX)
        jkt = self.request.kt_dpop_jkt  # a proof with the request binds the token (RFC 9449)
        session = Session(new_id("ses_"), user_id, False, now, expires_at, None, dpop_jkt=jkt)
        pair = IssuedPair(
            access_hash=hash_secret(access),
            access_expires_at=expires_at,
            refresh_hash=None,
            refresh_expires_at=expires_at,
        )
        scope = " ".join(granted)
        grant = Grant(session.id, self.request.client.get_client_id(), scope, now, False)
        exchanged = Exchanged(
            session_id=session.id,
            scopes=granted,
            issuer=issuer,
            subject=subject,
            parent_session_id=None if parent is None else parent.id,
            actor=actor,
        )
        with kt.state.db.connection:
            kt.families.insert(session, pair, grant=grant)
            Exchanges(kt.state.db).record(exchanged)
        return {
            "access_token": access,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer" if jkt is None else DPOP_TOKEN_TYPE,
            "expires_in": max(0, int(expires_at - now)),
            "scope": scope,
        }


def _lifetime(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_DELEGATION_TTL
    if not value.isdigit() or len(value) > 9 or int(value) < 1:
        raise InvalidRequestError("expires_in is a number of seconds.")
    if int(value) > MAX_DELEGATION_TTL:
        raise InvalidRequestError(
            f"A delegated token lives at most {MAX_DELEGATION_TTL} seconds; ask for less."
        )
    return int(value)
