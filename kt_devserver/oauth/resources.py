"""Resource indicators (RFC 8707): which API the tokens of a request are for.

This authorization server issues tokens for one resource, its own API, whose identifier is the
server's base URL (the issuer; resource_metadata.py publishes it as `resource`). A request may
name it with `resource` (§2: an absolute URI without a fragment); any other value, or several
different ones, is refused with `invalid_target`. A request naming none gets the same resource
by default, so every grant's access tokens have an audience: the API, which refuses tokens
granted for another (auth.py).

Where it is asked:
- the authorization request (§2.1) and the device authorization request: `requested`, kept
  with the code or the device code;
- the token request (§2.2) for a code, a device code or a refresh token: `same_as_granted` —
  it may repeat the granted resource, never widen or move it.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error  # type: ignore[import-untyped]

from kt_devserver.oauth.request import KtRequest

RESOURCE = "resource"


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 §2: the requested resource is invalid, missing, unknown, or malformed."""

    error = "invalid_target"
    status_code = 400


def _named(request: KtRequest) -> set[str]:
    return set(request.payload.datalist.get(RESOURCE, []))


def requested(
    request: KtRequest, *, redirect_uri: str | None = None, state: str | None = None
) -> str:
    """The resource an authorization (or device authorization) request is for: the one it names,
    which must be this server's API, else that API by default. `redirect_uri`/`state`: where an
    authorization request's refusal is sent."""
    named = _named(request)
    api = request.issuer
    if not named or named == {api}:
        return api
    if len(named) > 1:
        why = "Several resources were requested; this server issues tokens for one: its API"
    else:
        why = "Unknown resource; this server issues tokens only for its API"
    raise InvalidTargetError(f"{why} ({api}).", redirect_uri=redirect_uri, state=state)


def same_as_granted(request: KtRequest, granted: str | None) -> str:
    """The resource of a token request for a grant made for `granted` (None: granted before
    resources were kept, i.e. this API): a `resource` it names must be that one."""
    resource = granted or request.issuer
    named = _named(request)
    if named and named != {resource}:
        raise InvalidTargetError(
            f"The resource requested is not the one this grant is for ({resource})."
        )
    return resource
