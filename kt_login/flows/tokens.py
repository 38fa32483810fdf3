"""Token endpoint exchanges (code, refresh) and revocation, as flows; responses parsed strictly.

RFC 6749 §5.1/§5.2 with the robustness of SECURITY.md ID-08 (token_type case-insensitive, unknown
lifetime tolerated) and EH-03 (error bodies parsed, never echoed). Given a `dpop.Prover`, a
token request carries a DPoP proof (RFC 9449 §5), is sent once more with the nonce the endpoint
asks for (§8), and its reply must be a DPoP token; the TokenResponse keeps the Prover.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx2

from ..dpop import TOKEN_TYPE as DPOP_TOKEN_TYPE
from ..dpop import Prover
from ..errors import NetworkError, OAuthError, ServerError, ValidationFailed
from . import Flow
from .transport import MAX_LIFETIME, check_size, json_document, seconds

FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    expires_in: float | None
    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)
    scope: str | None
    # The key the tokens are bound to (a DPoP token); None for bearer tokens.
    dpop: Prover | None = field(default=None, repr=False)


def json_reply(response: httpx2.Response, what: str, *, success: int = 200) -> dict[str, Any]:
    """A `success` reply's JSON object (200; RFC 9126's 201 Created); an RFC 6749 §5.2 error as
    OAuthError; anything else ServerError (the body is never echoed, EH-03)."""
    check_size(response.content, "token", f"{what}'s reply")
    try:
        body = json_document(response.content)
    except ValueError:
        body = None
    if response.status_code != success:
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            raise OAuthError(body["error"], description=body.get("error_description"))
        raise ServerError(f"the {what} failed (HTTP {response.status_code})")
    if not isinstance(body, dict):
        raise ServerError(f"the {what}'s reply is not a JSON object")
    return body


def parse_token_response(response: httpx2.Response, *, dpop: Prover | None = None) -> TokenResponse:
    """The tokens of a 200 reply; with `dpop` (the request carried a proof) they must be DPoP
    tokens (RFC 9449 §5): a bearer token is refused, since it is not bound to kt's key."""
    body = json_reply(response, "token endpoint")
    access = body.get("access_token")
    token_type = body.get("token_type")
    if not isinstance(access, str) or not access:
        raise ServerError("the token endpoint's reply has no access_token")
    expected = "bearer" if dpop is None else DPOP_TOKEN_TYPE.lower()
    if isinstance(token_type, str) and token_type.lower() == "bearer" and dpop is not None:
        raise ValidationFailed(
            "the token endpoint answered a DPoP token request with a Bearer token, which is "
            "not bound to this session's key; kt does not keep it",
            hint="sign in without --dpop if this provider does not support DPoP (RFC 9449)",
        )
    if not isinstance(token_type, str) or token_type.lower() != expected:
        raise ServerError("the token endpoint issued an unsupported token_type")
    expires = body.get("expires_in")
    if isinstance(expires, str) and expires.isdigit() and len(expires) <= 15:
        expires = int(expires)  # some providers send a string
    lifetime = seconds(expires, "token endpoint's expires_in", most=MAX_LIFETIME)
    refresh = body.get("refresh_token")
    id_token = body.get("id_token")
    scope = body.get("scope")
    return TokenResponse(
        access_token=access,
        expires_in=lifetime,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        id_token=id_token if isinstance(id_token, str) and id_token else None,
        scope=scope if isinstance(scope, str) else None,
        dpop=dpop,
    )


def token_request(
    token_endpoint: str,
    data: Mapping[str, str],
    *,
    headers: Mapping[str, str] = FORM,
    dpop: Prover | None = None,
) -> Flow[httpx2.Response]:
    """One POST to the token endpoint; with `dpop`, a fresh proof on it and, when the endpoint
    answers use_dpop_nonce (nothing was spent: RFC 9449 §8), once more with that nonce."""
    response = yield _signed(
        httpx2.Request("POST", token_endpoint, headers=headers, data=data), dpop
    )
    if dpop is not None and dpop.learn(response):
        response = yield _signed(
            httpx2.Request("POST", token_endpoint, headers=headers, data=data), dpop
        )
        dpop.learn(response)
    return response


def _signed(request: httpx2.Request, dpop: Prover | None) -> httpx2.Request:
    if dpop is not None:
        dpop.sign(request)
    return request


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1 client_secret_basic: each part form-urlencoded, then base64."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def exchange_code(
    token_endpoint: str,
    *,
    client_id: str,
    code: str,
    redirect_uri: str,
    verifier: str,
    client_secret: str | None = None,
    resource: str | None = None,
    dpop: Prover | None = None,
) -> Flow[TokenResponse]:
    """The one POST that spends the code. The caller must not retry it (AZ-09); a DPoP
    endpoint's use_dpop_nonce, which spends nothing, is answered once (`token_request`).

    A public client names itself with `client_id`; a confidential one (`client_secret`, as
    kt-devserver's SSO may be) authenticates with client_secret_basic instead. `resource`: the
    API the tokens are for (RFC 8707 §2.2), when the sign-in names one.
    """
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    if resource is not None:
        data["resource"] = resource
    headers = dict(FORM)
    if client_secret:
        headers["Authorization"] = basic_auth(client_id, client_secret)
    else:
        data["client_id"] = client_id
    response = yield from token_request(token_endpoint, data, headers=headers, dpop=dpop)
    return parse_token_response(response, dpop=dpop)


def refresh(
    token_endpoint: str,
    *,
    client_id: str,
    refresh_token: str,
    resource: str | None = None,
    dpop: Prover | None = None,
) -> Flow[TokenResponse]:
    """RFC 6749 §6; `resource` (RFC 8707 §2.2): the API the session's tokens were asked for; a
    DPoP session's refresh carries a proof of its key (RFC 9449 §5)."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    if resource is not None:
        data["resource"] = resource
    response = yield from token_request(token_endpoint, data, dpop=dpop)
    if 400 <= response.status_code < 500:
        # Refused, whatever the reply says: the caller ends the session rather than retry.
        try:
            parse_token_response(response, dpop=dpop)
        except OAuthError:
            raise
        except ServerError:
            raise OAuthError(
                "invalid_grant",
                meaning="the identity provider refused the refresh",
                said=f"the provider answered HTTP {response.status_code} without an OAuth error",
            ) from None
    return parse_token_response(response, dpop=dpop)


def revoke(revocation_endpoint: str, *, client_id: str, token: str, hint: str) -> Flow[None]:
    """RFC 7009: 200 is success even for an unknown token; 503 means it may still be valid."""
    response = yield httpx2.Request(
        "POST",
        revocation_endpoint,
        headers=FORM,
        data={"token": token, "token_type_hint": hint, "client_id": client_id},
    )
    if response.status_code == 200:
        return None
    if response.status_code == 503:
        raise NetworkError("the identity provider could not revoke the token now (HTTP 503)")
    try:
        body = json_document(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        raise OAuthError(
            body["error"],
            description=body.get("error_description"),
            meaning=f"HTTP {response.status_code}",
        )
    raise ServerError(f"the revocation endpoint failed (HTTP {response.status_code})")


def revoke_grant(
    revocation_endpoint: str, *, client_id: str, refresh_token: str | None, access_token: str
) -> Flow[None]:
    """End a grant (RFC 7009): the refresh token first, which ends the grant at most providers
    (§2.1), then the access token."""
    for token, hint in ((refresh_token, "refresh_token"), (access_token, "access_token")):
        if token:
            yield from revoke(revocation_endpoint, client_id=client_id, token=token, hint=hint)
