"""The one stub OpenID provider of the tests: honest by default, hostile per case.

Used by the adversarial suite (the real `kt` process), tests/test_cli_browser.py (`kt` in
process, `HostileAS.browser` as its opener) and tests/test_devserver_sso.py (kt-devserver's SSO
federating to it as a confidential client: `HostileAS(client_id=..., client_secret=...)`).

An aiohttp server on 127.0.0.1:0, run on its own event loop in a thread (readiness through an
event, no sleeps). Issuer: ``http://127.0.0.1:<port>`` (plain http is allowed on loopback, NT-01).
Its behaviour is set per case through `Behaviour` (metadata overrides, ID-token claim/header
mutations and forgeries, JWKS contents or a raw JWKS body, token-endpoint replies and redirects,
huge documents, a revocation endpoint answering 503, a token request held until the test lets it
go, DPoP nonces that change unannounced); every request it receives is recorded, and every code
and token it hands out is kept in `issued` so a test can prove none of them was printed. Like a
real provider it binds a code to its PKCE challenge and redirect_uri and, with a client secret,
wants client_secret_basic.

It is also a CI system's OIDC issuer (RFC 8693 CI sign-in, tests/test_cli_federated.py):
`ci_token(audience, ...)` mints a job's identity token (claims as GitHub Actions sets them, signed
with its k1 key unless a forgery is asked for), and `/_apis/oidc/token?audience=AUD` answers as
GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL does, to a bearer of `actions_request_token`.

`/authorize` answers at once with a 302 to the `redirect_uri` carrying code/state/iss (per case),
so a "browser" only has to follow redirects (see browser.py, or `HostileAS.browser`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

CLIENT_ID = "kt-cli"
SUBJECT = "user-1"
EMAIL = "u@as.test"
# A CI job's identity (ci_token): the repository and branch GitHub Actions would name.
CI_REPOSITORY = "acme/app"
CI_REF = "refs/heads/main"
CI_SUBJECT = f"repo:{CI_REPOSITORY}:ref:{CI_REF}"
ACTIONS_TOKEN_PATH = "/_apis/oidc/token"  # noqa: S105 - a path

# Real keys, made once per test session.
RSA_K1 = RSAKey.generate_key(2048, parameters={"kid": "k1"})
RSA_K2 = RSAKey.generate_key(2048, parameters={"kid": "k2"})
RSA_EVIL = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, other key
RSA_ATTACKER = RSAKey.generate_key(2048, parameters={"kid": "attacker"})
EC_E1 = ECKey.generate_key("P-256", parameters={"kid": "e1"})
EC_EVIL = ECKey.generate_key("P-256", parameters={"kid": "e1"})

DELETE = object()  # an override value that removes the member


def public(key: Any) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in overrides.items():
        if value is DELETE:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def sign(header: dict[str, Any], claims: dict[str, Any], how: str) -> str:
    """An ID token: `how` names the key or forgery."""
    if how == "none":
        return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
    if how == "hs256-public-key":
        # The classic key confusion: HMAC keyed with the provider's RSA public key (PEM).
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        secret = RSA_K1.as_pem(private=False)
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"
    key = {
        "rsa-k1": RSA_K1,
        "rsa-k2": RSA_K2,
        "rsa-evil": RSA_EVIL,
        "rsa-attacker": RSA_ATTACKER,
        "ec-e1": EC_E1,
        "ec-evil": EC_EVIL,
    }[how]
    return jwt.encode(header, claims, key)


def _answer(status: int, body: Any) -> web.Response:
    if isinstance(body, bytes):
        return web.Response(status=status, body=body, content_type="text/html")
    return web.json_response(body, status=status)


@dataclass
class Behaviour:
    """What the provider does in one case. Defaults: an honest provider."""

    metadata: dict[str, Any] = field(default_factory=dict)  # overrides (DELETE removes)
    metadata_body: bytes | None = None  # replaces the whole document
    metadata_content_type: str = "application/json"
    metadata_huge: int | None = None  # stream a document of this many bytes
    callback: dict[str, Any] = field(default_factory=dict)  # code/state/iss overrides
    id_header: dict[str, Any] = field(default_factory=dict)
    id_claims: dict[str, Any] = field(default_factory=dict)
    id_sign: str = "rsa-k1"
    jwks: list[Any] | None = None  # default: the public k1 and e1
    jwks_body: bytes | None = None  # served instead of any key set (application/json)
    jwks_sequence: list[list[Any]] | None = None  # one document per fetch (rotation)
    token_reply: dict[str, Any] = field(default_factory=dict)
    token_status: int = 200
    token_redirect: str | None = None  # a 307 Location for the token endpoint
    token_hold: threading.Event | None = None  # answer any token request only once set
    token_arrived: threading.Event = field(default_factory=threading.Event)  # any, before the hold
    refresh_claims: dict[str, Any] = field(default_factory=dict)
    refresh_id_token: bool = True
    code_id_token: bool = True  # an ID token in the authorization code grant's reply
    device_id_token: bool = True  # an ID token in the device grant's reply (RFC 8628 §3.5)
    userinfo_status: int = 200
    # (status, JSON body or raw bytes) answered instead of a grant
    refresh_answer: tuple[int, Any] | None = None
    device_answer: tuple[int, Any] | None = None  # answered to every device poll
    device_expires_in: int = 60
    # The scopes the provider grants; None: any. A request for others is refused with
    # invalid_scope, and without offline_access no refresh token is issued.
    grants_scopes: tuple[str, ...] | None = None
    # RFC 8414 metadata (at the path-inserted location, or `oauth_metadata_at`): None serves
    # 404; overrides of the OpenID document otherwise (DELETE removes).
    oauth_metadata: dict[str, Any] | None = None
    oauth_metadata_at: str = "/.well-known/oauth-authorization-server"
    refresh_arrived: threading.Event = field(default_factory=threading.Event)
    refresh_hold: threading.Event | None = None  # answer the refresh only once set
    reuse_detection: bool = True
    whoami_arrived: threading.Event = field(default_factory=threading.Event)
    whoami_hold: threading.Event | None = None
    userinfo_sub: str = SUBJECT
    userinfo_claims: dict[str, Any] = field(default_factory=dict)  # overrides (DELETE removes)
    whoami_user: dict[str, Any] = field(default_factory=dict)  # overrides of whoami's "user"
    revocation_status: int = 200
    revocation_reply: dict[str, Any] | None = None  # a JSON body for the revocation answer
    device_reply: dict[str, Any] = field(default_factory=dict)  # overrides (DELETE removes)
    ci_claims: dict[str, Any] = field(default_factory=dict)  # the Actions endpoint's tokens
    # As an API (RFC 9728): its protected resource metadata at `resource_metadata_at` (None:
    # 404), and the WWW-Authenticate of whoami's 401 without a credential (None: none).
    resource_metadata: dict[str, Any] | None = None
    resource_metadata_at: str = "/.well-known/oauth-protected-resource"
    whoami_challenge: str | None = None
    # DPoP (RFC 9449): set, the provider issues DPoP tokens to a token request with a proof
    # and wants the proofs at /token, /userinfo and /v1/auth/whoami to carry its nonce, which
    # it changes after every `dpop_nonce_every` proofs it accepted without saying so; a proof
    # without the current nonce is answered use_dpop_nonce with the nonce (400 at /token, a
    # 401 DPoP challenge elsewhere). None: no DPoP (a proof is ignored, Bearer tokens).
    dpop_nonce_every: int | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)  # when it arrived


class HostileAS:
    def __init__(self, client_id: str = CLIENT_ID, client_secret: str | None = None) -> None:
        self.client_id = client_id  # the audience of its ID tokens
        self.client_secret = client_secret  # set: the token endpoint wants client_secret_basic
        self.behaviour = Behaviour()
        self.requests: list[Seen] = []
        self.issued: list[str] = []  # every code and token handed out
        self.opened: list[str] = []  # the URLs `browser` was asked to open
        # The bearer token /_apis/oidc/token wants (ACTIONS_ID_TOKEN_REQUEST_TOKEN); None: 404.
        self.actions_request_token: str | None = None
        self._codes: dict[str, str | None] = {}  # code -> nonce
        self._bound: dict[str, tuple[str, str]] = {}  # code -> (code_challenge, redirect_uri)
        self._scopes: dict[str, str] = {}  # code or device code -> the scope asked for
        self._spent_refresh: set[str] = set()
        self._counter = 0
        self._jwks_fetches = 0
        self.dpop_nonce = "n-0"  # the nonce proofs must carry (Behaviour.dpop_nonce_every)
        self.dpop_refusals: list[str] = []  # the paths that answered use_dpop_nonce
        self._dpop_accepted = 0
        self.metadata_sent = 0  # bytes of a huge metadata document written before kt hung up
        # One sign-in time for every token, as a real provider keeps the original auth_time
        # in refreshed ID tokens (OIDC Core §12.2).
        self.auth_time = int(time.time())
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> HostileAS:
        thread = threading.Thread(target=self._serve, name="hostile-as", daemon=True)
        thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the hostile AS did not start")
        self._thread = thread
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def up() -> None:
            app = web.Application(client_max_size=1 << 20)
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, reuse_address=False)
            await site.start()
            self.port = self._runner.addresses[0][1]

        loop.run_until_complete(up())
        # ready only once run_forever runs: a stop() right after start() must not land in
        # run_until_complete, which would swallow it and leave the server up for good
        loop.call_soon(self._ready.set)
        loop.run_forever()
        assert self._runner is not None
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        """Stop serving (the port is closed afterwards); stopping twice is harmless."""
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def browser(self, url: str) -> bool:
        """The person's browser, for `App(opener=...)`: in a thread, so the opener returns at
        once, it GETs a loopback URL following redirects (/authorize answers with a 302 to kt's
        listener). Anything else is only recorded, never fetched: no network beyond loopback."""
        self.opened.append(url)
        if urlsplit(url).hostname != "127.0.0.1":
            return True

        def follow() -> None:
            request = urllib.request.Request(url, headers={"Sec-Fetch-Mode": "navigate"})
            try:
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                opener.open(request, timeout=30).read()
            except Exception:  # noqa: BLE001 - kt may refuse the callback; that is the point
                pass

        threading.Thread(target=follow, daemon=True).start()
        return True

    def reset(self) -> Behaviour:
        self.behaviour = Behaviour()
        self.requests.clear()
        self.issued.clear()
        self.opened.clear()
        self._spent_refresh.clear()
        self._jwks_fetches = 0
        self.dpop_nonce = "n-0"
        self.dpop_refusals.clear()
        self._dpop_accepted = 0
        return self.behaviour

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---------------------------------------------------------------- what it saw

    def calls(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def token_calls(self, grant: str | None = None) -> list[Seen]:
        return [
            r
            for r in self.calls("POST", "/token")
            if grant is None or r.form.get("grant_type") == grant
        ]

    # ---------------------------------------------------------------- handlers

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        form: dict[str, str] = {}
        if request.method == "POST":
            form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(
            Seen(request.method, request.path, dict(request.query), form, dict(request.headers))
        )
        if request.path == self.behaviour.oauth_metadata_at:
            return await self._oauth_metadata(request, form)
        if request.path == self.behaviour.resource_metadata_at:
            if self.behaviour.resource_metadata is None:
                return web.Response(status=404)
            return web.json_response(self.behaviour.resource_metadata)
        handler = {
            "/.well-known/openid-configuration": self._metadata,
            "/authorize": self._authorize,
            "/token": self._token,
            "/jwks": self._jwks,
            "/attacker-jwks": self._attacker_jwks,
            "/userinfo": self._userinfo,
            "/revoke": self._revoke,
            "/v1/auth/whoami": self._whoami,
            "/device_authorization": self._device_authorization,
            ACTIONS_TOKEN_PATH: self._actions_token,
        }.get(request.path)
        if handler is None:
            return web.Response(status=404)
        refused = self._dpop_refusal(request)
        if refused is not None:
            return refused
        return await handler(request, form)

    def _dpop_refusal(self, request: web.Request) -> web.StreamResponse | None:
        """use_dpop_nonce for a proof without the current nonce (Behaviour.dpop_nonce_every);
        an accepted proof counts towards the next, unannounced, change of nonce."""
        every = self.behaviour.dpop_nonce_every
        proof = request.headers.get("DPoP")
        if every is None or proof is None:
            return None
        if request.path not in ("/token", "/userinfo", "/v1/auth/whoami"):
            return None
        payload = proof.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        headers = {"DPoP-Nonce": self.dpop_nonce}
        if claims.get("nonce") != self.dpop_nonce:
            self.dpop_refusals.append(request.path)
            if request.path == "/token":
                body = {"error": "use_dpop_nonce", "error_description": "Use the nonce."}
                return web.json_response(body, status=400, headers=headers)
            headers["WWW-Authenticate"] = 'DPoP error="use_dpop_nonce", algs="ES256"'
            return web.json_response({"error": "use_dpop_nonce"}, status=401, headers=headers)
        self._dpop_accepted += 1
        if self._dpop_accepted % every == 0:
            self.dpop_nonce = f"n-{self._dpop_accepted}"
        return None

    def metadata_document(self) -> dict[str, Any]:
        iss = self.issuer
        doc = {
            "issuer": iss,
            "authorization_endpoint": iss + "/authorize",
            "token_endpoint": iss + "/token",
            "jwks_uri": iss + "/jwks",
            "userinfo_endpoint": iss + "/userinfo",
            "revocation_endpoint": iss + "/revoke",
            "device_authorization_endpoint": iss + "/device_authorization",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }
        return _apply(doc, self.behaviour.metadata)

    async def _metadata(self, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
        b = self.behaviour
        if b.metadata_huge is not None:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            chunk = b" " * (1 << 20)
            await response.write(b'{"issuer": "' + self.issuer.encode() + b'", "pad": "')
            self.metadata_sent = 0
            try:
                while self.metadata_sent < b.metadata_huge:
                    await response.write(chunk)
                    self.metadata_sent += len(chunk)
                await response.write(b'"}')
                await response.write_eof()
            except (ConnectionError, RuntimeError):
                pass  # kt hung up early: good
            return response
        body = b.metadata_body
        if body is None:
            body = json.dumps(self.metadata_document()).encode()
        return web.Response(body=body, headers={"Content-Type": b.metadata_content_type})

    async def _oauth_metadata(
        self, request: web.Request, form: dict[str, str]
    ) -> web.StreamResponse:
        overrides = self.behaviour.oauth_metadata
        if overrides is None:
            return web.Response(status=404)
        base = _apply(self.metadata_document(), {"issuer": self.issuer})
        return web.json_response(_apply(base, overrides))

    def _refused_scope(self, scope: str) -> bool:
        allowed = self.behaviour.grants_scopes
        return allowed is not None and not set(scope.split()) <= set(allowed)

    async def _authorize(self, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
        q = request.query
        code = "code-" + secrets.token_urlsafe(12)
        self.issued.append(code)
        self._codes[code] = q.get("nonce")
        self._scopes[code] = q.get("scope", "")
        self._bound[code] = (q.get("code_challenge", ""), q.get("redirect_uri", ""))
        params = _apply(
            {"code": code, "state": q.get("state", ""), "iss": self.issuer},
            self.behaviour.callback,
        )
        if self._refused_scope(q.get("scope", "")):
            params = {"error": "invalid_scope", "state": q.get("state", ""), "iss": self.issuer}
        raise web.HTTPFound(q["redirect_uri"] + "?" + urlencode(params))

    def _next(self, prefix: str) -> str:
        self._counter += 1
        token = f"{prefix}-{self._counter}-{secrets.token_hex(4)}"
        self.issued.append(token)
        return token

    def _client_refused(self, request: web.Request) -> bool:
        if self.client_secret is None:
            return False
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return request.headers.get("Authorization") != "Basic " + basic

    def _code_unbound(self, code: str, form: dict[str, str]) -> bool:
        """RFC 7636 §4.6 and RFC 6749 §4.1.3: the verifier and redirect_uri the code was for."""
        challenge, redirect_uri = self._bound.pop(code, ("", ""))
        verifier = form.get("code_verifier", "")
        if challenge and b64(hashlib.sha256(verifier.encode()).digest()) != challenge:
            return True
        return bool(redirect_uri) and form.get("redirect_uri") != redirect_uri

    def id_token(self, claims: dict[str, Any], *, refresh: bool = False) -> str:
        b = self.behaviour
        now = int(time.time())
        base = {
            "iss": self.issuer,
            "sub": SUBJECT,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": self.auth_time,
            "email": EMAIL,
            **claims,
        }
        payload = _apply(base, b.refresh_claims if refresh else b.id_claims)
        alg = {"none": "none", "hs256-public-key": "HS256"}.get(
            b.id_sign, "ES256" if b.id_sign.startswith("ec-") else "RS256"
        )
        kid = {"rsa-k2": "k2", "rsa-attacker": "attacker", "ec-e1": "e1", "ec-evil": "e1"}.get(
            b.id_sign, "k1"
        )
        header = _apply({"alg": alg, "kid": kid, "typ": "JWT"}, b.id_header)
        token = sign(header, payload, "rsa-k1" if refresh else b.id_sign)
        self.issued.append(token)
        return token

    def ci_token(
        self,
        audience: str,
        claims: dict[str, Any] | None = None,
        *,
        how: str = "rsa-k1",
        header: dict[str, Any] | None = None,
    ) -> str:
        """A CI job's identity token for `audience`: GitHub Actions' claims (sub, repository,
        ref, a fresh jti), `claims` overriding them (DELETE removes), signed as `sign` does
        with `how` ("none" for an unsigned one, "rsa-attacker" for a key not in the JWKS)."""
        now = int(time.time())
        base = {
            "iss": self.issuer,
            "sub": CI_SUBJECT,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": secrets.token_hex(12),
            "repository": CI_REPOSITORY,
            "repository_owner": CI_REPOSITORY.split("/")[0],
            "ref": CI_REF,
            "event_name": "push",
        }
        alg = {"none": "none", "hs256-public-key": "HS256"}.get(
            how, "ES256" if how.startswith("ec-") else "RS256"
        )
        kid = {"rsa-k2": "k2", "rsa-attacker": "attacker", "ec-e1": "e1", "ec-evil": "e1"}.get(
            how, "k1"
        )
        token = sign(
            _apply({"alg": alg, "kid": kid, "typ": "JWT"}, header or {}),
            _apply(base, claims or {}),
            how,
        )
        self.issued.append(token)
        return token

    async def _actions_token(
        self, request: web.Request, form: dict[str, str]
    ) -> web.StreamResponse:
        expected = self.actions_request_token
        if expected is None:
            return web.Response(status=404)
        if request.headers.get("Authorization") != f"Bearer {expected}":
            return web.json_response({"message": "Bad credentials"}, status=401)
        audience = request.query.get("audience", self.issuer)
        return web.json_response({"value": self.ci_token(audience, self.behaviour.ci_claims)})

    async def _token(self, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
        b = self.behaviour
        if b.token_redirect is not None:
            return web.Response(status=307, headers={"Location": b.token_redirect})
        b.token_arrived.set()
        if b.token_hold is not None:
            await asyncio.get_running_loop().run_in_executor(None, b.token_hold.wait, 60)
        if self._client_refused(request):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = form.get("code", "")
            if code not in self._codes or self._code_unbound(code, form):
                self._codes.pop(code, None)
                return web.json_response({"error": "invalid_grant"}, status=400)
            nonce = self._codes.pop(code)  # single use
            scope = self._scopes.pop(code, "")
            claims = {"nonce": nonce} if nonce is not None else {}
            id_token = self.id_token(claims) if b.code_id_token else None
        elif grant == "urn:ietf:params:oauth:grant-type:device_code":
            if b.device_answer is not None:
                return _answer(*b.device_answer)
            if form.get("device_code") not in self._codes:
                return web.json_response({"error": "invalid_grant"}, status=400)
            self._codes.pop(form["device_code"])
            scope = self._scopes.pop(form["device_code"], "")
            id_token = self.id_token({}) if b.device_id_token else None  # RFC 8628: no nonce
        elif grant == "refresh_token":
            b.refresh_arrived.set()
            rt = form.get("refresh_token", "")
            if b.refresh_hold is not None:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, b.refresh_hold.wait, 60)
            if b.refresh_answer is not None:
                return _answer(*b.refresh_answer)
            if not rt.startswith("rt-") or (b.reuse_detection and rt in self._spent_refresh):
                return web.json_response({"error": "invalid_grant"}, status=400)
            self._spent_refresh.add(rt)
            scope = "openid profile email offline_access"
            id_token = self.id_token({}, refresh=True) if b.refresh_id_token else None
        else:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        reply: dict[str, Any] = {
            "access_token": self._next("at"),
            "token_type": "Bearer",
            "expires_in": 600,
            "refresh_token": self._next("rt"),
            "scope": "openid profile email offline_access",
        }
        if b.grants_scopes is not None:
            reply["scope"] = scope
            if "offline_access" not in scope.split():
                del reply["refresh_token"]
        if id_token is not None:
            reply["id_token"] = id_token
        if b.dpop_nonce_every is not None and request.headers.get("DPoP"):
            reply["token_type"] = "DPoP"
        reply = _apply(reply, b.token_reply)
        return web.json_response(reply, status=b.token_status)

    async def _device_authorization(
        self, request: web.Request, form: dict[str, str]
    ) -> web.StreamResponse:
        if self._refused_scope(form.get("scope", "")):
            return web.json_response({"error": "invalid_scope"}, status=400)
        device_code = "dc-" + secrets.token_urlsafe(16)
        self.issued.append(device_code)
        self._codes[device_code] = None
        self._scopes[device_code] = form.get("scope", "")
        reply = {
            "device_code": device_code,
            "user_code": "BCDF-GHJK",
            "verification_uri": self.issuer + "/device",
            "expires_in": self.behaviour.device_expires_in,
            "interval": 1,
        }
        return web.json_response(_apply(reply, self.behaviour.device_reply))

    async def _jwks(self, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
        b = self.behaviour
        self._jwks_fetches += 1
        if b.jwks_body is not None:
            return web.Response(body=b.jwks_body, content_type="application/json")
        if b.jwks_sequence is not None:
            keys = b.jwks_sequence[min(self._jwks_fetches, len(b.jwks_sequence)) - 1]
        elif b.jwks is not None:
            keys = b.jwks
        else:
            keys = [public(RSA_K1), public(EC_E1)]
        return web.json_response({"keys": keys})

    async def _attacker_jwks(
        self, request: web.Request, form: dict[str, str]
    ) -> web.StreamResponse:
        return web.json_response({"keys": [public(RSA_ATTACKER)]})

    async def _userinfo(self, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
        b = self.behaviour
        if b.userinfo_status != 200:
            return web.json_response({"error": "invalid_token"}, status=b.userinfo_status)
        return web.json_response(_apply({"sub": b.userinfo_sub, "email": EMAIL}, b.userinfo_claims))

    async def _revoke(self, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
        b = self.behaviour
        if b.revocation_reply is not None:
            return web.json_response(b.revocation_reply, status=b.revocation_status)
        return web.Response(status=b.revocation_status)

    async def _whoami(self, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
        b = self.behaviour
        b.whoami_arrived.set()
        if b.whoami_hold is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, b.whoami_hold.wait, 60)
        scheme = (
            "DPoP" if b.dpop_nonce_every is not None and request.headers.get("DPoP") else "Bearer"
        )
        if not request.headers.get("Authorization", "").startswith(f"{scheme} at-"):
            challenge = (
                {} if b.whoami_challenge is None else {"WWW-Authenticate": b.whoami_challenge}
            )
            return web.json_response(
                {"error": {"code": "auth.unauthorized"}}, status=401, headers=challenge
            )
        return web.json_response(
            {
                "user": _apply({"id": SUBJECT, "email": EMAIL}, b.whoami_user),
                "organization": {"name": "Hostile"},
                "role": "member",
                "scopes": [],
                "auth_method": "oidc",
            }
        )
