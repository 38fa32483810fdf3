"""ID token validation (OpenID Connect Core §3.1.3.7, §12.2) with joserfc; the clock is injected.

`validate_id_token` is the one entry point, for a sign-in (browser or device), a refresh and
kt-devserver's SSO alike: one leeway (LEEWAY), one algorithm allow-list (ALLOWED_ALGS).

Signature: only keys from the validated `jwks_uri`, never from token headers (jku/x5u/jwk/x5c);
an explicit asymmetric algorithm allow-list, so no `none` and no HS* for a public client (ID-03).
Claims: iss exact, aud/azp, exp/iat with a bounded leeway, sub, nonce, auth_time/acr when asked
for (ID-04, AZ-03, LC-07). Keys: cached per process, refetched once on an unknown `kid`, at most
once a minute; keys that do not parse are ignored (ID-05).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2

from .errors import ServerError, ValidationFailed
from .flows import Flow, drive
from .flows.transport import check_size, json_document
from .text import run_hint

# The one algorithm allow-list: asymmetric only, so no `none` and no HS* keyed with a public key.
ALLOWED_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KTY_FOR_ALG = {"R": "RSA", "P": "RSA", "E": "EC"}
LEEWAY = 120.0  # the one clock-skew allowance, for every time claim
MAX_IAT_AGE = 600.0
REFETCH_INTERVAL = 60.0


@dataclass(frozen=True)
class IdClaims:
    iss: str
    sub: str
    aud: tuple[str, ...]
    exp: float
    iat: float
    azp: str | None = None
    nonce: str | None = field(default=None, repr=False)
    auth_time: float | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    email: str | None = None
    email_verified: bool | None = None
    name: str | None = None
    preferred_username: str | None = None


# How every refusal of a token begins (kt-devserver's token exchange restates the reason).
INVALID = "the ID token is not valid: "


def _invalid(why: str) -> ValidationFailed:
    return ValidationFailed(INVALID + why, hint=run_hint("kt", "auth", "login"))


def parse_jwks(body: bytes) -> list[Any]:
    """The usable signing keys of a JWKS document; unparseable or unknown keys are skipped."""
    from joserfc.errors import JoseError
    from joserfc.jwk import JWKRegistry

    check_size(body, "jwks", "provider's key set")
    try:
        doc = json_document(body)
    except (ValueError, UnicodeDecodeError):
        raise ServerError("the provider's key set is not JSON") from None
    raw_keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(raw_keys, list):
        raise ServerError("the provider's key set has no keys")
    keys = []
    for raw in raw_keys:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        if raw.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if any(k in raw for k in ("d", "p", "q", "k")):
            continue  # a private or symmetric key has no business in a public key set
        try:
            keys.append(JWKRegistry.import_key(raw))
        except (JoseError, ValueError, TypeError, KeyError):
            continue
    return keys


def fetch_jwks(jwks_uri: str) -> Flow[list[Any]]:
    response = yield httpx2.Request("GET", jwks_uri, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise ServerError(f"could not fetch the provider's keys (HTTP {response.status_code})")
    return parse_jwks(response.content)


class KeyCache:
    """The provider's keys, fetched on first use and again (rate-limited) for an unknown kid."""

    def __init__(
        self,
        fetch: Callable[[], list[Any]],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._monotonic = monotonic
        self._keys: list[Any] | None = None
        self._refetched_at: float | None = None
        self._lock = threading.Lock()  # one fetch at a time: see fetch_in_background
        self._background: threading.Thread | None = None

    def keys(self, *, refetch: bool = False) -> list[Any]:
        background = self._background
        if background is not None and background is not threading.current_thread():
            background.join()  # its fetch is this one; and nothing it started outlives the check
        with self._lock:
            if self._keys is None:
                self._keys = self._fetch()
            elif refetch:
                now = self._monotonic()
                if self._refetched_at is None or now - self._refetched_at >= REFETCH_INTERVAL:
                    self._refetched_at = now
                    self._keys = self._fetch()
            return self._keys

    def fetch_in_background(self, *then: Callable[[], object]) -> None:
        """Fetch the keys now, and import what checks a signature, in a daemon thread (issue
        16: while the person is still at the provider), then run `then` there too. `keys()`
        waits for that fetch; if it failed, `keys()` fetches again itself, so the check meets
        and reports the failure."""

        def fetch() -> None:
            # Anything that goes wrong is met again, and reported, by the check itself; a
            # thread must never print a traceback of its own.
            with contextlib.suppress(Exception):
                from joserfc import jws  # noqa: F401 - imported now for verify_signature

                self.keys()
            for step in then:
                with contextlib.suppress(Exception):
                    step()

        self._background = threading.Thread(target=fetch, name="kt-provider-keys", daemon=True)
        self._background.start()


def provider_keys(jwks_uri: str, http: httpx2.Client) -> KeyCache:
    """The provider's keys from `jwks_uri`, fetched over `http` when first needed. (Async callers
    fetch a key set with `await adrive(fetch_jwks(jwks_uri), client)` and pass it as it is.)"""
    return KeyCache(lambda: drive(fetch_jwks(jwks_uri), http))


def _b64_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json_document(base64.urlsafe_b64decode(padded.encode("ascii")))


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise _invalid("not a signed JWT")  # JWE (5 parts) and anything else
    try:
        header = _b64_json(parts[0])
    except (ValueError, UnicodeDecodeError, TypeError):
        raise _invalid("its header does not decode") from None
    if not isinstance(header, dict):
        raise _invalid("its header is not an object")
    return header


# Where a signature's keys come from: a KeyCache (refetched on an unknown kid), or a key set the
# caller has just fetched (with `adrive`, say), used as it is.
Keys = KeyCache | Sequence[Any]


def _key_list(keys: Keys, *, refetch: bool = False) -> list[Any]:
    if isinstance(keys, KeyCache):
        return keys.keys(refetch=refetch)
    return list(keys)


def _candidates(keys: list[Any], kid: object, alg: str) -> list[Any]:
    kty = "OKP" if alg == "EdDSA" else _KTY_FOR_ALG[alg[0]]
    matching = [k for k in keys if k.key_type == kty]
    if isinstance(kid, str):
        return [k for k in matching if k.kid == kid]
    return matching


def verify_signature(token: str, keys: Keys, allowed_algs: Iterable[str]) -> dict[str, Any]:
    """The verified payload. Only `kid` and `alg` are read from the header."""
    from joserfc import jws
    from joserfc.errors import JoseError

    header = _header(token)
    alg = header.get("alg")
    allowed = ALLOWED_ALGS.intersection(allowed_algs)
    if not isinstance(alg, str) or alg not in allowed:
        raise _invalid(f"algorithm {str(alg)[:16]!r} is not allowed")
    kid = header.get("kid")
    candidates = _candidates(_key_list(keys), kid, alg)
    if not candidates and isinstance(keys, KeyCache):
        candidates = _candidates(_key_list(keys, refetch=True), kid, alg)
    if not candidates:
        raise _invalid("no key of the provider matches it")
    for key in candidates:
        try:
            obj = jws.deserialize_compact(token, key, algorithms=[alg])
        except JoseError:
            continue
        try:
            payload = json_document(obj.payload)
        except (ValueError, UnicodeDecodeError):
            raise _invalid("its payload is not JSON") from None
        if not isinstance(payload, dict):
            raise _invalid("its payload is not an object")
        return payload
    raise _invalid("the signature does not verify")


_MAX_TIME = 1e11  # seconds since the epoch: year 5138; a larger time is nonsense


def _number(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"{name} is missing or not a number")
    if not -_MAX_TIME < value < _MAX_TIME:  # finite already (json_document); sane too (NU-01)
        raise _invalid(f"{name} is out of range")
    return float(value)


def _text(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) else None


def check_claims(
    claims: dict[str, Any],
    *,
    issuer: str,
    client_id: str,
    now: float,
    nonce: str | None,
    max_age: int | None = None,
    acr_values: Sequence[str] = (),
) -> IdClaims:
    if claims.get("iss") != issuer:
        raise _invalid("it was issued by another issuer")
    aud = claims.get("aud")
    audiences = (aud,) if isinstance(aud, str) else aud
    if not isinstance(audiences, list | tuple) or not all(isinstance(a, str) for a in audiences):
        raise _invalid("aud is missing")
    if client_id not in audiences:
        raise _invalid("it was issued for another client")
    if set(audiences) != {client_id}:
        raise _invalid("it is also meant for other audiences")
    azp = _text(claims, "azp")
    if "azp" in claims and azp != client_id:
        raise _invalid("azp names another client")
    sub = _text(claims, "sub")
    if not sub:
        raise _invalid("sub is missing")
    exp = _number(claims, "exp", required=True)
    iat = _number(claims, "iat", required=True)
    assert exp is not None and iat is not None
    if exp <= now - LEEWAY:
        raise _invalid("it has expired (check this computer's clock if this persists)")
    if iat > now + LEEWAY:
        raise _invalid("it was issued in the future (check this computer's clock)")
    if iat < now - MAX_IAT_AGE - LEEWAY:
        raise _invalid("it was issued too long ago")
    token_nonce = _text(claims, "nonce")
    if nonce is not None and not (
        token_nonce is not None and hmac.compare_digest(token_nonce.encode(), nonce.encode())
    ):
        raise _invalid("the nonce does not match this login")
    auth_time = _number(claims, "auth_time", required=max_age is not None)
    if max_age is not None and auth_time is not None and now - auth_time > max_age + LEEWAY:
        raise _invalid("the sign-in is older than the requested max_age")
    acr = _text(claims, "acr")
    if acr_values and acr not in acr_values:
        raise _invalid("the sign-in does not meet the requested authentication level (acr)")
    amr, verified = claims.get("amr"), claims.get("email_verified")
    return IdClaims(
        iss=issuer,
        sub=sub,
        aud=tuple(audiences),
        exp=exp,
        iat=iat,
        azp=azp,
        nonce=token_nonce,
        auth_time=auth_time,
        acr=acr,
        amr=tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else (),
        email=_text(claims, "email"),
        email_verified=verified
        if isinstance(verified := claims.get("email_verified"), bool)
        else None,
        name=_text(claims, "name"),
        preferred_username=_text(claims, "preferred_username"),
    )


@dataclass(frozen=True)
class SignIn:
    """Whom an earlier ID token named: what a refreshed one must repeat (OIDC Core §12.2)."""

    sub: str
    auth_time: float | None = None


def check_refreshed(original: SignIn, new: IdClaims) -> None:
    """OIDC Core §12.2: a refreshed ID token names the same sign-in as the original. Its iss and
    aud (and azp) are already held to the issuer and client the original was validated for."""
    if new.sub != original.sub:
        raise _invalid("the refreshed token's sub differs from the original sign-in")
    if new.auth_time is not None and original.auth_time is not None:
        # §12.2 asks for the original sign-in's time, but providers that put the person's
        # latest sign-in anywhere there are common: a later time is recorded, an earlier one
        # cannot describe this session (issue 10, case 6).
        if new.auth_time < original.auth_time:
            raise _invalid("the refreshed token's auth_time is before the original sign-in")


def validate_id_token(
    token: str,
    *,
    keys: Keys,
    issuer: str,
    client_id: str,
    now: float,
    nonce: str | None,
    max_age: int | None = None,
    acr_values: Sequence[str] = (),
    algs: Iterable[str] = ALLOWED_ALGS,
    refreshing: SignIn | None = None,
) -> IdClaims:
    """The one ID-token validation: signature (an algorithm in both `algs` — what the provider
    advertises — and ALLOWED_ALGS), then the claims. `nonce` None only where the grant has none
    (device, refresh), when iat freshness stands in for it (DV-06). With `refreshing`, the token
    came from a refresh and must name the same sign-in (§12.2)."""
    claims = check_claims(
        verify_signature(token, keys, algs),
        issuer=issuer,
        client_id=client_id,
        now=now,
        nonce=nonce,
        max_age=max_age,
        acr_values=acr_values,
    )
    if refreshing is not None:
        check_refreshed(refreshing, claims)
    return claims
