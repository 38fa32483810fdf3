"""Device sign-in (RFC 8628): the code shown to the person, the poll, then the same ID token checks
as the browser sign-in (DV-06)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx2

from ..errors import DeviceFlowUnavailable, OAuthError
from ..flows import drive
from ..flows.device import DeviceAuthorization, poll, request_device_code
from ..flows.discovery import ProviderMetadata
from ..text import run_hint
from .oidc import (
    SignedIn,
    SignInRequest,
    checked_sign_in,
    fetch_keys_early,
    scope_explained,
    scope_to_ask,
)
from .provider import provider_for


def device_sign_in(
    login: SignInRequest,
    *,
    http: httpx2.Client,
    show_code: Callable[[DeviceAuthorization], None],
    on_wait: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> SignedIn:
    """RFC 8628 sign-in: show the code, poll, then the same ID-token checks as the browser flow
    (DV-06); with no nonce in this grant, the ID token's iat must be fresh instead. A token
    response without an ID token is accepted (§3.5: an RFC 6749 §5.1 response): UserInfo says
    who signed in."""
    started = start_device_sign_in(login, http=http)
    show_code(started.authorization)
    return wait_for_approval(
        login, started, http=http, on_wait=on_wait, clock=clock, sleep=sleep, monotonic=monotonic
    )


@dataclass(frozen=True)
class DeviceStarted:
    """A device sign-in waiting for the person: the provider, the scope asked for, the code."""

    meta: ProviderMetadata
    scope: str
    authorization: DeviceAuthorization


def start_device_sign_in(
    login: SignInRequest, *, http: httpx2.Client, meta: ProviderMetadata | None = None
) -> DeviceStarted:
    """Discovery (unless `meta` was discovered already) and the device authorization request
    (the first half of `device_sign_in`, and all of `kt auth login --device --start`)."""
    meta = provider_with_device_grant(login, http=http, meta=meta)
    scope = scope_to_ask(login, meta)
    try:
        with scope_explained(login, scope, meta, method="device"):
            authorization = drive(
                request_device_code(
                    meta.device_authorization_endpoint or "",
                    client_id=login.client_id,
                    scope=scope,
                    issuer=meta.issuer,
                    resource=meta.resource,
                ),
                http,
            )
    except OAuthError as exc:
        if exc.error != "unauthorized_client":
            raise
        # RFC 8628 §3.2 / RFC 6749 §5.2: this client may not use the grant (turned off).
        raise DeviceFlowUnavailable(
            f"{login.issuer} does not allow device sign-in for this client ({exc.provider_said})",
            hint=_DEVICE_HINT,
        ) from None
    return DeviceStarted(meta, scope, authorization)


_DEVICE_HINT = "sign in in a browser (with --no-browser over SSH), or with --email: " + run_hint(
    "kt", "auth", "login", "--browser"
)


def provider_with_device_grant(
    login: SignInRequest, *, http: httpx2.Client, meta: ProviderMetadata | None = None
) -> ProviderMetadata:
    """The issuer's metadata (discovered unless given), which must offer the device grant."""
    if meta is None:
        meta = provider_for(login, http=http)
        fetch_keys_early(meta, http)
    if meta.device_authorization_endpoint is None:
        raise DeviceFlowUnavailable(
            f"{login.issuer} does not offer device sign-in: "
            + meta.missing("device_authorization_endpoint"),
            hint=_DEVICE_HINT,
        )
    return meta


def wait_for_approval(
    login: SignInRequest,
    started: DeviceStarted,
    *,
    http: httpx2.Client,
    on_wait: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> SignedIn:
    """The poll until the person approved (or denied, or the code expired), then the checks
    (the second half of `device_sign_in`, and of `kt auth login --complete`)."""
    meta, scope, authorization = started.meta, started.scope, started.authorization
    try:
        with scope_explained(login, scope, meta, method="device"):
            tokens = drive(
                poll(
                    authorization,
                    token_endpoint=meta.token_endpoint,
                    client_id=login.client_id,
                    resource=meta.resource,
                    dpop=login.dpop,
                ),
                http,
                sleep=sleep,
                monotonic=monotonic,
                on_wait=(lambda w: on_wait(w.remaining or 0.0)) if on_wait is not None else None,
            )
    except OAuthError as exc:
        if exc.error != "unauthorized_client":
            raise
        # RFC 6749 §5.2: this client may not use the grant. kt-devserver says so once the
        # person is known and their organization turned device sign-in off (issue 13 item 4).
        raise DeviceFlowUnavailable(
            f"{login.issuer} does not allow device sign-in for this client or your organization"
            f" ({exc.provider_said})",
            hint=_DEVICE_HINT,
        ) from None
    return checked_sign_in(
        tokens,
        meta,
        scope=scope,
        client_id=login.client_id,
        http=http,
        now=clock(),
        id_token_required=False,
    )
