"""Provider metadata (RFC 8414 / OpenID Connect Discovery 1.0) with the issuer pinned.

The document must name exactly the configured issuer (ID-01), and every endpoint must satisfy the
transport rule: https, or http on a loopback host (ID-02). Nothing here trusts a URL it has not
parsed and compared structurally (EH-07).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from ..config import check_transport, origin
from ..errors import NetworkError, ServerError, UsageError, ValidationFailed
from . import Flow
from .transport import check_size, json_document

OIDC_PATH = "/.well-known/openid-configuration"
OAUTH_PATH = "/.well-known/oauth-authorization-server"


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str | None
    userinfo_endpoint: str | None
    revocation_endpoint: str | None
    device_authorization_endpoint: str | None
    code_challenge_methods: tuple[str, ...] | None
    iss_parameter_supported: bool
    id_token_algs: tuple[str, ...]
    scopes_supported: tuple[str, ...] | None
    # The metadata documents asked for, each with what came of it, to say where kt looked
    # when a capability is missing.
    documents: tuple[str, ...] = ()
    # The provider's own "copy this code" page, a redirect URI for a browser that cannot reach
    # kt's loopback (kt-devserver's `keeptrusts_remote_redirect_uri`; issue 13 item 1).
    remote_redirect_uri: str | None = None
    # RFC 9126 §5: where to push authorization requests, and whether only pushed ones are
    # accepted (flows.authcode.authorize).
    par_endpoint: str | None = None
    par_required: bool = False
    # RFC 8707: the resource (the API URL) to name in this sign-in's requests, None for none;
    # and where the issuer came from when the API's resource metadata (RFC 9728) named it.
    # Both set by signin/provider.py.
    resource: str | None = None
    issuer_source: str | None = None

    def missing(self, member: str) -> str:
        """Why `member` is absent: the documents read and what they answered."""
        where = "; ".join(self.documents) or "the provider metadata"
        return f"neither metadata document lists a {member} (read: {where})"


def check_issuer(issuer: str) -> str:
    """A configured issuer: the transport rule, and no query or fragment (RFC 8414 §2)."""
    parts = check_transport(issuer, "the issuer URL")
    if parts.query or parts.fragment:
        raise UsageError("invalid issuer URL: no query or fragment allowed")
    return issuer


def endpoint(doc: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"the provider metadata has no valid {name}")
    what = f"the provider metadata's {name}"
    if check_transport(value, what, error=ValidationFailed).fragment:
        raise ValidationFailed(f"{what} must not have a fragment")
    return value


def _strings(doc: dict[str, Any], name: str) -> tuple[str, ...] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed(f"the provider metadata's {name} is not a list of strings")
    return tuple(value)


def read_document(body: bytes, issuer: str, *, named_by: str | None = None) -> dict[str, Any]:
    """One metadata document: a JSON object naming exactly the configured issuer (or the one
    `named_by` says named it: "the resource metadata of API lists")."""
    check_size(body, "metadata", "provider metadata document")
    try:
        doc = json_document(body)
    except (ValueError, UnicodeDecodeError):
        raise ServerError("the provider metadata is not JSON") from None
    if not isinstance(doc, dict):
        raise ServerError("the provider metadata is not a JSON object")
    if doc.get("issuer") != issuer:  # byte for byte: no normalisation (ID-01, RFC 8414 §3.3)
        if named_by is not None:
            raise ValidationFailed(
                f"the provider's metadata names a different issuer than the one {named_by}"
                " (RFC 9728 §3.3 / RFC 8414 §3.3): refusing to sign in there",
                hint=f"expected exactly {issuer}",
            )
        raise ValidationFailed(
            "the provider's metadata names a different issuer than the one configured",
            hint=f"expected exactly {issuer}",
        )
    return doc


def parse_metadata(
    body: bytes, issuer: str, *, documents: tuple[str, ...] = ()
) -> ProviderMetadata:
    return metadata_from(read_document(body, issuer), issuer, documents=documents)


def metadata_from(
    doc: dict[str, Any], issuer: str, *, documents: tuple[str, ...] = ()
) -> ProviderMetadata:
    methods = _strings(doc, "code_challenge_methods_supported")
    if methods is not None and "S256" not in methods:
        raise ValidationFailed("the provider does not support PKCE with S256; refusing to sign in")
    auth = endpoint(doc, "authorization_endpoint", required=True)
    token = endpoint(doc, "token_endpoint", required=True)
    assert auth is not None and token is not None
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=auth,
        token_endpoint=token,
        jwks_uri=endpoint(doc, "jwks_uri", required=False),
        userinfo_endpoint=endpoint(doc, "userinfo_endpoint", required=False),
        revocation_endpoint=endpoint(doc, "revocation_endpoint", required=False),
        device_authorization_endpoint=endpoint(
            doc, "device_authorization_endpoint", required=False
        ),
        code_challenge_methods=methods,
        iss_parameter_supported=doc.get("authorization_response_iss_parameter_supported") is True,
        id_token_algs=_strings(doc, "id_token_signing_alg_values_supported") or ("RS256",),
        scopes_supported=_strings(doc, "scopes_supported"),
        documents=documents,
        remote_redirect_uri=_own_page(doc, REMOTE_REDIRECT, issuer),
        par_endpoint=endpoint(doc, "pushed_authorization_request_endpoint", required=False),
        par_required=doc.get("require_pushed_authorization_requests") is True,
    )


REMOTE_REDIRECT = "keeptrusts_remote_redirect_uri"


def _own_page(doc: dict[str, Any], name: str, issuer: str) -> str | None:
    """An endpoint that must be on the issuer's own origin (a page of the provider's), else
    ignored: a redirect elsewhere would hand the code to another site."""
    value = endpoint(doc, name, required=False)
    if value is None or origin(value) != origin(issuer) or urlsplit(value).query:
        return None
    return value


def oauth_metadata_urls(issuer: str) -> list[str]:
    """RFC 8414 §3.1: the well-known segment inserted between host and path; for an issuer
    with a path, also the appended form some providers serve instead."""
    url = httpx2.URL(issuer)
    path = url.path.rstrip("/")
    inserted = str(url.copy_with(path=OAUTH_PATH + path))
    if not path:
        return [inserted]
    return [inserted, issuer.rstrip("/") + OAUTH_PATH]


def discover(issuer: str, *, named_by: str | None = None) -> Flow[ProviderMetadata]:
    """Both metadata documents, each held to the configured issuer, merged: OpenID Connect
    Discovery's first, RFC 8414's filling what it lacks (a provider may list an endpoint such
    as revocation only in one of them). The OpenID document's failure ends discovery unless
    RFC 8414's answers; RFC 8414's absence (404, no answer) is fine. `named_by`: who named the
    issuer when it was not configured (the API's resource metadata), for the refusal's words."""
    check_issuer(issuer)
    read: list[str] = []
    oidc_url = issuer.rstrip("/") + OIDC_PATH
    response = yield httpx2.Request("GET", oidc_url, headers={"Accept": "application/json"})
    oidc = (
        read_document(response.content, issuer, named_by=named_by)
        if response.status_code == 200
        else None
    )
    read.append(oidc_url if oidc is not None else f"{oidc_url} (HTTP {response.status_code})")
    if oidc is None and response.status_code != 404:
        raise ServerError(
            f"could not read the provider metadata of {issuer} (HTTP {response.status_code})"
        )
    oauth: dict[str, Any] | None = None
    for url in oauth_metadata_urls(issuer):
        try:
            answer = yield httpx2.Request("GET", url, headers={"Accept": "application/json"})
        except NetworkError:
            if oidc is None:
                raise
            read.append(f"{url} (no answer)")
            break
        if answer.status_code == 200:
            oauth = read_document(answer.content, issuer, named_by=named_by)
            read.append(url)
            break
        read.append(f"{url} (HTTP {answer.status_code})")
    if oidc is None and oauth is None:
        raise ServerError(f"could not read the provider metadata of {issuer} (HTTP 404)")
    merged = {**(oauth or {}), **{k: v for k, v in (oidc or {}).items() if v is not None}}
    return metadata_from(merged, issuer, documents=tuple(read))
