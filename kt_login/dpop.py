"""DPoP (RFC 9449): the key a session's tokens are bound to, and the proof each request carries.

A session signed in with `--dpop` (or a profile's `dpop = true`) holds an ES256 private key made
at sign-in and kept with the session in its store, never printed (session.py masks it). Every
token request, refresh and API call then carries a fresh proof, a JWT signed with that key:

    header   typ "dpop+jwt", alg "ES256", jwk (the public key)
    claims   htm (the method), htu (the URL without query and fragment), iat, a unique jti,
             ath (the access token's SHA-256, base64url) on resource requests,
             nonce once the server named one (its DPoP-Nonce header)

and the access token travels as `Authorization: DPoP <token>` (§7.1). A server that wants a
(newer) nonce answers `use_dpop_nonce` with a DPoP-Nonce header (§8, §9): the token endpoint as
an RFC 6749 error, a resource in its WWW-Authenticate challenge; `Prover.learn` reads both, and
the caller retries once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import httpx2

from .config import origin
from .errors import StoreError
from .flows.transport import json_document
from .text import run_hint
from .www_authenticate import MalformedChallenge, find, parse

if TYPE_CHECKING:
    from joserfc.jwk import ECKey

ALGORITHM: Final = "ES256"
CURVE: Final = "P-256"
PROOF_TYPE: Final = "dpop+jwt"
HEADER: Final = "DPoP"  # the request header carrying the proof, and the Authorization scheme
NONCE_HEADER: Final = "DPoP-Nonce"
TOKEN_TYPE: Final = "DPoP"  # noqa: S105 - the token_type of a bound token (§5)
USE_NONCE: Final = "use_dpop_nonce"
INVALID_PROOF: Final = "invalid_dpop_proof"


class DpopKey:
    """An ES256 key pair; `thumbprint` is its RFC 7638 SHA-256 thumbprint (the `jkt` a server
    binds tokens to)."""

    def __init__(self, key: ECKey) -> None:
        if not key.is_private or key.as_dict(private=False).get("crv") != CURVE:
            raise ValueError("a DPoP key must be a private P-256 key")
        self._key = key
        self.public_jwk: dict[str, Any] = {
            name: value
            for name, value in key.as_dict(private=False).items()
            if name in ("kty", "crv", "x", "y")
        }
        self.thumbprint: str = key.thumbprint()

    # joserfc is imported when a key is first used, not with kt (issue 16: a bearer session's
    # commands do not load the JOSE stack).
    @classmethod
    def generate(cls) -> DpopKey:
        from joserfc.jwk import ECKey

        return cls(ECKey.generate_key(CURVE, private=True))

    @classmethod
    def from_json(cls, text: str) -> DpopKey:
        """The key `to_json` wrote; ValueError for anything else."""
        from joserfc.errors import JoseError
        from joserfc.jwk import ECKey

        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("kty") != "EC":
                raise ValueError("not an EC JWK")
            return cls(ECKey.import_key(data))
        except (JoseError, TypeError, KeyError) as exc:
            raise ValueError(f"not a DPoP key ({type(exc).__name__})") from None

    def to_json(self) -> str:
        """The private JWK, for the session store only."""
        return json.dumps(self._key.as_dict(private=True), sort_keys=True, separators=(",", ":"))

    def sign(self, claims: dict[str, Any]) -> str:
        from joserfc import jws

        header = {"typ": PROOF_TYPE, "alg": ALGORITHM, "jwk": self.public_jwk}
        payload = json.dumps(claims, separators=(",", ":"))
        return jws.serialize_compact(header, payload, self._key, algorithms=[ALGORITHM])

    def __repr__(self) -> str:
        return f"DpopKey(thumbprint={self.thumbprint!r})"


def htu(url: str | httpx2.URL) -> str:
    """The `htu` of a request to `url`: the URL without its query and fragment (§4.2)."""
    return str(httpx2.URL(str(url)).copy_with(query=None, fragment=None))


def ath(access_token: str) -> str:
    """The access token's hash as the `ath` claim carries it (§4.2)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Prover:
    """A DpopKey in use: proofs for requests, and the nonce each server (origin) named last.
    One per process and session; nonces are not stored."""

    def __init__(self, key: DpopKey, *, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self._clock = clock
        self._nonces: dict[tuple[str, str, int], str] = {}

    def __repr__(self) -> str:
        return f"Prover(thumbprint={self.key.thumbprint!r})"

    def proof(self, method: str, url: str | httpx2.URL, *, access_token: str | None = None) -> str:
        claims: dict[str, Any] = {
            "htm": method.upper(),
            "htu": htu(url),
            "iat": int(self._clock()),
            "jti": secrets.token_urlsafe(24),
        }
        if access_token is not None:
            claims["ath"] = ath(access_token)
        nonce = self._nonces.get(origin(str(url)))
        if nonce is not None:
            claims["nonce"] = nonce
        return self.key.sign(claims)

    def sign(self, request: httpx2.Request, *, access_token: str | None = None) -> None:
        """Give `request` a fresh proof (replacing any earlier one) and, for a resource request,
        the access token under the DPoP scheme."""
        request.headers[HEADER] = self.proof(request.method, request.url, access_token=access_token)
        if access_token is not None:
            request.headers["Authorization"] = f"{HEADER} {access_token}"

    def learn(self, response: httpx2.Response) -> bool:
        """Remember the nonce `response` names, if any; True when the response refused the
        request for want of that nonce (`use_dpop_nonce`), so one retry with it may succeed.
        The response body must have been read."""
        nonce = response.headers.get(NONCE_HEADER)
        if not nonce or not _is_nonce(nonce):
            return False
        key = origin(str(response.request.url))
        fresh = self._nonces.get(key) != nonce
        self._nonces[key] = nonce
        return fresh and asks_for_nonce(response)


class Provers:
    """The Prover of each session key in use, made once per process (so the nonces servers
    name are remembered across refreshes and requests); None for a bearer session."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._by_key: dict[str, Prover] = {}

    def __call__(self, key_json: str | None) -> Prover | None:
        if key_json is None:
            return None
        found = self._by_key.get(key_json)
        if found is None:
            try:
                key = DpopKey.from_json(key_json)
            except ValueError:
                raise StoreError(
                    "the stored session's DPoP key is corrupt",
                    hint=run_hint("kt", "auth", "login", "--dpop"),
                ) from None
            found = self._by_key[key_json] = Prover(key, clock=self._clock)
        return found

    def __repr__(self) -> str:
        return f"Provers({len(self._by_key)} keys)"


def _is_nonce(value: str) -> bool:
    # §8.1: NQCHAR, printable ASCII without the double quote and backslash
    return 0 < len(value) <= 512 and all(0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in value)


def asks_for_nonce(response: httpx2.Response) -> bool:
    """The reply refuses a proof for its nonce (§8, §9): the token endpoint's 400
    `{"error": "use_dpop_nonce"}`, or a resource's 401 DPoP challenge with that error."""
    if response.status_code == 400:
        try:
            body = json_document(response.content)
        except (ValueError, httpx2.ResponseNotRead):
            return False
        return isinstance(body, dict) and body.get("error") == USE_NONCE
    if response.status_code == 401:
        try:
            challenges = parse(response.headers.get_list("WWW-Authenticate"))
        except MalformedChallenge:
            return False
        found = find(challenges, HEADER)
        return found is not None and found.param("error") == USE_NONCE
    return False
