"""Device Authorization Grant (RFC 8628) for machines without a usable browser.

`request_device_code` is a flow like the others; `poll` is one that also yields `Wait`s, so the
driver does the sleeping and tests step it without real time. Polling follows §3.4/§3.5 exactly
(SECURITY.md DV-01, DV-02): wait `interval` (5 s when absent or nonsense) before every poll, +5 s
for this and every later poll on `slow_down`, keep going on `authorization_pending`, stop on
anything else, double the wait after a connection failure (the driver throws the NetworkError
in), and stop at `expires_in` by the driver's monotonic clock without ever starting a second
authorization.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx2

from ..dpop import Prover
from ..errors import KtError, NetworkError, OAuthError, ServerError, ValidationFailed
from ..text import clean, run_hint
from . import Flow, Wait, WaitingFlow
from .authcode import safe_browser_url
from .tokens import FORM, TokenResponse, json_reply, parse_token_response, token_request
from .transport import json_document, seconds

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0
MAX_BACKOFF = 60.0  # the longest wait a connection failure grows to (never below `interval`)
MAX_INTERVAL = 3600.0  # an hour between polls: a longer `interval` is absurd, and capped
MAX_EXPIRES_IN = 86400.0  # a device code that lasts longer than a day is not meant
MAX_USER_CODE = 32


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str = field(repr=False)  # a secret: never printed, logged or stored (DV-04)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float  # what kt waits between polls
    interval_capped: bool = False  # the server asked for more than MAX_INTERVAL


def request_device_code(
    endpoint: str, *, client_id: str, scope: str, issuer: str, resource: str | None = None
) -> Flow[DeviceAuthorization]:
    """`resource`: the API the tokens are for (RFC 8707 §2), when kt names one."""
    data = {"client_id": client_id, "scope": scope}
    if resource is not None:
        data["resource"] = resource
    response = yield httpx2.Request("POST", endpoint, headers=FORM, data=data)
    return parse_device_authorization(json_reply(response, "device authorization endpoint"), issuer)


def parse_device_authorization(body: dict[str, object], issuer: str) -> DeviceAuthorization:
    device_code, user_code = body.get("device_code"), body.get("user_code")
    uri, complete = body.get("verification_uri"), body.get("verification_uri_complete")
    if not isinstance(device_code, str) or not device_code:
        raise ServerError("the device authorization reply has no device_code")
    if not isinstance(user_code, str) or not user_code or len(user_code) > MAX_USER_CODE:
        raise ValidationFailed("the device authorization reply has no usable user_code")
    if clean(user_code) != user_code or not user_code.isprintable():
        raise ValidationFailed("the user code contains control characters; refusing to show it")
    if not isinstance(uri, str):
        raise ServerError("the device authorization reply has no verification_uri")
    # Shown to a person and encoded in a QR code: the same rules as a URL we open (DV-03, AZ-08).
    verification_uri = safe_browser_url(uri, issuer)
    verification_complete = (
        safe_browser_url(complete, issuer) if isinstance(complete, str) and complete else None
    )
    expires = seconds(body.get("expires_in"), "device code's expires_in", most=MAX_EXPIRES_IN)
    if expires is None:
        raise ServerError("the device authorization reply has no valid expires_in")
    interval = _interval(body.get("interval"))
    return DeviceAuthorization(
        device_code=device_code,
        user_code=user_code,
        verification_uri=verification_uri,
        verification_uri_complete=verification_complete,
        expires_in=expires,
        interval=min(interval, MAX_INTERVAL),
        interval_capped=interval > MAX_INTERVAL,
    )


def _interval(value: object) -> float:
    """The server's `interval`, honoured however long (§3.5; capped only by the caller, past
    MAX_INTERVAL); 5 s when absent or nonsense."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return DEFAULT_INTERVAL
    return float(min(value, 2 * MAX_INTERVAL))


def poll(
    auth: DeviceAuthorization,
    *,
    token_endpoint: str,
    client_id: str,
    resource: str | None = None,
    dpop: Prover | None = None,
) -> WaitingFlow[TokenResponse]:
    """Poll until the person approves (tokens), denies, or the code expires (OAuthError);
    `resource` (RFC 8707 §2.2) named in each poll when kt names one. With `dpop`, each poll
    carries a fresh proof (RFC 9449 §5) and the tokens must be DPoP tokens; a use_dpop_nonce
    answer is polled again at once, with the nonce."""
    data = {"grant_type": GRANT_TYPE, "device_code": auth.device_code, "client_id": client_id}
    if resource is not None:
        data["resource"] = resource
    interval = auth.interval
    wait = interval
    elapsed = 0.0
    last = "no answer to a poll"
    while True:
        remaining = auth.expires_in - elapsed
        if remaining <= 0 or wait > remaining:
            raise _expired(auth, last)
        waited = yield Wait(wait, remaining=remaining)
        assert isinstance(waited, float | int)
        elapsed = float(waited)
        if elapsed > auth.expires_in:
            raise _expired(auth, last)
        try:
            response = yield from token_request(token_endpoint, data, dpop=dpop)
        except NetworkError:
            wait = max(interval, min(wait * 2, MAX_BACKOFF))  # §3.5: back off on timeouts
            last = "no answer to the last poll"
            continue
        assert isinstance(response, httpx2.Response)
        if response.status_code == 200:
            return parse_token_response(response, dpop=dpop)
        try:
            error = json_document(response.content).get("error")
        except (ValueError, AttributeError):
            error = None
        # Only the RFC's answer (HTTP 400, RFC 6749 §5.2) keeps the wait going; anything else
        # ends it with the provider's words, never a retry loop (issue 10, case 9).
        if response.status_code == 400 and error == "authorization_pending":
            wait = interval
            last = "the provider answered authorization_pending to the last poll"
        elif response.status_code == 400 and error == "slow_down":
            interval += SLOW_DOWN_STEP
            wait = interval
            last = "the provider answered slow_down to the last poll"
        else:
            raise _poll_refused(response)


# What RFC 8628 §3.5 and RFC 6749 §5.2 define; any other answer means the provider will not
# finish this device sign-in, most often because the client may not use the device grant.
_RFC_POLL_ERRORS = frozenset(
    {"access_denied", "expired_token", "server_error", "temporarily_unavailable", "invalid_scope"}
)
_NOT_ALLOWED_HINT = (
    "the provider may not allow this client the device grant; sign in in a browser instead "
    "(with --no-browser over SSH): " + run_hint("kt", "auth", "login", "--browser")
)


def _poll_refused(response: httpx2.Response) -> KtError:
    try:
        parse_token_response(response)
    except OAuthError as exc:
        if exc.error in _RFC_POLL_ERRORS and response.status_code == 400:
            return exc
        return OAuthError(
            exc.error,
            meaning="the identity provider ended the device sign-in",
            said=f"HTTP {response.status_code}; {exc.provider_said}",
            hint=_NOT_ALLOWED_HINT,
        )
    except ServerError as exc:
        exc.hint = _NOT_ALLOWED_HINT
        return exc
    return ServerError("the token endpoint answered the device poll unexpectedly")


def _expired(auth: DeviceAuthorization, last: str) -> OAuthError:
    return OAuthError(
        "expired_token",
        said=f"not approved within {int(auth.expires_in)} s; {last}",
        hint=run_hint("kt", "auth", "login", "--device"),
    )
