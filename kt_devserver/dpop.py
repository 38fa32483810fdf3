"""DPoP (RFC 9449) on the server: proofs checked, nonces issued, tokens bound to a key.

A proof (the `DPoP` request header) is accepted when (§4.3):

- it is one compact JWS whose header has typ `dpop+jwt`, an `alg` of ALGORITHMS (asymmetric
  only) and a public `jwk` (no private part), and whose signature that key verifies;
- its claims say `htm` = the request's method, `htu` = the request's URL without query and
  fragment (compared after syntax-based normalisation), `iat` within IAT_WINDOW of now, a `jti`
  never seen within that window (the replay cache), `ath` = the access token's hash on a
  resource request, and, unless nonces are off (`--dpop-nonce-ttl 0`), a nonce this server
  issued in the current or the previous period.

Nonces are HMACs of the period number under a per-process secret, so they rotate every
`dpop_nonce_ttl` seconds by themselves and nothing is stored; a proof without a current one is
answered `use_dpop_nonce` with the nonce to use in `DPoP-Nonce` (§8). The key's RFC 7638
thumbprint (`jkt`) is what a token family is bound to (`sessions.dpop_jkt`, its `cnf.jkt`).

Written here rather than shared with kt's own `kt_login.dpop`, so each side checks the other.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from aiohttp import web
from authlib.oauth2.rfc6749 import OAuth2Error  # type: ignore[import-untyped]
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from kt_devserver.errors import ApiError, dpop_challenge

if TYPE_CHECKING:
    from kt_devserver.state import State

ALGORITHMS: Final = ("ES256", "ES384", "PS256", "RS256", "EdDSA")
PROOF_TYPE: Final = "dpop+jwt"
HEADER: Final = "DPoP"
NONCE_HEADER: Final = "DPoP-Nonce"
TOKEN_TYPE: Final = "DPoP"  # noqa: S105 - a token type, not a secret
INVALID_PROOF: Final = "invalid_dpop_proof"
USE_NONCE: Final = "use_dpop_nonce"
# How far a proof's iat may be from the server's clock, either way (seconds); a jti is
# remembered this long after its iat, so a replay within the window is caught.
IAT_WINDOW: Final = 60
MAX_PROOF_BYTES: Final = 8192
_KEY_TYPES: Final[dict[str, type[ECKey] | type[RSAKey] | type[OKPKey]]] = {
    "EC": ECKey,
    "RSA": RSAKey,
    "OKP": OKPKey,
}
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class ProofRefused(Exception):
    """Why a request's DPoP proof (or its absence) is refused: `error` is INVALID_PROOF,
    USE_NONCE or `invalid_token`."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class InvalidDpopProofError(OAuth2Error):  # type: ignore[misc]
    """The token endpoint's refusal of a request whose proof does not fit its grant (§5)."""

    error = INVALID_PROOF


@dataclass
class Guard:
    """One server's DPoP state: the nonce secret and the jti replay cache (in memory)."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _seen: set[str] = field(default_factory=set)
    _expiry: list[tuple[float, str]] = field(default_factory=list)  # a heap: (until, jti)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def nonce(self, now: float, ttl: int, *, periods_ago: int = 0) -> str:
        period = int(now // ttl) - periods_ago
        mac = hmac.new(self.secret, str(period).encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(mac).decode("ascii")

    def first_use(self, jti: str, *, iat: float, now: float) -> bool:
        """Record `jti`; False when it was seen within the window (a replay)."""
        with self._lock:
            while (
                self._expiry and self._expiry[0][0] < now
            ):  # forget what its iat no longer lets in
                self._seen.discard(heapq.heappop(self._expiry)[1])
            if jti in self._seen:
                return False
            self._seen.add(jti)
            heapq.heappush(self._expiry, (max(iat, now) + IAT_WINDOW, jti))
            return True


def current_nonce(state: State) -> str | None:
    """The nonce proofs should carry now; None when this server asks for none."""
    ttl = state.settings.dpop_nonce_ttl
    return state.dpop.nonce(state.clock(), ttl) if ttl > 0 else None


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (the `jkt`)."""
    return str(_KEY_TYPES[jwk["kty"]].import_key(jwk).thumbprint())


def access_token_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def request_url(request: web.Request) -> str:
    """The URL the client addressed (the Host it named, which hosts.py allowed), no query."""
    return f"{request.scheme}://{request.host}{request.path}"


def normalized(url: str) -> str | None:
    """scheme and host lower-cased, a default port dropped, an empty path as "/" (RFC 3986
    §6.2.2/§6.2.3); None for what is no absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host += f":{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def check_proof(
    state: State,
    request: web.Request,
    *,
    access_token: str | None = None,
) -> str | None:
    """The jkt of the request's valid proof; None when it carries no DPoP header; ProofRefused
    for a proof that fails any check of §4.3 (or of §7.1 with `access_token`)."""
    proofs = request.headers.getall(HEADER, [])
    if not proofs:
        return None
    if len(proofs) > 1:
        raise ProofRefused(INVALID_PROOF, "Send one DPoP proof, not several.")
    return verify(
        state,
        proofs[0],
        method=request.method,
        url=request_url(request),
        access_token=access_token,
    )


def verify(
    state: State, proof: str, *, method: str, url: str, access_token: str | None = None
) -> str:
    """`proof` checked for a `method` request to `url`: its key's jkt, or ProofRefused."""
    if len(proof) > MAX_PROOF_BYTES:
        raise ProofRefused(INVALID_PROOF, "The DPoP proof is too large.")
    header = _header(proof)
    if header.get("typ") != PROOF_TYPE:
        raise ProofRefused(INVALID_PROOF, f"The DPoP proof's typ must be {PROOF_TYPE}.")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise ProofRefused(
            INVALID_PROOF, f"The DPoP proof's alg must be one of {', '.join(ALGORITHMS)}."
        )
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kty") not in _KEY_TYPES:
        raise ProofRefused(INVALID_PROOF, "The DPoP proof's header has no usable public jwk.")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise ProofRefused(INVALID_PROOF, "The DPoP proof's jwk must not carry a private key.")
    try:
        key = _KEY_TYPES[jwk["kty"]].import_key(jwk)
        signed = jws.deserialize_compact(proof, key, algorithms=[alg])
        claims = json.loads(signed.payload)
    except (JoseError, ValueError, TypeError, KeyError):
        raise ProofRefused(INVALID_PROOF, "The DPoP proof's signature does not verify.") from None
    if not isinstance(claims, dict):
        raise ProofRefused(INVALID_PROOF, "The DPoP proof's payload is not a JSON object.")
    now = state.clock()
    _check_claims(claims, method=method, url=url, access_token=access_token, now=now)
    _check_nonce(state, claims.get("nonce"), now)
    if not state.dpop.first_use(claims["jti"], iat=float(claims["iat"]), now=now):
        raise ProofRefused(INVALID_PROOF, "This DPoP proof was used before (its jti is known).")
    return str(key.thumbprint())


def _header(proof: str) -> dict[str, Any]:
    try:
        segment = proof.split(".")[0]
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ProofRefused(INVALID_PROOF, "The DPoP proof is not a JWS.") from None
    if proof.count(".") != 2 or not isinstance(header, dict):
        raise ProofRefused(INVALID_PROOF, "The DPoP proof is not a compact JWS.")
    return header


def _check_claims(
    claims: dict[str, Any], *, method: str, url: str, access_token: str | None, now: float
) -> None:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise ProofRefused(INVALID_PROOF, "The DPoP proof has no jti.")
    if claims.get("htm") != method:
        raise ProofRefused(INVALID_PROOF, f"The DPoP proof's htm is not {method}.")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalized(htu) != normalized(url):
        raise ProofRefused(INVALID_PROOF, "The DPoP proof's htu is not this request's URL.")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise ProofRefused(INVALID_PROOF, "The DPoP proof has no iat.")
    if abs(iat - now) > IAT_WINDOW:
        raise ProofRefused(INVALID_PROOF, "The DPoP proof's iat is too old or in the future.")
    if access_token is not None:
        if claims.get("ath") != access_token_hash(access_token):
            raise ProofRefused(
                INVALID_PROOF, "The DPoP proof's ath is not this access token's hash."
            )


def _check_nonce(state: State, nonce: object, now: float) -> None:
    ttl = state.settings.dpop_nonce_ttl
    if ttl <= 0:
        return
    accepted = {state.dpop.nonce(now, ttl), state.dpop.nonce(now, ttl, periods_ago=1)}
    if not isinstance(nonce, str) or nonce not in accepted:
        raise ProofRefused(USE_NONCE, "Send the DPoP proof again with the nonce in DPoP-Nonce.")


# --- replies ---------------------------------------------------------------------------------


def nonce_headers(state: State) -> dict[str, str]:
    nonce = current_nonce(state)
    return {} if nonce is None else {NONCE_HEADER: nonce}


def resource_error(state: State, refused: ProofRefused) -> ApiError:
    """The API's 401 for a refused proof or a bound token without one (§7.1, §9): the JSON
    error body with code `auth.<error>`, a DPoP challenge naming the algorithms, the nonce."""
    headers = {
        **dpop_challenge(
            error=refused.error,
            error_description=refused.description,
            algs=" ".join(ALGORITHMS),
        ),
        **nonce_headers(state),
    }
    return ApiError(401, f"auth.{refused.error}", refused.description, headers=headers)


def bound_token_without_proof() -> ProofRefused:
    return ProofRefused(
        "invalid_token",
        "This access token is bound to a DPoP key: send it as 'Authorization: DPoP' "
        "with a DPoP proof made with that key.",
    )


def check_resource_request(
    state: State, request: web.Request, *, scheme: str, token: str, bound_jkt: str | None
) -> None:
    """An access token presented to a resource: a bound one only under the DPoP scheme with a
    valid proof by its key (ath included); an unbound one never under the DPoP scheme."""
    if bound_jkt is None:
        if scheme == "dpop":
            raise ProofRefused(
                "invalid_token", "This access token is not DPoP-bound: send it as Bearer."
            )
        return
    if scheme != "dpop":
        raise bound_token_without_proof()
    jkt = check_proof(state, request, access_token=token)
    if jkt is None:
        raise bound_token_without_proof()
    if jkt != bound_jkt:
        raise ProofRefused(
            INVALID_PROOF, "The DPoP proof is made with another key than the token is bound to."
        )
