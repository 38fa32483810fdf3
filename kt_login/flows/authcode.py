"""Authorization Code + PKCE for a native app (RFC 6749 §4.1, RFC 7636, RFC 8252, RFC 9207,
RFC 9126).

`begin` builds the authorization request (fresh state, nonce, verifier) as one URL; `authorize`
is the flow that pushes it first when the provider has a PAR endpoint (RFC 9126) and opens only a
short URL; `check_response` judges what came back to the loopback listener before anything is
sent to the token endpoint.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx2

from ..config import check_transport, origin
from ..errors import OAuthError, ServerError, ValidationFailed
from ..text import run_hint
from . import Flow
from .discovery import ProviderMetadata
from .pkce import new_nonce, new_state, new_verifier, s256
from .tokens import FORM, json_reply
from .transport import seconds

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
    # Pushed (RFC 9126): `url` names only client_id and the request_uri, which the provider
    # honours for `pushed_for` seconds from the push (None: it did not say).
    pushed: bool = False
    pushed_for: float | None = None
    # RFC 8707 §2.1: the resource (the API URL) the tokens are for, when the sign-in names one.
    resource: str | None = None


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
    """The authorization request as one URL carrying every parameter (RFC 6749 §4.1.1)."""
    request = _new_request(
        meta,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        max_age=max_age,
        acr_values=acr_values,
    )
    params = _parameters(request, prompt=prompt, login_hint=login_hint)
    return replace(request, url=_browser_url(meta, params))


def authorize(
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
) -> Flow[AuthorizationRequest]:
    """The authorization request the way the provider takes it. With a PAR endpoint in its
    metadata (RFC 9126), every parameter — PKCE challenge, state, nonce, redirect_uri, scope —
    is pushed there, and the URL to open names only client_id and the request_uri it answered:
    short enough to type on another screen. Without one, `begin`'s URL, nothing sent; unless the
    provider requires pushed requests (`require_pushed_authorization_requests`), then the
    sign-in is refused before anything is opened."""
    if meta.par_endpoint is None:
        if meta.par_required:
            raise ValidationFailed(
                "the provider accepts only pushed authorization requests (RFC 9126), but "
                + meta.missing("pushed_authorization_request_endpoint")
            )
        return begin(
            meta,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            prompt=prompt,
            max_age=max_age,
            acr_values=acr_values,
            login_hint=login_hint,
        )
    request = _new_request(
        meta,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        max_age=max_age,
        acr_values=acr_values,
    )
    params = _parameters(request, prompt=prompt, login_hint=login_hint)
    response = yield httpx2.Request("POST", meta.par_endpoint, headers=FORM, data=params)
    request_uri, lifetime = _pushed(response)
    url = _browser_url(meta, {"client_id": client_id, "request_uri": request_uri})
    return replace(request, url=url, pushed=True, pushed_for=lifetime)


def _pushed(response: httpx2.Response) -> tuple[str, float | None]:
    """RFC 9126 §2.2: 201 with the request_uri and its lifetime; §2.3's errors as a token
    endpoint's are (OAuthError), said as a refusal of the sign-in request."""
    try:
        body = json_reply(response, "pushed authorization request", success=201)
    except OAuthError as exc:
        raise exc.restated(
            "the identity provider refused the sign-in request it was sent (pushed"
            " authorization request, RFC 9126)",
            hint=run_hint("kt", "auth", "login", "--browser"),
        ) from None
    request_uri = body.get("request_uri")
    if (
        not isinstance(request_uri, str)
        or not request_uri
        or len(request_uri) > MAX_REQUEST_URI
        or not request_uri.isprintable()
        or request_uri.isspace()
    ):
        raise ServerError("the pushed authorization request's reply has no valid request_uri")
    lifetime = seconds(body.get("expires_in"), "pushed request's expires_in", most=MAX_PUSHED_FOR)
    return request_uri, lifetime


def needs_renewal(request: AuthorizationRequest, age: float) -> bool:
    """Whether a pushed request, pushed `age` seconds ago, should be pushed again before a
    browser is sent to it: its request_uri is past, or within a few seconds of, the
    `expires_in` the provider gave (RFC 9126 §4: an expired one is refused). A request that
    was not pushed, or whose lifetime is unknown, is kept."""
    if not request.pushed or request.pushed_for is None:
        return False
    return age >= request.pushed_for - min(RENEW_MARGIN, request.pushed_for / 4)


# Seconds before a pushed request expires at which kt pushes it again rather than open it.
RENEW_MARGIN = 10.0
# The longest request_uri kt puts in a URL, and the longest lifetime it believes for one
# (RFC 9126 §2.2 suggests 5 to 600 seconds).
MAX_REQUEST_URI = 512
MAX_PUSHED_FOR = 3600.0


def _new_request(
    meta: ProviderMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str | None,
    max_age: int | None,
    acr_values: str | None,
) -> AuthorizationRequest:
    """A request's secrets, fresh (AZ-01..03), and what the response will be checked against;
    its URL not yet made."""
    return AuthorizationRequest(
        url="",
        redirect_uri=redirect_uri,
        client_id=client_id,
        issuer=meta.issuer,
        scope=scope,
        state=state or new_state(),
        nonce=new_nonce(),
        verifier=new_verifier(),
        max_age=max_age,
        acr_values=acr_values,
        resource=meta.resource,
    )


def _parameters(
    request: AuthorizationRequest, *, prompt: str | None, login_hint: str | None
) -> dict[str, str]:
    """Every authorization request parameter, for the URL or for the push."""
    params = {
        "response_type": "code",
        "client_id": request.client_id,
        "redirect_uri": request.redirect_uri,
        "scope": request.scope,
        "state": request.state,
        "nonce": request.nonce,
        "code_challenge": s256(request.verifier),
        "code_challenge_method": "S256",
    }
    prompts = prompt.split() if prompt else []
    if "offline_access" in request.scope.split() and "consent" not in prompts:
        # OIDC Core §11: without prompt=consent a provider may ignore offline_access and issue
        # no refresh token (npm oidc-provider does).
        prompts.append("consent")
    if prompts:
        params["prompt"] = " ".join(prompts)
    if request.max_age is not None:
        params["max_age"] = str(request.max_age)
    if request.acr_values:
        params["acr_values"] = request.acr_values
    if login_hint:
        params["login_hint"] = login_hint
    if request.resource is not None:
        params["resource"] = request.resource
    return params


def _browser_url(meta: ProviderMetadata, params: dict[str, str]) -> str:
    """The authorization endpoint with `params` added to its own query, validated (AZ-08)."""
    base = httpx2.URL(meta.authorization_endpoint)
    # ':' may stay as it is in a query (RFC 3986 §3.4): a request_uri URN stays readable.
    added = urlencode(params, safe=":")
    query = base.query.decode() + ("&" if base.query else "") + added
    url = str(base.copy_with(query=query.encode()))
    return safe_browser_url(url, meta.issuer)


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
