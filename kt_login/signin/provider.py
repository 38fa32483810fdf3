"""Which identity provider a browser or device sign-in goes to, and what it is asked for there.

With an issuer configured (--issuer, the profile's `issuer`, the one named at the last sign-in)
that issuer's metadata (flows.discovery). Without one, the API says (RFC 9728): its protected
resource metadata (flows.resource), which must describe exactly the API URL, names the
authorization server — the only one it lists (several: the person chooses with --issuer) — whose
own metadata must then name exactly that issuer. An API that publishes none is its own issuer,
as before.

RFC 8707: the API URL is sent as `resource` (authorization, device authorization, token and
refresh requests) when the API's metadata led to the provider (the API is a protected resource of
that provider, and wants tokens for itself), or when the profile says `send_resource = true`;
never with `send_resource = false` (providers that refuse the parameter). No standard metadata
says a provider supports resource indicators, so kt does not guess from the provider's own.
"""

from __future__ import annotations

import dataclasses

import httpx2

from ..api import WHOAMI_PATH
from ..config import resource_metadata_source
from ..flows import drive
from ..flows.discovery import ProviderMetadata, discover
from ..flows.resource import discover_resource
from .oidc import SignInRequest


def provider_for(login: SignInRequest, *, http: httpx2.Client) -> ProviderMetadata:
    """The provider's metadata, with the RFC 8707 `resource` kt sends it (or None) and, when the
    API's metadata chose it, where its issuer came from (`issuer_source`)."""
    issuer, resource, source = login.issuer, None, None
    if login.issuer_from_api:
        found = drive(discover_resource(login.api_url, probe=login.api_url + WHOAMI_PATH), http)
        if found is not None:
            issuer = found.authorization_server()
            resource, source = login.api_url, resource_metadata_source(login.api_url)
    named_by = f"the resource metadata of {login.api_url} lists" if source else None
    meta = drive(discover(issuer, named_by=named_by), http)
    if login.send_resource is not None:
        resource = login.api_url if login.send_resource else None
    return dataclasses.replace(meta, resource=resource, issuer_source=source)
