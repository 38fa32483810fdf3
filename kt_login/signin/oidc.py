"""What browser and device sign-ins share: what to ask which issuer for, what came back, the ID
token and UserInfo checks, and the Session it makes. Nothing is stored here; the caller stores
the Session only after every check passed (EH-04), the way a password login is stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx2

from ..dpop import Prover
from ..errors import KtError, OAuthError, ValidationFailed
from ..flows import drive
from ..flows.authcode import DEFAULT_SCOPE
from ..flows.discovery import ProviderMetadata
from ..flows.tokens import TokenResponse, revoke_grant
from ..flows.userinfo import get_userinfo
from ..identity import display_name
from ..idtoken import IdClaims, KeyCache, provider_keys, validate_id_token
from ..session import OAUTH, Session
from ..store.locks import load_lock_library
from ..text import clean, run_hint

DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class SignInRequest:
    issuer: str
    client_id: str
    # The Keeptrusts API the session is for (kept apart from the issuer, issue 10 case 8).
    api_url: str
    scope: str | None = None  # None: kt's default scopes, narrowed to what the provider lists
    port: int = 0
    redirect_host: str = "127.0.0.1"  # the redirect_uri's host: 127.0.0.1, [::1] or localhost
    timeout: float = DEFAULT_TIMEOUT
    prompt: str | None = None
    max_age: int | None = None
    acr_values: str | None = None
    # No issuer was named: the API's resource metadata says which (RFC 9728, signin/provider.py).
    issuer_from_api: bool = False
    # RFC 8707's resource parameter: True always, False never, None when the API's metadata
    # named the issuer (the profile's send_resource).
    send_resource: bool | None = None
    # `--dpop` (RFC 9449): the new key the tokens are to be bound to; None for bearer tokens.
    dpop: Prover | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SignedIn:
    tokens: TokenResponse
    claims: IdClaims | None
    meta: ProviderMetadata
    userinfo: dict[str, object] | None
    scope: str = DEFAULT_SCOPE  # what was asked for

    @property
    def subject(self) -> str | None:
        """Who signed in: the ID token's sub, or UserInfo's where no ID token came."""
        if self.claims is not None:
            return self.claims.sub
        sub = (self.userinfo or {}).get("sub")
        return sub if isinstance(sub, str) else None


def scope_to_ask(login: SignInRequest, meta: ProviderMetadata) -> str:
    """`--scope` as given; otherwise kt's default scopes, narrowed to the provider's
    scopes_supported when it publishes that (openid is always asked for)."""
    if login.scope:
        return login.scope
    return _narrowed(DEFAULT_SCOPE, meta.scopes_supported)


def _narrowed(scope: str, supported: tuple[str, ...] | None) -> str:
    if supported is None:
        return scope
    return " ".join(s for s in scope.split() if s == "openid" or s in supported)


@contextmanager
def scope_explained(
    login: SignInRequest, scope: str, meta: ProviderMetadata, *, method: str
) -> Iterator[None]:
    """An invalid_scope answer restated: the scopes asked for, those the provider lists, and
    the `kt auth login --scope` command that would work."""
    try:
        yield
    except OAuthError as exc:
        if exc.error != "invalid_scope":
            raise
        listed = " ".join(meta.scopes_supported) if meta.scopes_supported else None
        working = _narrowed(scope, meta.scopes_supported) if listed else "openid"
        if working == scope:
            working = "openid"
        meaning = f"the identity provider refused the scopes asked for ({scope}); it lists " + (
            listed or "no scopes_supported"
        )
        if working == scope:  # even openid alone: no command of kt's would help
            raise exc.restated(
                meaning,
                hint="ask the provider's administrator which scopes this client may ask for",
            ) from None
        hint = run_hint(
            "kt", "auth", "login", f"--{method}",
            "--issuer", login.issuer, "--client-id", login.client_id, "--scope", working,
        )  # fmt: skip
        raise exc.restated(meaning, hint=hint) from None


def checked_sign_in(
    tokens: TokenResponse,
    meta: ProviderMetadata,
    *,
    scope: str,
    client_id: str,
    http: httpx2.Client,
    now: float,
    nonce: str | None = None,
    max_age: int | None = None,
    acr_values: str | None = None,
    id_token_required: bool = True,
) -> SignedIn:
    """The tokens' ID token and UserInfo checked; tokens that fail a check are revoked before
    the refusal goes on (kt never drops tokens it has received while they still work).

    `id_token_required` False is the device grant: RFC 8628 §3.5 returns an RFC 6749 §5.1 token
    response, which need not carry an ID token; UserInfo then says who signed in."""
    with revoked_if_refused(tokens, meta, client_id=client_id, http=http):
        claims = id_claims(
            tokens,
            meta,
            scope=scope,
            client_id=client_id,
            http=http,
            now=now,
            nonce=nonce,
            max_age=max_age,
            acr_values=acr_values,
            id_token_required=id_token_required,
        )
        openid = "openid" in scope.split()
        userinfo = fetch_userinfo(meta, tokens, claims, http=http, required=openid)
        return SignedIn(tokens=tokens, claims=claims, meta=meta, userinfo=userinfo, scope=scope)


@contextmanager
def revoked_if_refused(
    tokens: TokenResponse, meta: ProviderMetadata, *, client_id: str, http: httpx2.Client
) -> Iterator[None]:
    """On a refusal inside, end the grant at the provider (best effort), then refuse."""
    try:
        yield
    except KtError:
        if meta.revocation_endpoint is not None:
            try:
                drive(
                    revoke_grant(
                        meta.revocation_endpoint,
                        client_id=client_id,
                        refresh_token=tokens.refresh_token,
                        access_token=tokens.access_token,
                    ),
                    http,
                )
            except KtError:
                pass  # the refusal is what the person needs to hear
        raise


# The provider keys a sign-in fetched early (fetch_keys_early) by jwks_uri, with the client
# that fetches them: a plain dict, as the listener's event loop calls fetch_keys_early in a
# context of its own.
_early_keys: dict[str, tuple[httpx2.Client, KeyCache]] = {}


def fetch_keys_early(meta: ProviderMetadata, http: httpx2.Client) -> None:
    """Start fetching the provider's keys (KeyCache.fetch_in_background) as soon as the
    metadata is known, so that after the callback or the approval the ID token is checked with
    keys already in memory (issue 16). The check uses them when it asks for the same jwks_uri
    over the same client."""
    if meta.jwks_uri is None:
        return
    cache = provider_keys(meta.jwks_uri, http)
    cache.fetch_in_background(load_lock_library)  # the session is saved under a lock
    _early_keys[meta.jwks_uri] = (http, cache)


def _keys_for(jwks_uri: str, http: httpx2.Client) -> KeyCache:
    early = _early_keys.pop(jwks_uri, None)
    if early is not None and early[0] is http:
        return early[1]
    return provider_keys(jwks_uri, http)


def id_claims(
    tokens: TokenResponse,
    meta: ProviderMetadata,
    *,
    scope: str,
    client_id: str,
    http: httpx2.Client,
    now: float,
    nonce: str | None = None,
    max_age: int | None = None,
    acr_values: str | None = None,
    id_token_required: bool = True,
) -> IdClaims | None:
    """The ID token's claims, validated, when the sign-in asked for `openid` and the grant
    must return one (or did); None otherwise."""
    if "openid" not in scope.split():
        return None
    if tokens.id_token is None:
        if not id_token_required:
            return None
        raise ValidationFailed("the provider returned no ID token for an OpenID sign-in")
    if meta.jwks_uri is None:
        raise ValidationFailed("the provider publishes no jwks_uri to verify its ID tokens")
    return validate_id_token(
        tokens.id_token,
        keys=_keys_for(meta.jwks_uri, http),
        issuer=meta.issuer,
        client_id=client_id,
        now=now,
        nonce=nonce,
        max_age=max_age,
        acr_values=tuple(acr_values.split()) if acr_values else (),
        algs=meta.id_token_algs,
    )


def fetch_userinfo(
    meta: ProviderMetadata,
    tokens: TokenResponse,
    claims: IdClaims | None,
    *,
    http: httpx2.Client,
    required: bool = False,
) -> dict[str, object] | None:
    """UserInfo when the provider has it; its `sub` must be the ID token's (ID-07). Without an
    ID token, UserInfo is `required` for an OpenID sign-in: its `sub` names the person, and
    anchors the ID tokens later refreshes bring (OIDC Core §12.2)."""
    if claims is not None:
        if meta.userinfo_endpoint is None:
            return None
        return drive(
            get_userinfo(
                meta.userinfo_endpoint,
                access_token=tokens.access_token,
                subject=claims.sub,
                dpop=tokens.dpop,
            ),
            http,
        )
    if not required:
        return None
    if meta.userinfo_endpoint is None:
        raise ValidationFailed(
            "the provider returned no ID token and has no userinfo endpoint to say who signed in"
        )
    info = drive(
        get_userinfo(
            meta.userinfo_endpoint,
            access_token=tokens.access_token,
            subject=None,
            dpop=tokens.dpop,
        ),
        http,
    )
    if info is None:
        raise ValidationFailed(
            "the provider returned no ID token and its userinfo did not say who signed in"
        )
    return info


def session_from_sign_in(
    signed: SignedIn, *, login: SignInRequest, api_url: str, now: float, method: str = "browser"
) -> Session:
    claims, info = signed.claims, signed.userinfo or {}
    id_claims_ = dataclasses.asdict(claims) if claims else {}
    email = id_claims_.get("email") or info.get("email")
    tokens = signed.tokens
    return Session(
        api_url=api_url,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=now + tokens.expires_in if tokens.expires_in else None,
        method=method,
        kind=OAUTH,
        user_email=clean(email) if isinstance(email, str) else "",
        user_id=signed.subject or "",
        organization="",
        role="",
        scopes=tuple((tokens.scope or signed.scope).split()),
        mfa_authenticated=bool(claims and ("otp" in claims.amr or "mfa" in claims.amr)),
        obtained_at=now,
        issuer=signed.meta.issuer,
        client_id=login.client_id,
        token_endpoint=signed.meta.token_endpoint,
        revocation_endpoint=signed.meta.revocation_endpoint,
        jwks_uri=signed.meta.jwks_uri,
        subject=signed.subject,
        auth_time=claims.auth_time if claims else None,
        acr=claims.acr if claims else None,
        display_name=display_name(id_claims_, info),
        granted_scope=tokens.scope or signed.scope,
        resource=signed.meta.resource,
        issuer_source=signed.meta.issuer_source,
        dpop_key=None if tokens.dpop is None else tokens.dpop.key.to_json(),
    )
