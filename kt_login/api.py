"""The Keeptrusts API client (httpx2): one place that sends requests and turns replies into errors.

Every call goes through an `httpx2.Client` the caller may hand in (tests bind one to a real local
server or to `httpx2.MockTransport`). Redirects are never followed, so a credential cannot be
carried to another origin (SECURITY.md NT-03, ST-07); the auth classes also refuse to attach a
credential to any request whose origin differs from the one it belongs to.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2

from ._version import __version__
from .config import origin
from .dpop import HEADER as DPOP_HEADER
from .dpop import Prover, Provers
from .errors import (
    EXIT_MFA_REQUIRED,
    ApiError,
    InsufficientScope,
    MfaRequired,
    NotLoggedIn,
    ServerError,
    UsageError,
    ValidationFailed,
)
from .flows import send
from .flows.transport import (
    MAX_LIFETIME,
    check_size,
    json_document,
    read_reply,
    seconds,
    where,
)
from .session import KEEPTRUSTS, Session
from .text import clean, run_hint
from .www_authenticate import Challenge, MalformedChallenge, find, parse

TIMEOUT = httpx2.Timeout(15.0, connect=5.0)
# Who a credential belongs to; asked without one, the API's 401 names its resource metadata
# (RFC 9728 §5.1, signin/provider.py).
WHOAMI_PATH = "/v1/auth/whoami"

# Codes after which the stored session is of no further use.
SESSION_ENDED_CODES = frozenset(
    {"auth.invalid_grant", "auth.token_revoked", "auth.unauthenticated", "auth.token_expired"}
)


# Loopback is never reached through a proxy, whatever NO_PROXY says (SECURITY.md PX-01): an
# `http://` loopback API or provider carries passwords and tokens in clear text, and a proxy has
# no business seeing them. `None` mounts the client's own direct transport for these hosts, and a
# host pattern outranks the scheme-wide ones HTTP(S)_PROXY/ALL_PROXY make.
DIRECT_TO_LOOPBACK: Mapping[str, None] = {
    "all://localhost": None,
    "all://127.0.0.0/8": None,
    "all://[::1]/128": None,
}

log = logging.getLogger(__name__)


def make_http_client(transport: httpx2.BaseTransport | None = None) -> httpx2.Client:
    """The one factory of kt's HTTP clients: no redirects, kt's headers and timeouts, proxies
    from the environment for remote hosts only (PX-01), and `--debug` saying when one is used."""
    try:
        client = _Client(
            timeout=TIMEOUT,
            follow_redirects=False,
            headers={"User-Agent": f"kt-login/{__version__}", "Accept": "application/json"},
            transport=transport,
            mounts=DIRECT_TO_LOOPBACK,
        )
    except ImportError:  # httpx2 wants `socksio` for a socks:// proxy, which kt does not ship
        raise UsageError(
            "the environment names a SOCKS proxy (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY),"
            " which kt does not support",
            hint="unset it, or name an http:// proxy",
        ) from None
    except (OSError, ssl.SSLError) as exc:  # the trust store SSL_CERT_FILE names
        raise _unusable_trust_store(exc) from None

    def say_if_proxied(request: httpx2.Request) -> None:
        if goes_through_proxy(client, str(request.url)):
            log.debug(
                "%s is reached through the proxy set in the environment"
                " (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY)",
                where(request.url),
            )

    client.event_hooks["request"].append(say_if_proxied)
    return client


class _Client(httpx2.Client):
    """httpx2's client whose own transport (the one for every host no proxy serves) is made at
    the first request that needs it (TlsWhenNeeded). Proxies from the environment stay as
    httpx2 makes them: passing `transport=` instead would turn them off."""

    def _init_transport(self, **options: Any) -> httpx2.BaseTransport:  # type: ignore[override]
        named = os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")
        if options.get("transport") is not None or options.get("verify") is not True or named:
            # a trust store the user named is loaded at once, so that a bad one fails every
            # command alike (_unusable_trust_store)
            return super()._init_transport(**options)
        return TlsWhenNeeded({k: v for k, v in options.items() if k != "transport"})


class TlsWhenNeeded(httpx2.BaseTransport):
    """httpx2's HTTPTransport, made when a request first needs it: loading the system's trusted
    certificates costs ~20 ms, which a plain-http request to a loopback API (the only http kt
    allows: config.check_transport) never needs. The plain-http pool's TLS context trusts
    nothing, so it could never complete a handshake if it were ever asked to."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._options = options
        self._tls: httpx2.HTTPTransport | None = None
        self._plain: httpx2.HTTPTransport | None = None
        self._lock = threading.Lock()  # a sign-in fetches the provider's keys in a thread

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        with self._lock:
            if request.url.scheme == "http":
                if self._plain is None:
                    trusts_nothing = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    self._plain = httpx2.HTTPTransport(
                        **{**self._options, "verify": trusts_nothing}
                    )
                transport = self._plain
            else:
                if self._tls is None:
                    self._tls = httpx2.HTTPTransport(**self._options)
                transport = self._tls
        return transport.handle_request(request)

    def close(self) -> None:
        for transport in (self._plain, self._tls):
            if transport is not None:
                transport.close()


def goes_through_proxy(client: httpx2.Client, url: str) -> bool:
    """Whether `client` (from make_http_client) sends a request for `url` through a proxy the
    environment names: never for loopback (DIRECT_TO_LOOPBACK), else as HTTP(S)_PROXY,
    ALL_PROXY and NO_PROXY say."""
    return client._transport_for_url(httpx2.URL(url)) is not client._transport


def _unusable_trust_store(exc: OSError | ssl.SSLError) -> UsageError:
    """SSL_CERT_FILE (which kt's TLS reads, like OpenSSL) names no file of certificates."""
    path = os.environ.get("SSL_CERT_FILE", "")
    why = (
        exc.strerror or type(exc).__name__
        if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError)
        else "no certificate in it"
    )
    return UsageError(
        f"SSL_CERT_FILE names {clean(path)!r}, which kt cannot use as its trusted certificates "
        f"({why})",
        hint="point SSL_CERT_FILE at a PEM file of CA certificates, or run: unset SSL_CERT_FILE",
    )


def same_origin(url: str | httpx2.URL, base: str) -> bool:
    return origin(str(url)) == origin(base)


def authorize(request: httpx2.Request, access_token: str, prover: Prover | None) -> None:
    """`Authorization: Bearer <token>`, or for a DPoP-bound token `Authorization: DPoP <token>`
    with a fresh proof of its key (RFC 9449 §7.1)."""
    if prover is None:
        request.headers.pop(DPOP_HEADER, None)
        request.headers["Authorization"] = f"Bearer {access_token}"
    else:
        prover.sign(request, access_token=access_token)


def _nonce_asked(response: httpx2.Response, prover: Prover | None) -> bool:
    """A resource's reply read for the nonce it names; True when it refused the proof for the
    want of that nonce (use_dpop_nonce, RFC 9449 §9), so the request is sent once more."""
    if prover is None:
        return False
    if response.status_code == 401:
        read_reply(response)  # capped, unlike httpx2's `requires_response_body` (NT-05)
    return prover.learn(response)


class BearerAuth(httpx2.Auth):
    """A fixed credential (an API token, or a new session's access token) bound to one origin;
    with `dpop`, the access token is DPoP-bound and sent with a proof of that key."""

    def __init__(self, token: str, api_url: str, *, dpop: Prover | None = None) -> None:
        self._token = token
        self._api_url = api_url
        self._dpop = dpop

    def __repr__(self) -> str:
        return f"BearerAuth(api_url={self._api_url!r}, token=<redacted>)"

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        if not same_origin(request.url, self._api_url):
            raise ValidationFailed(
                f"refusing to send the API token to {request.url.scheme}://{request.url.netloc.decode()}:"
                f" it belongs to {self._api_url}"
            )
        authorize(request, self._token, self._dpop)
        response = yield request
        if _nonce_asked(response, self._dpop):
            authorize(request, self._token, self._dpop)
            yield request


class SessionAuth(httpx2.Auth):
    """The stored session's access token, refreshed before it expires and once on a 401.

    `current` returns a session whose access token is fresh (refreshing if needed); `refresh`
    forces a refresh of the given (stale) session. Both come from `refresh.SessionKeeper`, and
    so does `provers`, the Prover of a DPoP session's key (RFC 9449): its requests carry a proof
    and are sent once more with the nonce a server asks for.
    """

    def __init__(
        self,
        current: Callable[[], Session],
        refresh: Callable[[Session], Session],
        *,
        provers: Provers | None = None,
    ) -> None:
        self._current = current
        self._refresh = refresh
        self._provers = provers or Provers()

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        session = self._current()
        self._attach(request, session)
        response = yield request
        if _nonce_asked(response, self._provers(session.dpop_key)):
            self._attach(request, session)
            response = yield request
            _nonce_asked(response, self._provers(session.dpop_key))
        # Expiry unknown, clocks disagree or the access token was revoked: the server is the
        # judge. Refresh once and retry; a refused refresh clears the session (LC-04).
        if response.status_code != 401:
            return
        read_reply(response)  # capped, unlike httpx2's `requires_response_body` (NT-05)
        if _error_code(response) in SESSION_ENDED_CODES:
            session = self._refresh(session)
            self._attach(request, session)
            yield request

    def _attach(self, request: httpx2.Request, session: Session) -> None:
        if not same_origin(request.url, session.api_url):
            raise ValidationFailed(
                f"refusing to send the session to {request.url.scheme}://"
                f"{request.url.netloc.decode()}: it belongs to {session.api_url}"
            )
        authorize(request, session.access_token, self._provers(session.dpop_key))


def _error_code(response: httpx2.Response) -> str | None:
    try:
        body = json_document(response.content)
    except ValueError:
        return None
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else None


class ApiClient:
    """The first-party API under `api_url`: typed calls, each the one place its path is written.

    `request` is the generic call under them: it returns a decoded JSON object or raises the
    matching KtError.
    """

    def __init__(
        self, api_url: str, http: httpx2.Client, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.api_url = api_url
        self.http = http
        self.clock = clock
        self.tokens = TokensApi(self)

    def login(self, email: str, password: str) -> Session:
        """A password sign-in; MfaRequired (with its mfa_token) when the account has MFA."""
        reply = self.request("POST", "/v1/auth/login", body={"email": email, "password": password})
        return self._session(reply, method="password")

    def mfa_challenge(self, mfa_token: str, code: str) -> Session:
        reply = self.request(
            "POST", "/v1/auth/mfa/challenge", body={"mfa_token": mfa_token, "code": code}
        )
        return self._session(reply, method="mfa")

    def refresh(self, refresh_token: str, *, method: str) -> Session:
        """The session a refresh token is traded for; `method` is how the session began."""
        reply = self.request("POST", "/v1/auth/refresh", body={"refresh_token": refresh_token})
        return self._session(reply, method=method)

    def logout(self, auth: httpx2.Auth, refresh_token: str | None) -> None:
        body = {"refresh_token": refresh_token} if refresh_token else {}
        self.request("POST", "/v1/auth/logout", body=body, auth=auth)

    def whoami(self, auth: httpx2.Auth) -> Account:
        return Account.from_reply(self.request("GET", WHOAMI_PATH, auth=auth))

    def _session(self, reply: dict[str, Any], *, method: str) -> Session:
        return session_from_reply(reply, api_url=self.api_url, method=method, now=self.clock())

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        auth: httpx2.Auth | None = None,
    ) -> dict[str, Any]:
        request = self.http.build_request(method, self.api_url + path, json=body)
        response = send(
            self.http,
            request,
            auth=auth,
            server=f"the Keeptrusts API at {self.api_url}",
        )
        return decode_reply(response, self.api_url)


# A token as the API describes it (id, name, scopes, state, times, prefix); never its secret.
TokenInfo = dict[str, Any]


@dataclass(frozen=True, repr=False)
class IssuedToken:
    """A token just created or rotated: its secret, shown once; `revoked` is the one it replaced."""

    secret: str
    token: TokenInfo
    revoked: TokenInfo | None = None

    def __repr__(self) -> str:
        return f"IssuedToken(token={self.token!r}, secret=<redacted>)"


class TokensApi:
    """Scoped API tokens (`/v1/auth/tokens`)."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def create(
        self, auth: httpx2.Auth, *, name: str, scopes: list[str], expires_in_days: int
    ) -> IssuedToken:
        body = {"name": name, "scopes": scopes, "expires_in_days": expires_in_days}
        return _issued(self._api.request("POST", "/v1/auth/tokens", body=body, auth=auth))

    def list(self, auth: httpx2.Auth) -> list[TokenInfo]:
        tokens = self._api.request("GET", "/v1/auth/tokens", auth=auth).get("tokens")
        if not isinstance(tokens, list):
            raise ServerError("the API reply has no token list")
        return [t for t in tokens if isinstance(t, dict)]

    def revoke(self, auth: httpx2.Auth, token_id: str) -> TokenInfo:
        path = f"/v1/auth/tokens/{token_path_segment(token_id)}"
        return _dict(self._api.request("DELETE", path, auth=auth).get("token"))

    def rotate(
        self, auth: httpx2.Auth, token_id: str, *, expires_in_days: int | None = None
    ) -> IssuedToken:
        """The token replaced by a new one with the same name and scopes, living as long as the
        old one was made to, or `expires_in_days`."""
        path = f"/v1/auth/tokens/{token_path_segment(token_id)}/rotate"
        body = None if expires_in_days is None else {"expires_in_days": expires_in_days}
        return _issued(self._api.request("POST", path, body=body, auth=auth))


def token_path_segment(token_id: str) -> str:
    if not token_id or any(c in token_id for c in "/?#%") or token_id in (".", ".."):
        raise UsageError(f"invalid token id {clean(token_id)!r}")
    return token_id


def _issued(reply: dict[str, Any]) -> IssuedToken:
    secret = reply.get("secret")
    if not isinstance(secret, str) or not secret:
        raise ServerError("the API did not return the new token's secret")
    revoked = reply.get("revoked")
    return IssuedToken(
        secret=secret,
        token=_dict(reply.get("token")),
        revoked=revoked if isinstance(revoked, dict) else None,
    )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Account:
    """Who a credential belongs to, as whoami answers; None where the reply says nothing."""

    user_id: str | None
    email: str | None
    name: str | None
    organization: str | None
    role: str | None
    scopes: tuple[str, ...]
    mfa_authenticated: bool
    auth_method: str | None
    # The reply as the server sent it, for `whoami --json`.
    reply: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> Account:
        user = _dict(reply.get("user"))
        org = _dict(reply.get("organization"))
        scopes = reply.get("scopes")
        return cls(
            user_id=_text(user.get("id")),
            email=_text(user.get("email")),
            name=_text(user.get("name")),
            organization=_text(org.get("name")),
            role=_text(reply.get("role")),
            scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else (),
            mfa_authenticated=reply.get("mfa_authenticated") is True,
            auth_method=_text(reply.get("auth_method")),
            reply=reply,
        )


def decode_reply(response: httpx2.Response, api_url: str) -> dict[str, Any]:
    """A 2xx JSON object, or the matching KtError for anything else: from the JSON error body
    and, beside it, the reply's `WWW-Authenticate: Bearer` challenge (RFC 9470 step-up, RFC 6750
    insufficient_scope), which says what sign-in or scope the operation needs."""
    status = response.status_code
    if 300 <= status < 400:
        raise ServerError(f"the API answered with a redirect ({status}); kt does not follow them")
    check_size(response.content, "api", f"API reply ({len(response.content)} bytes)")
    try:
        body = json_document(response.content)
    except ValueError:
        body = None
    if 200 <= status < 300:
        if not isinstance(body, dict):
            raise ServerError(f"the API at {api_url} sent a reply that is not a JSON object")
        return body
    err: dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
    bearer = bearer_challenge(response) if status in (401, 403) else None
    said = bearer.param("error") if bearer is not None else None
    if status >= 500 or (not err and said is None):
        raise ServerError(f"the API at {api_url} failed (HTTP {status})")
    code = str(err.get("code", "auth.unknown"))
    described = bearer.param("error_description") if bearer is not None else None
    message = clean(err.get("message") or described or code)
    if status == 401 and said == "insufficient_user_authentication" and bearer is not None:
        token = err.get("mfa_token")
        raise MfaRequired(
            message,
            mfa_token=token if isinstance(token, str) else None,
            acr_values=bearer.param("acr_values") or "",
            max_age=_max_age(bearer.param("max_age")),
        )
    if code == "auth.mfa_required":
        token = err.get("mfa_token")
        raise MfaRequired(message, mfa_token=token if isinstance(token, str) else None)
    if status == 401 and code in SESSION_ENDED_CODES:
        ended = NotLoggedIn(message, hint=run_hint("kt", "auth", "login"))
        ended.code = clean(code)
        raise ended
    if status == 403 and said == "insufficient_scope" and bearer is not None:
        needed = " ".join(clean(bearer.param("scope") or "").split())
        if needed:
            code = code if err else "auth.insufficient_scope"
            raise InsufficientScope(message, code=clean(code), scope=needed)
    error = ApiError(message, code=clean(code), status=status)
    if code == "auth.invalid_mfa_code":
        error.exit_code = EXIT_MFA_REQUIRED  # still waiting for a good code: same token, try again
    raise error


def bearer_challenge(response: httpx2.Response) -> Challenge | None:
    """The reply's Bearer challenge, from all its WWW-Authenticate fields; a header that breaks
    the RFC 9110 grammar is not acted on (as if absent), the JSON body still counts."""
    try:
        return find(parse(response.headers.get_list("www-authenticate")), "bearer")
    except MalformedChallenge as exc:
        log.debug("ignoring the API's malformed WWW-Authenticate header: %s", exc)
        return None


def _max_age(value: str | None) -> int | None:
    """RFC 9470 max_age: whole seconds, 0 included; absent, not a number or beyond any sane
    lifetime (NU-01) reads as not given."""
    if value is None or not value.isdigit() or len(value) > 12 or int(value) > MAX_LIFETIME:
        return None
    return int(value)


def session_from_reply(reply: dict[str, Any], *, api_url: str, method: str, now: float) -> Session:
    """The Session a login, MFA challenge or refresh reply describes (SECURITY.md ID-08 rules)."""
    access = reply.get("access_token")
    token_type = reply.get("token_type", "Bearer")
    if not isinstance(access, str) or not access:
        raise ServerError("the API's session reply has no access token")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise ServerError("the API's session reply has an unsupported token type")
    refresh = reply.get("refresh_token")
    account = Account.from_reply(reply)  # a session reply describes its account as whoami does
    return Session(
        api_url=api_url,
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=_absolute(reply.get("expires_in"), "session's expires_in", now),
        refresh_expires_at=_absolute(
            reply.get("refresh_expires_in"), "session's refresh_expires_in", now
        ),
        method=method,
        kind=KEEPTRUSTS,
        user_email=account.email or "",
        user_id=account.user_id or "",
        organization=account.organization or "",
        role=account.role or "",
        scopes=account.scopes,
        mfa_authenticated=account.mfa_authenticated,
        session_id=str(reply["session_id"]) if reply.get("session_id") else None,
        obtained_at=now,
    )


def _absolute(value: object, what: str, now: float) -> float | None:
    """`expires_in` as an absolute time; missing or nonsense means unknown (ID-08), a number
    beyond any sane lifetime is refused (NU-01)."""
    lifetime = seconds(value, what, most=MAX_LIFETIME)
    return None if lifetime is None else now + lifetime
