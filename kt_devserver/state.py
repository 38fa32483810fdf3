"""What every handler needs: the database, the settings and the clock (injected for tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from kt_devserver.db import Database
from kt_devserver.dpop import Guard
from kt_devserver.throttle import Throttle

Clock = Callable[[], float]

DEFAULT_ACCESS_TOKEN_TTL = 900
DEFAULT_REFRESH_TOKEN_TTL = 30 * 24 * 3600
DEFAULT_MFA_TOKEN_TTL = 300
DEFAULT_API_TOKEN_DAYS = 90
MAX_API_TOKEN_DAYS = 365
MAX_MFA_ATTEMPTS = 5
DEFAULT_DEVICE_CODE_TTL = 600
DEFAULT_PAR_REQUEST_TTL = 60  # RFC 9126 §2.2: a pushed request's request_uri lifetime
DEFAULT_DEVICE_INTERVAL = 5
# Sign-in throttling (signin_checks.py): the first wait after the free failures, doubling per
# further failure up to the longest wait (the lockout).
DEFAULT_THROTTLE_BASE_DELAY = 1.0
DEFAULT_THROTTLE_MAX_DELAY = 900.0
# DPoP (RFC 9449, dpop.py): how long a server nonce is current (it is accepted for one more
# period after); 0 asks for no nonces.
DEFAULT_DPOP_NONCE_TTL = 300


@dataclass(frozen=True)
class SsoConfig:
    """An upstream OpenID Connect provider the sign-in page federates to (oauth/sso.py)."""

    issuer: str
    client_id: str
    client_secret: str | None = None
    # Email domains (lower case) whose users belong to the demo organization.
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL
    refresh_token_ttl: int = DEFAULT_REFRESH_TOKEN_TTL
    mfa_token_ttl: int = DEFAULT_MFA_TOKEN_TTL
    # How recent a session's MFA must be for MFA-gated operations; None means any age.
    mfa_max_age: int | None = None
    # RFC 8628: lifetime of a device code / user code pair, and the initial polling interval.
    device_code_ttl: int = DEFAULT_DEVICE_CODE_TTL
    device_interval: int = DEFAULT_DEVICE_INTERVAL
    # False (`--no-device-flow`): the device grant is turned off, as organisations do because it
    # is the favourite phishing path; discovery omits it and its endpoint answers
    # unauthorized_client (issue 13 item 4).
    device_flow: bool = True
    # RFC 9126 (`--par`, `--require-par`): the pushed authorization request endpoint is
    # advertised; required: only pushed requests are accepted, from every client (oauth/pushed.py).
    par: bool = False
    require_par: bool = False
    par_request_ttl: int = DEFAULT_PAR_REQUEST_TTL
    # Federation to a company's OpenID Connect provider; None: password sign-in only.
    sso: SsoConfig | None = None
    # The URL clients reach the server at besides the bound address (`--public-url`): its host is
    # an accepted `Host` (hosts.py) and it is the OAuth issuer. None: only the bound address.
    public_url: str | None = None
    throttle_base_delay: float = DEFAULT_THROTTLE_BASE_DELAY
    throttle_max_delay: float = DEFAULT_THROTTLE_MAX_DELAY
    dpop_nonce_ttl: int = DEFAULT_DPOP_NONCE_TTL


@dataclass(frozen=True)
class State:
    db: Database
    settings: Settings
    clock: Clock
    # Failed password and code attempts per account, user and client address (in memory).
    throttle: Throttle = field(default_factory=Throttle)
    # DPoP's nonce secret and jti replay cache (in memory).
    dpop: Guard = field(default_factory=Guard)


@dataclass
class BaseUrl:
    """The server's base URL as the readiness line prints it (the OAuth issuer), once bound."""

    value: str | None = None


STATE = web.AppKey("kt_devserver.state", State)
BASE_URL = web.AppKey("kt_devserver.base_url", BaseUrl)


def state_of(request: web.Request) -> State:
    return request.app[STATE]
