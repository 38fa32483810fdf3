"""ID token validation, table-driven; case names follow the OpenID RP conformance tests
(SECURITY.md §2) where one matches."""

from __future__ import annotations

import json

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from kt_login.errors import ValidationFailed
from kt_login.idtoken import (
    ALLOWED_ALGS,
    LEEWAY,
    KeyCache,
    SignIn,
    check_claims,
    parse_jwks,
    validate_id_token,
    verify_signature,
)

ISSUER = "https://as.example"
CLIENT = "kt-cli"
NOW = 1_800_000_000.0
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
RSA_OTHER = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})  # same kid, wrong key
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})


def jwks(*keys) -> bytes:
    return json.dumps({"keys": [k.as_dict(private=False) for k in keys]}).encode()


def claims(**overrides):
    base = {
        "iss": ISSUER,
        "sub": "usr_1",
        "aud": CLIENT,
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": "n-123",
        "auth_time": NOW - 5,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload, key=RSA, alg="RS256", **header):
    return jwt.encode({"alg": alg, "kid": key.kid, **header}, payload, key)


class Fetches:
    def __init__(self, *documents: bytes):
        self.documents = list(documents)
        self.count = 0

    def __call__(self):
        self.count += 1
        doc = self.documents[min(self.count, len(self.documents)) - 1]
        return parse_jwks(doc)


def verify(token, keys=None, algs=("RS256", "ES256")):
    cache = keys or KeyCache(Fetches(jwks(RSA, EC)), monotonic=lambda: 0.0)
    payload = verify_signature(token, cache, algs)
    return check_claims(payload, issuer=ISSUER, client_id=CLIENT, now=NOW, nonce="n-123")


def test_oidcc_client_test_idtoken_sig_rs256():
    assert verify(sign(claims())).sub == "usr_1"


def test_es256_accepted():
    assert verify(sign(claims(), key=EC, alg="ES256")).sub == "usr_1"


def _unsigned(payload):
    import base64

    def enc(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'none', 'kid': 'rsa-1'})}.{enc(payload)}."


def _hs256_with_public_key():
    # the classic key-confusion attack: HMAC keyed with the RSA public key's PEM
    import base64
    import hashlib
    import hmac

    def enc(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        enc(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
        + "."
        + enc(json.dumps(claims()).encode())
    )
    mac = hmac.new(RSA.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + enc(mac)


@pytest.mark.parametrize(
    ("case", "token"),
    [
        ("oidcc-client-test-idtoken-sig-none (inverse)", lambda: _unsigned(claims())),
        ("oidcc-client-test-invalid-sig-hs256", _hs256_with_public_key),
        ("oidcc-client-test-invalid-sig-rs256", lambda: sign(claims(), key=RSA_OTHER)),
        (
            "fapi2-invalid-alternate-alg",
            lambda: jwt.encode(
                {"alg": "RS384", "kid": "rsa-1"},
                claims(),
                RSA,
                registry=JWSRegistry(algorithms=["RS384"]),
            ),
        ),
        ("jwe-instead-of-jws", lambda: "a.b.c.d.e"),
        ("garbage", lambda: "not-a-jwt"),
    ],
)
def test_signature_refused(case, token):
    with pytest.raises(ValidationFailed):
        verify(token())


def test_jku_header_is_ignored():
    attacker = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    token = sign(claims(), key=attacker, jku="https://evil.example/jwks")
    with pytest.raises(ValidationFailed):
        verify(token)


@pytest.mark.parametrize(
    ("case", "payload"),
    [
        ("fapi2-invalid-missing-iss", claims(iss=None)),
        ("fapi2-invalid-iss", claims(iss="https://as.example/")),
        ("fapi2-invalid-missing-aud", claims(aud=None)),
        ("fapi2-invalid-aud", claims(aud="someone-else")),
        ("fapi2-invalid-secondary-aud", claims(aud=[CLIENT, "untrusted"])),
        ("invalid-azp", claims(azp="someone-else")),
        ("missing-sub", claims(sub=None)),
        ("fapi2-invalid-expired-exp", claims(exp=NOW - 301)),
        ("fapi2-invalid-missing-exp", claims(exp=None)),
        ("missing-iat", claims(iat=None)),
        ("fapi1-iat-is-week-in-past", claims(iat=NOW - 7 * 86400, exp=NOW + 300)),
        ("iat-hour-in-future", claims(iat=NOW + 3600)),
        ("oidcc-client-nonce-invalid", claims(nonce="other")),
        ("fapi2-invalid-missing-nonce", claims(nonce=None)),
        ("exp-as-string", claims(exp="soon")),
    ],
)
def test_claims_refused(case, payload):
    with pytest.raises(ValidationFailed):
        verify(sign(payload))


def test_fapi2_valid_aud_as_array():
    assert verify(sign(claims(aud=[CLIENT]))).aud == (CLIENT,)


def test_small_clock_skew_tolerated():
    assert verify(sign(claims(exp=NOW - 60, iat=NOW + 60)))


def test_oidcc_client_test_signing_key_rotation_just_before_signing():
    rotated = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
    fetches = Fetches(jwks(RSA), jwks(RSA, rotated))
    clock = [0.0]
    cache = KeyCache(fetches, monotonic=lambda: clock[0])
    verify(sign(claims()), keys=cache)
    assert fetches.count == 1
    verify(sign(claims(), key=rotated), keys=cache)  # unknown kid → one refetch
    assert fetches.count == 2


def test_unknown_kid_refetch_is_rate_limited():
    fetches = Fetches(jwks(RSA))
    clock = [0.0]
    cache = KeyCache(fetches, monotonic=lambda: clock[0])
    verify(sign(claims()), keys=cache)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "random"})
    for _ in range(100):
        with pytest.raises(ValidationFailed):
            verify(sign(claims(), key=stranger), keys=cache)
    assert fetches.count == 2  # the first fetch, then one forced refetch
    clock[0] = 61.0
    with pytest.raises(ValidationFailed):
        verify(sign(claims(), key=stranger), keys=cache)
    assert fetches.count == 3


def test_oidcc_client_test_ignores_unparseable_key_in_jwks():
    doc = json.loads(jwks(RSA))
    doc["keys"].insert(0, {"kty": "weird", "kid": "rsa-1", "x": "y"})
    doc["keys"].insert(0, {"kty": "RSA", "kid": "rsa-1", "n": "!!", "e": "AQAB"})
    cache = KeyCache(lambda: parse_jwks(json.dumps(doc).encode()), monotonic=lambda: 0.0)
    assert verify(sign(claims()), keys=cache).sub == "usr_1"


def test_private_and_symmetric_keys_in_jwks_are_ignored():
    doc = {"keys": [RSA.as_dict(private=True), {"kty": "oct", "k": "c2VjcmV0", "kid": "rsa-1"}]}
    assert parse_jwks(json.dumps(doc).encode()) == []


def test_kid_absent_single_key():
    token = jwt.encode({"alg": "RS256"}, claims(), RSA)
    cache = KeyCache(Fetches(jwks(RSA)), monotonic=lambda: 0.0)
    assert verify(token, keys=cache).sub == "usr_1"


def test_kid_absent_multiple_keys_tries_matching_ones():
    other = RSAKey.generate_key(2048, parameters={"kid": "rsa-0"})
    token = jwt.encode({"alg": "RS256"}, claims(), RSA)
    cache = KeyCache(Fetches(jwks(other, RSA)), monotonic=lambda: 0.0)
    assert verify(token, keys=cache).sub == "usr_1"


def test_max_age_and_acr():
    base = sign(claims(acr="urn:keeptrusts:acr:pwd"))
    cache = KeyCache(Fetches(jwks(RSA)), monotonic=lambda: 0.0)
    payload = verify_signature(base, cache, ["RS256"])
    with pytest.raises(ValidationFailed):
        check_claims(
            payload,
            issuer=ISSUER,
            client_id=CLIENT,
            now=NOW,
            nonce="n-123",
            acr_values=("urn:keeptrusts:acr:mfa",),
        )
    old = verify_signature(sign(claims(auth_time=NOW - 3600)), cache, ["RS256"])
    with pytest.raises(ValidationFailed):
        check_claims(old, issuer=ISSUER, client_id=CLIENT, now=NOW, nonce="n-123", max_age=60)


def validate(token, **kw):
    """Through the one entry point, as sign-in, refresh and kt-devserver's SSO call it."""
    options = {"issuer": ISSUER, "client_id": CLIENT, "now": NOW, "nonce": "n-123"}
    options.update(kw)
    return validate_id_token(token, keys=parse_jwks(jwks(RSA, EC)), **options)


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("oidcc-client-test-refresh-token-invalid-issuer", {"iss": "https://other.example"}),
        ("oidcc-client-test-refresh-token-invalid-sub", {"sub": "usr_2"}),
        ("oidcc-client-test-refresh-token-invalid-aud", {"aud": "x"}),
        ("oidcc-client-test-refresh-token-invalid-azp", {"azp": "x"}),
        ("auth_time-before-the-original-sign-in", {"auth_time": NOW - 3600}),
    ],
)
def test_refreshed_id_token_must_match_original(case, change):
    original = SignIn(sub="usr_1", auth_time=NOW - 5)
    assert validate(sign(claims(nonce=None)), nonce=None, refreshing=original).sub == "usr_1"
    with pytest.raises(ValidationFailed):
        validate(sign(claims(nonce=None, **change)), nonce=None, refreshing=original)


def test_refreshed_id_token_with_a_later_auth_time_is_accepted():
    """Providers that put the person's latest sign-in anywhere into auth_time (issue 10 case 6):
    the later time comes back to be recorded, not refused."""
    original = SignIn(sub="usr_1", auth_time=NOW - 5)
    later = validate(sign(claims(nonce=None, auth_time=NOW - 1)), nonce=None, refreshing=original)
    assert later.auth_time == NOW - 1


def test_entry_point_accepts_a_key_cache_or_a_fetched_key_set():
    token = sign(claims())
    cache = KeyCache(Fetches(jwks(RSA)), monotonic=lambda: 0.0)
    assert validate_id_token(
        token, keys=cache, issuer=ISSUER, client_id=CLIENT, now=NOW, nonce="n-123"
    ) == validate(token)


def test_entry_point_narrows_to_the_providers_algorithms_never_beyond_the_allow_list():
    token = sign(claims(), key=EC, alg="ES256")
    with pytest.raises(ValidationFailed, match="not allowed"):
        validate(token, algs=("RS256",))
    assert "none" not in ALLOWED_ALGS and not any(a.startswith("HS") for a in ALLOWED_ALGS)


def test_entry_point_has_one_leeway_for_exp_and_iat():
    assert validate(sign(claims(exp=NOW - LEEWAY + 1))).sub == "usr_1"
    assert validate(sign(claims(iat=NOW + LEEWAY - 1))).sub == "usr_1"
    with pytest.raises(ValidationFailed, match="expired"):
        validate(sign(claims(exp=NOW - LEEWAY - 1)))
    with pytest.raises(ValidationFailed, match="future"):
        validate(sign(claims(iat=NOW + LEEWAY + 1)))


def test_error_messages_carry_no_token():
    token = sign(claims(nonce="other"))
    with pytest.raises(ValidationFailed) as info:
        verify(token)
    assert token not in str(info.value) and "n-123" not in str(info.value)


def test_allowed_non_default_algorithm_verifies():
    token = jwt.encode(
        {"alg": "PS384", "kid": "rsa-1"}, claims(), RSA, registry=JWSRegistry(algorithms=["PS384"])
    )
    assert verify(token, algs=("PS384",)).sub == "usr_1"
