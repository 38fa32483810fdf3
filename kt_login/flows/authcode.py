"""Authorization Code + PKCE for a native app (RFC 6749 §4.1, RFC 7636, RFC 8252, RFC 9207).

`begin` builds the authorization request (fresh state, nonce, verifier); `check_response` judges
what came back to the loopback listener before anything is sent to the token endpoint.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx2

from ..config import check_transport, origin
from ..errors import OAuthError, ValidationFailed
from ..text import run_hint
from .discovery import ProviderMetadata
from .pkce import new_nonce, new_state, new_verifier, s256

if TYPE_CHECKING:
    from callback_server import CallbackResult

DEFAULT_SCOPE = "openid profile email offline_access"


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    redirect_uri: str
    client_id: str
    issuer: str
    scope: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    verifier: str = field(repr=False)
    max_age: int | None = None
    acr_values: str | None = None


def begin(
    meta: ProviderMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str = DEFAULT_SCOPE,
    state: str | None = None,
    prompt: str | None = None,
    max_age: int | None = None,
    acr_values: str | None = None,
    login_hint: str | None = None,
) -> AuthorizationRequest:
    state = state or new_state()
    nonce, verifier = new_nonce(), new_verifier()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    prompts = prompt.split() if prompt else []
    if "offline_access" in scope.split() and "consent" not in prompts:
        # OIDC Core §11: without prompt=consent a provider may ignore offline_access and issue
        # no refresh token (npm oidc-provider does).
        prompts.append("consent")
    if prompts:
        params["prompt"] = " ".join(prompts)
    if max_age is not None:
        params["max_age"] = str(max_age)
    if acr_values:
        params["acr_values"] = acr_values
    if login_hint:
        params["login_hint"] = login_hint
    base = httpx2.URL(meta.authorization_endpoint)
    query = base.query.decode() + ("&" if base.query else "") + urlencode(params)
    url = str(base.copy_with(query=query.encode()))
    return AuthorizationRequest(
        url=safe_browser_url(url, meta.issuer),
        redirect_uri=redirect_uri,
        client_id=client_id,
        issuer=meta.issuer,
        scope=scope,
        state=state,
        nonce=nonce,
        verifier=verifier,
        max_age=max_age,
        acr_values=acr_values,
    )


def safe_browser_url(url: str, issuer: str) -> str:
    """The URL re-serialised, or ValidationFailed: the transport rule, on the issuer's host (and
    port, for loopback http), no leading '-' or '/' (AZ-08)."""
    if not url or url[0] in "-/":
        raise ValidationFailed("refusing to open an unsafe authorization URL")
    parts = check_transport(url, "an authorization URL to open", error=ValidationFailed)
    if origin(url)[1] != origin(issuer)[1] or (
        parts.scheme == "http" and origin(url) != origin(issuer)
    ):
        raise ValidationFailed(
            "refusing to open an authorization URL on another host than the issuer"
        )
    try:
        return str(httpx2.URL(url))  # percent-encoded, as the browser will get it
    except httpx2.InvalidURL:
        raise ValidationFailed(
            "refusing to open an authorization URL that does not parse"
        ) from None


def check_response(
    request: AuthorizationRequest, result: CallbackResult, meta: ProviderMetadata
) -> str:
    """The authorization code, once state and issuer check out (CB-07, AZ-04, EH-02)."""
    if not hmac.compare_digest(result.state.encode(), request.state.encode()):
        raise ValidationFailed(
            "the sign-in response does not belong to this login (state mismatch)"
        )
    if result.iss is not None:
        if result.iss != meta.issuer:  # simple string comparison, RFC 9207 §2.4
            raise ValidationFailed(
                "the sign-in response came from another issuer than the one asked (mix-up)"
            )
    elif meta.iss_parameter_supported:
        if result.error is not None:
            # Still refused (RFC 9207 §2.4: the error may come from a mix-up attacker), but the
            # person hears the provider's words too.
            said = OAuthError(result.error, description=result.error_description).provider_said
            raise ValidationFailed(
                f"the provider broke RFC 9207: its error response lacks the issuer (iss) it "
                f"promised, so it cannot be trusted ({said})",
                hint="if this repeats, tell the provider's administrator; to try again, "
                + run_hint("kt", "auth", "login", "--browser"),
            )
        raise ValidationFailed("the sign-in response lacks the issuer (iss) the provider promised")
    if result.error is not None:
        raise OAuthError(
            result.error,
            description=result.error_description,
            hint=run_hint("kt", "auth", "login", "--browser"),
        )
    if not result.code:
        raise ValidationFailed("the sign-in response carries no authorization code")
    return result.code
