"""DPoP proofs (RFC 9449): kt's (kt_login.dpop) checked by kt-devserver's own checker
(kt_devserver.dpop), each side written apart so each tests the other; the checks of §4.3 one by
one, the replay cache and the nonce's rotation on an injected clock."""

from __future__ import annotations

import base64
import json

import httpx2
import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey

from kt_devserver import dpop as server
from kt_devserver.db import MEMORY, Database
from kt_devserver.state import Settings, State
from kt_login import dpop
from kt_login.errors import OAuthError, ServerError, ValidationFailed
from kt_login.flows import tokens
from tests.fixtures.clock import FakeClock

URL = "http://127.0.0.1:8765/oauth/token"


@pytest.fixture
def state(clock: FakeClock) -> State:
    return State(db=Database(MEMORY), settings=Settings(dpop_nonce_ttl=0), clock=clock)


def nonce_state(clock: FakeClock, ttl: int = 300) -> State:
    return State(db=Database(MEMORY), settings=Settings(dpop_nonce_ttl=ttl), clock=clock)


def claims_of(proof: str) -> dict[str, object]:
    payload = proof.split(".")[1]
    result: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return result


def header_of(proof: str) -> dict[str, object]:
    segment = proof.split(".")[0]
    result: dict[str, object] = json.loads(base64.urlsafe_b64decode(segment + "=="))
    return result


def test_kt_proof_is_accepted_and_names_the_key_thumbprint(state: State, clock: FakeClock):
    prover = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    proof = prover.proof("POST", URL + "?ignored=1#frag")
    header, claims = header_of(proof), claims_of(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256"
    assert set(header["jwk"]) == {"kty", "crv", "x", "y"}  # type: ignore[arg-type]
    assert claims["htm"] == "POST" and claims["htu"] == URL and claims["iat"] == int(clock.now)
    assert "ath" not in claims and "nonce" not in claims
    assert server.verify(state, proof, method="POST", url=URL) == prover.key.thumbprint


def test_the_key_survives_the_store_and_never_shows_its_private_part():
    key = dpop.DpopKey.generate()
    again = dpop.DpopKey.from_json(key.to_json())
    assert again.thumbprint == key.thumbprint
    private = json.loads(key.to_json())["d"]
    assert private not in repr(key) and private not in repr(dpop.Prover(key))
    for bad in ("", "{}", '{"kty":"EC"}', json.dumps(key.public_jwk), '{"kty":"oct","k":"AA"}'):
        with pytest.raises(ValueError):
            dpop.DpopKey.from_json(bad)


def test_a_replayed_proof_is_refused(state: State, clock: FakeClock):
    proof = dpop.Prover(dpop.DpopKey.generate(), clock=clock).proof("POST", URL)
    server.verify(state, proof, method="POST", url=URL)
    clock.advance(5)
    with pytest.raises(server.ProofRefused, match="used before") as refused:
        server.verify(state, proof, method="POST", url=URL)
    assert refused.value.error == "invalid_dpop_proof"


def test_each_proof_has_its_own_jti(clock: FakeClock):
    prover = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    assert len({claims_of(prover.proof("GET", URL))["jti"] for _ in range(50)}) == 50


@pytest.mark.parametrize(
    ("method", "url", "why"),
    [
        ("GET", URL, "htm"),
        ("POST", "http://127.0.0.1:8765/oauth/other", "htu"),
        ("POST", "http://127.0.0.1:9999/oauth/token", "htu"),
        ("POST", "https://127.0.0.1:8765/oauth/token", "htu"),
    ],
)
def test_a_proof_for_another_method_or_url_is_refused(state, clock, method, url, why):
    proof = dpop.Prover(dpop.DpopKey.generate(), clock=clock).proof("POST", URL)
    with pytest.raises(server.ProofRefused, match=why):
        server.verify(state, proof, method=method, url=url)


def test_htu_compares_after_normalisation(state: State, clock: FakeClock):
    prover = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    proof = prover.key.sign(
        {"htm": "GET", "htu": "HTTP://LOCALHOST:80/x", "iat": int(clock.now), "jti": "j1"}
    )
    assert server.verify(state, proof, method="GET", url="http://localhost/x")


@pytest.mark.parametrize("offset", [-61, 61, -3600])
def test_a_stale_or_future_iat_is_refused(state, clock, offset):
    proof = dpop.Prover(dpop.DpopKey.generate(), clock=lambda: clock.now + offset).proof(
        "POST", URL
    )
    with pytest.raises(server.ProofRefused, match="iat"):
        server.verify(state, proof, method="POST", url=URL)


def test_ath_must_be_the_access_tokens_hash(state: State, clock: FakeClock):
    prover = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    proof = prover.proof("GET", URL, access_token="kta_one")
    assert claims_of(proof)["ath"] == server.access_token_hash("kta_one")
    with pytest.raises(server.ProofRefused, match="ath"):
        server.verify(state, proof, method="GET", url=URL, access_token="kta_other")
    fresh = prover.proof("GET", URL)  # no ath at all
    with pytest.raises(server.ProofRefused, match="ath"):
        server.verify(state, fresh, method="GET", url=URL, access_token="kta_one")
    assert server.verify(
        state, prover.proof("GET", URL, access_token="kta_one"), method="GET", url=URL,
        access_token="kta_one",
    )  # fmt: skip


def _forged(clock: FakeClock, header: dict[str, object], key: object) -> str:
    claims = {"htm": "POST", "htu": URL, "iat": int(clock.now), "jti": "forged"}
    return jws.serialize_compact(header, json.dumps(claims), key)  # type: ignore[arg-type]


def test_typ_alg_and_key_are_checked(state: State, clock: FakeClock):
    ec = ECKey.generate_key("P-256", private=True)
    public = ec.as_dict(private=False)
    cases = {
        "typ": _forged(clock, {"typ": "JWT", "alg": "ES256", "jwk": public}, ec),
        "alg": _forged(
            clock,
            {
                "typ": "dpop+jwt",
                "alg": "HS256",
                "jwk": {"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"},
            },
            OctKey.import_key("secretsecretsecret"),
        ),
        "private": _forged(
            clock, {"typ": "dpop+jwt", "alg": "ES256", "jwk": ec.as_dict(private=True)}, ec
        ),
        "jwk": _forged(clock, {"typ": "dpop+jwt", "alg": "ES256"}, ec),
    }
    other = ECKey.generate_key("P-256", private=True)
    cases["signature"] = _forged(
        clock, {"typ": "dpop+jwt", "alg": "ES256", "jwk": other.as_dict(private=False)}, ec
    )
    unsigned = base64.urlsafe_b64encode(
        json.dumps({"typ": "dpop+jwt", "alg": "none", "jwk": public}).encode()
    ).decode()
    cases["alg "] = unsigned.rstrip("=") + "." + cases["typ"].split(".")[1] + "."
    for why, proof in cases.items():
        with pytest.raises(server.ProofRefused, match=why.strip()):
            server.verify(state, proof, method="POST", url=URL)
    for junk in ("", "a.b", "not a jws", "a.b.c.d"):
        with pytest.raises(server.ProofRefused):
            server.verify(state, junk, method="POST", url=URL)


def test_nonce_is_asked_for_then_accepted_and_rotates(clock: FakeClock):
    state = nonce_state(clock, ttl=300)
    prover = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    request = httpx2.Request("POST", URL)
    with pytest.raises(server.ProofRefused) as refused:
        server.verify(state, prover.proof("POST", URL), method="POST", url=URL)
    assert refused.value.error == "use_dpop_nonce"
    nonce = server.current_nonce(state)
    assert nonce
    asked = httpx2.Response(
        400,
        json={"error": "use_dpop_nonce"},
        headers={"DPoP-Nonce": nonce},
        request=request,
    )
    assert prover.learn(asked) is True
    assert prover.learn(asked) is False  # the same nonce again: no second retry
    assert claims_of(prover.proof("POST", URL))["nonce"] == nonce
    server.verify(state, prover.proof("POST", URL), method="POST", url=URL)
    clock.advance(300)  # the next period: the old nonce is still accepted
    server.verify(state, prover.proof("POST", URL), method="POST", url=URL)
    assert server.current_nonce(state) != nonce
    clock.advance(300)  # two periods on: refused, with the new nonce to use
    with pytest.raises(server.ProofRefused) as refused:
        server.verify(state, prover.proof("POST", URL), method="POST", url=URL)
    assert refused.value.error == "use_dpop_nonce"


def test_a_resource_asking_for_a_nonce_is_understood(clock: FakeClock):
    prover = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    request = httpx2.Request("GET", "http://127.0.0.1:8765/v1/auth/whoami")
    state = nonce_state(clock)
    error = server.resource_error(state, server.ProofRefused("use_dpop_nonce", "Use the nonce."))
    reply = httpx2.Response(401, headers=error.headers, json=error.body(), request=request)
    assert prover.learn(reply) is True
    other_origin = prover.proof("GET", "http://127.0.0.1:9999/v1/auth/whoami")
    assert "nonce" not in claims_of(other_origin)  # a nonce is for the server that named it
    refused = server.resource_error(state, server.ProofRefused("invalid_dpop_proof", "Bad."))
    reply = httpx2.Response(401, headers=refused.headers, json=refused.body(), request=request)
    assert dpop.asks_for_nonce(reply) is False


def _token_reply(request: httpx2.Request, status: int, body: dict[str, object], **headers: str):
    return httpx2.Response(status, json=body, headers=headers, request=request)


def test_a_token_request_is_sent_once_more_with_the_nonce_and_no_more(clock: FakeClock):
    prover = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    flow = tokens.refresh(URL, client_id="kt-cli", refresh_token="rt-1", dpop=prover)
    first = next(flow)
    assert "nonce" not in claims_of(first.headers["DPoP"])
    second = flow.send(
        _token_reply(first, 400, {"error": "use_dpop_nonce"}, **{"DPoP-Nonce": "n1"})
    )
    assert claims_of(second.headers["DPoP"])["nonce"] == "n1"
    assert second.headers["DPoP"] != first.headers["DPoP"]  # a fresh proof, a fresh jti
    with pytest.raises(OAuthError) as refused:  # asked again: refused, not a loop
        flow.send(_token_reply(second, 400, {"error": "use_dpop_nonce"}, **{"DPoP-Nonce": "n2"}))
    assert refused.value.error == "use_dpop_nonce"


def test_a_bearer_token_for_a_dpop_request_is_refused_and_dpop_is_case_insensitive(clock):
    prover = dpop.Prover(dpop.DpopKey.generate(), clock=clock)
    reply = {"access_token": "at", "token_type": "Bearer", "expires_in": 60}
    flow = tokens.refresh(URL, client_id="kt-cli", refresh_token="rt-1", dpop=prover)
    request = next(flow)
    with pytest.raises(ValidationFailed, match="Bearer token"):
        flow.send(_token_reply(request, 200, reply))
    flow = tokens.refresh(URL, client_id="kt-cli", refresh_token="rt-1", dpop=prover)
    request = next(flow)
    with pytest.raises(StopIteration) as done:
        flow.send(_token_reply(request, 200, {**reply, "token_type": "dpop"}))
    assert done.value.value.dpop is prover
    # without a proof asked for, a DPoP token is not what kt can use as Bearer
    flow = tokens.refresh(URL, client_id="kt-cli", refresh_token="rt-1")
    request = next(flow)
    assert "DPoP" not in request.headers
    with pytest.raises(ServerError):
        flow.send(_token_reply(request, 200, {**reply, "token_type": "DPoP"}))
