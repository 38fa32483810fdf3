"""The session kept for one profile: exactly what later commands need, nothing more (ST-06)."""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, fields
from typing import Any, Final, Literal

from .config import DEFAULT_PROFILE, origin
from .errors import StoreError
from .text import run_hint

# Who issued the tokens, so who refreshes and revokes them:
KEEPTRUSTS: Final = "keeptrusts"  # the Keeptrusts API's own password/MFA sign-in (/v1/auth/...)
OAUTH: Final = "oauth"  # an OAuth/OIDC issuer's token endpoint (browser and device sign-ins)
SessionKind = Literal["keeptrusts", "oauth"]


@dataclass(frozen=True, repr=False)
class Session:
    """What we persist for one profile.

    ST-06 allow-list: no password, no mfa_token, no PKCE data. The only key material is a DPoP
    session's private key (`dpop_key`), which the session cannot be used without.

    `api_url` and `issuer` are two different servers that may be one (issue 10 case 8):
    `api_url` is the Keeptrusts API the session was signed in for — every API command of the
    profile talks to it, and its tokens are sent to no other origin (ST-07); `issuer` is the
    OAuth/OIDC provider that issued the tokens (browser and device sign-ins; None for the API's
    own password sign-in), where they are refreshed and revoked. When the issuer is the API
    (same origin), the tokens are API sessions; otherwise they are that provider's
    (`foreign_issuer`), and the issuer is the one the person named (`--issuer` or the
    profile's config), which the next sign-in goes back to. Sessions stored before kt kept the
    two apart recorded a foreign issuer as their API URL too; they are read as sessions whose
    issuer is their API.
    """

    api_url: str  # the Keeptrusts API, e.g. "http://127.0.0.1:8765"; never the foreign issuer
    access_token: str
    refresh_token: str | None
    expires_at: float | None  # absolute epoch seconds; None = unknown
    method: str  # "password" | "mfa" | "browser" | "device"
    kind: SessionKind  # KEEPTRUSTS or OAUTH; an OAUTH session has a token_endpoint
    user_email: str
    user_id: str
    organization: str
    role: str
    scopes: tuple[str, ...]
    mfa_authenticated: bool
    session_id: str | None = None
    refresh_expires_at: float | None = None
    obtained_at: float | None = None
    # OAuth/OIDC sign-ins (browser, device): where to refresh and revoke, and the sign-in the
    # ID token described, which a refreshed ID token must match (OIDC Core §12.2).
    issuer: str | None = None
    client_id: str | None = None
    token_endpoint: str | None = None
    revocation_endpoint: str | None = None
    jwks_uri: str | None = None
    subject: str | None = None
    auth_time: float | None = None
    acr: str | None = None
    # How the identity is named when there is no email (identity.display_name at sign-in).
    display_name: str | None = None
    # The OAuth scope the issuer granted a browser or device sign-in (space-separated: its token
    # response's, else what was asked); `scopes` may instead be the API's own (whoami). None:
    # not an OAuth sign-in, or stored before kt kept it.
    granted_scope: str | None = None
    # RFC 8707: the resource (the API URL) the tokens were asked for, asked again on refresh.
    resource: str | None = None
    # Where the issuer came from when kt found it itself: "resource metadata of <api_url>"
    # (RFC 9728); such an issuer is read from the API again at the next sign-in, not kept.
    issuer_source: str | None = None
    # A DPoP session (RFC 9449, `kt auth login --dpop`): the private JWK its tokens are bound
    # to (kt_login.dpop). As secret as the refresh token: kept with the session in its store,
    # masked in repr, never printed; its thumbprint is what `kt auth status` shows.
    dpop_key: str | None = None

    def __post_init__(self) -> None:
        if self.kind == OAUTH and not self.token_endpoint:
            raise ValueError("an OAuth session without token_endpoint")

    @property
    def foreign_issuer(self) -> str | None:
        """The issuer when it is not the API (another origin): the identity provider the
        person named, whose tokens are its own rather than API sessions. None for a password
        sign-in and for a sign-in at the API's own issuer (the default, which follows the API
        URL rather than being remembered)."""
        if self.issuer is None or origin(self.issuer) == origin(self.api_url):
            return None
        return self.issuer

    def to_json(self) -> str:
        """Compact JSON with sorted keys; a non-finite time is written as unknown (null)."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            elif isinstance(value, tuple):
                value = list(value)
            data[f.name] = value
        return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes, *, profile: str = DEFAULT_PROFILE) -> Session:
        """Parse what `to_json` wrote; anything else raises StoreError, never KeyError/TypeError,
        with the login that replaces it (of `profile`, the profile it was stored for) as hint."""
        corrupt = relogin_hint(profile)
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise StoreError("stored session is corrupt (not valid JSON)", hint=corrupt) from None
        if not isinstance(data, dict):
            raise StoreError("stored session is corrupt (not a JSON object)", hint=corrupt)
        if "kind" not in data:
            # Written before sessions named their kind; OAuth sign-ins always had an endpoint.
            data["kind"] = OAUTH if data.get("token_endpoint") else KEEPTRUSTS
        values: dict[str, Any] = {}
        for f in fields(cls):
            checker = _CHECKS[f.name]
            if f.name not in data:
                if f.name in _OPTIONAL:
                    continue
                raise StoreError(f"stored session is corrupt (no {f.name})", hint=corrupt)
            value = checker(data[f.name])
            if value is _BAD:
                raise StoreError(f"stored session is corrupt (bad {f.name})", hint=corrupt)
            values[f.name] = value
        # Unknown keys (from a newer kt) are dropped rather than rejected.
        try:
            return cls(**values)
        except ValueError as exc:
            raise StoreError(f"stored session is corrupt ({exc})", hint=corrupt) from None

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("access_token", "refresh_token") and value is not None:
                parts.append(f"{f.name}={mask_token(value)!r}")
            elif f.name == "dpop_key" and value is not None:
                parts.append(f"{f.name}='…(redacted)'")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"Session({', '.join(parts)})"


def mask_token(token: str) -> str:
    """Keep only a short non-secret type prefix such as "kta_"."""
    prefix, sep, _ = token.partition("_")
    if sep and 0 < len(prefix) <= 6 and prefix.isalnum():
        return f"{prefix}_…(redacted)"
    return "…(redacted)"


_BAD: Any = object()


def _reject_constant(name: str) -> None:
    raise ValueError(name)


def _str(value: object) -> Any:
    return value if isinstance(value, str) else _BAD


def _nonempty_str(value: object) -> Any:
    return value if isinstance(value, str) and value else _BAD


def _opt_str(value: object) -> Any:
    return value if value is None or isinstance(value, str) else _BAD


def _opt_time(value: object) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _BAD
    try:
        number = float(value)
    except OverflowError:
        return _BAD
    return number if math.isfinite(number) else _BAD


def _kind(value: object) -> Any:
    return value if value in (KEEPTRUSTS, OAUTH) else _BAD


def _bool(value: object) -> Any:
    return value if isinstance(value, bool) else _BAD


def _scopes(value: object) -> Any:
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    return _BAD


_CHECKS = {
    "api_url": _nonempty_str,
    "access_token": _nonempty_str,
    "refresh_token": _opt_str,
    "expires_at": _opt_time,
    "method": _str,
    "kind": _kind,
    "user_email": _str,
    "user_id": _str,
    "organization": _str,
    "role": _str,
    "scopes": _scopes,
    "mfa_authenticated": _bool,
    "session_id": _opt_str,
    "refresh_expires_at": _opt_time,
    "obtained_at": _opt_time,
    "issuer": _opt_str,
    "client_id": _opt_str,
    "token_endpoint": _opt_str,
    "revocation_endpoint": _opt_str,
    "jwks_uri": _opt_str,
    "subject": _opt_str,
    "auth_time": _opt_time,
    "acr": _opt_str,
    "display_name": _opt_str,
    "granted_scope": _opt_str,
    "resource": _opt_str,
    "issuer_source": _opt_str,
    "dpop_key": _opt_str,
}
# A field with a default may be absent from a stored session (it was added later, or it is
# unknown for that sign-in); every other field must be there.
_OPTIONAL = frozenset(f.name for f in fields(Session) if f.default is not MISSING)


def relogin_hint(profile: str) -> str:
    # A login replaces a session that cannot be read (SessionStore.choose_for_login).
    flags = [] if profile == DEFAULT_PROFILE else ["--profile", profile]
    return run_hint("kt", "auth", "login", *flags)
