"""An API's protected resource metadata (RFC 9728): which authorization server signs people in
for it, found from the API alone, with the API's identity checked.

kt asks for it when no issuer is configured (no --issuer, KEEPTRUSTS_ISSUER, profile `issuer`):
the document at the well-known URL built from the API URL (§3.1), else the one a 401 from the
API names in `WWW-Authenticate: Bearer resource_metadata="…"` (§5.1, read by
kt_login.www_authenticate). Its `resource` must be the API URL exactly (§3.3: otherwise the
document describes another resource, and using it would let that one choose kt's authorization
server; it is refused, never used). The authorization server is the configured one or the only
one listed (§2 `authorization_servers`); several need --issuer. Its own metadata must then name
exactly that issuer (flows.discovery, RFC 8414 §3.3), which is the rest of the check.

An API with no such document (404 at the well-known URL and no challenge naming one) is its own
authorization server, as before RFC 9728: `None`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2

from ..config import check_transport
from ..errors import NetworkError, ServerError, UsageError, ValidationFailed
from ..text import run_hint
from ..www_authenticate import MalformedChallenge, find, parse
from . import Flow
from .transport import check_size, json_document

WELL_KNOWN = "/.well-known/oauth-protected-resource"
# Answers at the well-known URL that mean "not published here" (then the 401 challenge is asked).
_NOT_HERE = frozenset({401, 403, 404, 405, 410})
_ASK_ADMIN = (
    "check the API URL (kt config show); if it is right, ask its administrator which issuer to use"
)


@dataclass(frozen=True)
class ResourceMetadata:
    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] | None
    url: str  # where the document was read

    def authorization_server(self, configured: str | None = None) -> str:
        """The issuer to sign in at: `configured` when given, else the only one listed."""
        if configured is not None:
            return configured
        servers = self.authorization_servers
        if len(servers) == 1:
            return servers[0]
        if not servers:
            raise ValidationFailed(
                f"the API {self.resource} lists no authorization server in its resource"
                f" metadata ({self.url})",
                hint=_ASK_ADMIN,
            )
        raise UsageError(
            f"the API {self.resource} lists several authorization servers: "
            + ", ".join(servers)
            + "; choose one with --issuer (or the profile's issuer setting)",
            hint=run_hint("kt", "auth", "login", "--issuer", servers[0]),
        )


def metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: the well-known suffix inserted between the host and the path (a
    terminating slash after the host removed first); the query, if any, kept."""
    url = httpx2.URL(resource)
    path = url.path.rstrip("/") if url.path != "/" else ""
    return str(url.copy_with(path=WELL_KNOWN + path))


def _strings(doc: dict[str, Any], name: str) -> tuple[str, ...] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationFailed(f"the API's resource metadata: {name} is not a list of strings")
    return tuple(value)


def read_metadata(body: bytes, resource: str, *, url: str) -> ResourceMetadata:
    """The document at `url`, which must describe exactly `resource` (§3.3), its authorization
    servers URLs that satisfy the transport rule."""
    check_size(body, "metadata", "API's resource metadata")
    try:
        doc = json_document(body)
    except (ValueError, UnicodeDecodeError):
        raise ServerError(f"the API's resource metadata ({url}) is not JSON") from None
    if not isinstance(doc, dict):
        raise ServerError(f"the API's resource metadata ({url}) is not a JSON object")
    if doc.get("resource") != resource:  # byte for byte: no normalisation (§3.3)
        named = doc.get("resource")
        shown = repr(named[:100]) if isinstance(named, str) else "no resource"
        raise ValidationFailed(
            f"the resource metadata at {url} describes {shown}, not the API {resource}:"
            " refusing it (RFC 9728 §3.3; it would let another resource choose where you sign in)",
            hint=_ASK_ADMIN,
        )
    servers = _strings(doc, "authorization_servers") or ()
    for server in servers:
        check_transport(server, "an authorization server the API lists", error=ValidationFailed)
    return ResourceMetadata(
        resource=resource,
        authorization_servers=servers,
        scopes_supported=_strings(doc, "scopes_supported"),
        url=url,
    )


def challenge_metadata_url(response: httpx2.Response) -> str | None:
    """The resource_metadata a 401's Bearer challenge names (RFC 9728 §5.1), if any; a
    challenge that does not follow the grammar names none."""
    if response.status_code != 401:
        return None
    try:
        bearer = find(parse(response.headers.get_list("www-authenticate")), "Bearer")
    except MalformedChallenge:
        return None
    return bearer.param("resource_metadata") if bearer is not None else None


def discover_resource(api_url: str, *, probe: str | None = None) -> Flow[ResourceMetadata | None]:
    """The API's resource metadata: at the well-known URL; failing that (404), at the URL a 401
    from `probe` (a protected API URL, asked without a credential) names; None if neither."""
    url = metadata_url(api_url)
    response = yield httpx2.Request("GET", url, headers={"Accept": "application/json"})
    if response.status_code == 200:
        return read_metadata(response.content, api_url, url=url)
    if response.status_code not in _NOT_HERE:
        raise ServerError(
            f"could not read the API's resource metadata {url} (HTTP {response.status_code})"
        )
    if probe is None:
        return None
    try:
        challenged = yield httpx2.Request("GET", probe, headers={"Accept": "application/json"})
    except NetworkError:
        return None
    named = challenge_metadata_url(challenged)
    if named is None:
        return None
    check_transport(named, "the resource metadata URL the API names", error=ValidationFailed)
    answer = yield httpx2.Request("GET", named, headers={"Accept": "application/json"})
    if answer.status_code != 200:
        raise ServerError(
            f"could not read the API's resource metadata {named} (HTTP {answer.status_code})"
        )
    return read_metadata(answer.content, api_url, url=named)
