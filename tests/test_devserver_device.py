"""The device authorization grant (RFC 8628) of kt-devserver, against the real process.

httpx2 plays both sides: the device (device authorization, polling the token endpoint) and the
person's browser (verification page → confirm → sign-in/MFA → consent → final page). Timing
(interval, expiry) is in test_devserver_device_app.py with an injected clock; here the knobs
`--device-code-ttl` and `--device-interval` are checked only with values that need no waiting.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner

from kt_devserver import demo
from kt_devserver.__main__ import main
from kt_devserver.oauth import pages as oauth_pages
from tests.fixtures.device_person import Person, form, kind
from tests.fixtures.devserver import DevServer, start_devserver
from tests.fixtures.oauth_client import (
    ALL_SCOPES,
    CLIENT_ID,
    CSP,
    DEVICE_GRANT,
    NOT_VALID,
    oauth_error,
    refresh,
    verify_id_token,
    whoami,
)

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")
APPROVED_TEXT = "You can return to your device"
DENIED_TEXT = "Sign-in denied"
PHISHING_WARNING = "Only continue if you started this sign-in yourself"

# --- the device side ---------------------------------------------------------------------------


def device_authorization(http: httpx2.Client, scope: str | None = ALL_SCOPES) -> dict[str, Any]:
    data = {"client_id": CLIENT_ID}
    if scope is not None:
        data["scope"] = scope
    response = http.post("/oauth/device_authorization", data=data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def poll(http: httpx2.Client, device_code: str) -> httpx2.Response:
    data = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": CLIENT_ID}
    return http.post("/oauth/token", data=data)


def tokens_for(server: DevServer, user: str = "alice", scope: str = ALL_SCOPES) -> dict[str, Any]:
    device = httpx2.Client(base_url=server.url, timeout=10)
    person = Person(server)
    try:
        grant = device_authorization(device, scope)
        oauth_error(poll(device, grant["device_code"]), 400, "authorization_pending")
        done = person.decide(grant["user_code"], "approve", user)
        assert kind(done) == "approved" and APPROVED_TEXT in done.text
        response = poll(device, grant["device_code"])
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body: dict[str, Any] = response.json()
        body["_device_code"] = grant["device_code"]
        return body
    finally:
        device.close()
        person.close()


# --- fixtures ----------------------------------------------------------------------------------


def own_server(reason: str) -> pytest.MarkDecorator:
    """Give a test a `server` of its own (a new parameter value is a new instance of the module
    fixture): tests that sign bob in need one, as a TOTP code is good once (RFC 6238 §5.2)."""
    return pytest.mark.parametrize("server", [reason], indirect=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One server for the module (default knobs: expires_in 600, interval 5)."""
    started = start_devserver(tmp_path_factory.mktemp("device"))
    yield started
    started.stop()


@pytest.fixture
def device(server: DevServer) -> Iterator[httpx2.Client]:
    client = httpx2.Client(base_url=server.url, timeout=10)
    yield client
    client.close()


@pytest.fixture
def person(server: DevServer) -> Iterator[Person]:
    p = Person(server)
    yield p
    p.close()


# --- metadata and the device authorization endpoint -------------------------------------------


def test_metadata_advertises_the_device_endpoint_and_grant(server, device):
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        meta = device.get(path).json()
        assert meta["device_authorization_endpoint"] == server.url + "/oauth/device_authorization"
        assert DEVICE_GRANT in meta["grant_types_supported"]
        assert {"authorization_code", "refresh_token"} <= set(meta["grant_types_supported"])


def test_device_authorization_response_shape(server, device):
    body = device_authorization(device)
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert USER_CODE.match(body["user_code"]), body["user_code"]
    assert body["verification_uri"] == server.url + "/device"
    assert body["verification_uri_complete"] == f"{server.url}/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600 and body["interval"] == 5
    # ≥ 32 random bytes: base64url after the prefix, 43 characters = 256 bits.
    assert re.fullmatch(r"ktd_[A-Za-z0-9_-]{43}", body["device_code"]), body["device_code"]


def test_codes_are_random_over_the_whole_alphabet(device):
    bodies = [device_authorization(device, "openid") for _ in range(150)]
    user_codes = [b["user_code"] for b in bodies]
    device_codes = [b["device_code"] for b in bodies]
    assert len(set(user_codes)) == len(user_codes)
    assert len(set(device_codes)) == len(device_codes)
    letters = Counter("".join(code.replace("-", "") for code in user_codes))
    assert set(letters) == set(ALPHABET)  # 1200 draws: every letter shows up
    assert max(letters.values()) < 3 * 1200 / len(ALPHABET)  # and none dominates
    assert 8 * math.log2(len(ALPHABET)) > 34  # RFC 8628 §6.1: 20^8 ≈ 2^34.5


def test_device_authorization_refusals(device):
    unknown = device.post("/oauth/device_authorization", data={"client_id": "nope"})
    oauth_error(unknown, 400, "invalid_client")
    missing = device.post("/oauth/device_authorization", data={"scope": "openid"})
    oauth_error(missing, 400, "invalid_client")
    bad_scope = device.post(
        "/oauth/device_authorization", data={"client_id": CLIENT_ID, "scope": "openid admin"}
    )
    oauth_error(bad_scope, 400, "invalid_scope")
    repeated = device.post(
        "/oauth/device_authorization", content="client_id=kt-cli&client_id=kt-cli",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    oauth_error(repeated, 400, "invalid_request")
    json_body = device.post("/oauth/device_authorization", json={"client_id": CLIENT_ID})
    oauth_error(json_body, 400, "invalid_request")


def test_default_scope_is_openid(device, person):
    body = device_authorization(device, scope=None)
    page = person.enter(body["user_code"])
    assert 'data-scope="openid"' in page.text and 'data-scope="email"' not in page.text


def test_unknown_device_code_is_invalid_grant(device):
    oauth_error(poll(device, "ktd_" + "A" * 43), 400, "invalid_grant")
    missing = device.post("/oauth/token", data={"grant_type": DEVICE_GRANT, "client_id": CLIENT_ID})
    oauth_error(missing, 400, "invalid_request")


# --- the flow ----------------------------------------------------------------------------------


def test_alice_pending_then_approved_then_tokens(server, device, person):
    grant = device_authorization(device)
    oauth_error(poll(device, grant["device_code"]), 400, "authorization_pending")
    page = person.open(grant["verification_uri_complete"].removeprefix(server.url))
    assert kind(page) == "device-confirm"
    assert PHISHING_WARNING in page.text
    assert "Keeptrusts CLI (kt)" in page.text and grant["user_code"] in page.text
    for scope in ALL_SCOPES.split():
        assert f'data-scope="{scope}"' in page.text
    page = person.submit(page, decision="continue")
    page = person.sign_in(page, "alice")
    assert kind(page) == "device-consent"
    assert 'id="client-name">Keeptrusts CLI (kt)<' in page.text
    done = person.submit(page, decision="approve")
    assert done.status_code == 200 and APPROVED_TEXT in done.text and DENIED_TEXT not in done.text

    response = poll(device, grant["device_code"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["access_token"].startswith("kta_") and body["refresh_token"].startswith("ktr_")
    assert set(body["scope"].split()) == set(ALL_SCOPES.split())

    claims = verify_id_token(device, body["id_token"])
    assert claims["iss"] == server.url
    assert claims["aud"] == CLIENT_ID and claims["azp"] == CLIENT_ID
    assert "nonce" not in claims
    assert claims["acr"] == "urn:keeptrusts:acr:pwd" and claims["amr"] == ["pwd"]
    assert isinstance(claims["auth_time"], int) and claims["auth_time"] <= claims["iat"]
    assert claims["email"] == demo.ALICE_EMAIL and claims["name"] == demo.ALICE_NAME

    me = whoami(device, body["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == claims["sub"]
    assert me.json()["auth_method"] == "session" and me.json()["mfa_authenticated"] is False

    rotated = refresh(device, body["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != body["refresh_token"]
    renewed = verify_id_token(device, rotated.json()["id_token"])
    for claim in ("sub", "aud", "auth_time", "acr", "amr"):
        assert renewed[claim] == claims[claim]
    oauth_error(refresh(device, body["refresh_token"]), 400, "invalid_grant")  # rotation


@own_server("bob signs in")
def test_bob_signs_in_with_totp(server):
    body = tokens_for(server, "bob")
    with httpx2.Client(base_url=server.url) as http:
        claims = verify_id_token(http, body["id_token"])
        assert claims["acr"] == "urn:keeptrusts:acr:mfa" and claims["amr"] == ["pwd", "otp"]
        me = whoami(http, body["access_token"]).json()
    assert me["user"]["email"] == demo.BOB_EMAIL and me["mfa_authenticated"] is True


def test_without_offline_access_no_refresh_token(server):
    body = tokens_for(server, scope="openid email")
    assert "refresh_token" not in body and "id_token" in body


def test_device_code_is_single_use(server, device):
    body = tokens_for(server)
    oauth_error(poll(device, body["_device_code"]), 400, "invalid_grant")
    # Like a replayed authorization code, the replay revokes what the device code bought.
    me = whoami(device, body["access_token"])
    assert me.status_code == 401 and me.json()["error"]["code"] == "auth.token_revoked"


def test_deny_at_consent_is_access_denied(device, person):
    grant = device_authorization(device)
    done = person.decide(grant["user_code"], "deny")
    assert kind(done) == "denied" and DENIED_TEXT in done.text and APPROVED_TEXT not in done.text
    oauth_error(poll(device, grant["device_code"]), 400, "access_denied")
    oauth_error(poll(device, grant["device_code"]), 400, "access_denied")


def test_deny_on_the_confirm_page_is_access_denied(device, person):
    grant = device_authorization(device)
    page = person.enter(grant["user_code"])
    done = person.submit(page, decision="deny")
    assert kind(done) == "denied" and DENIED_TEXT in done.text
    oauth_error(poll(device, grant["device_code"]), 400, "access_denied")
    # The code is spent: entering it again is just "not valid or expired".
    again = person.enter(grant["user_code"])
    assert again.status_code == 400 and NOT_VALID in again.text


def test_five_wrong_passwords_deny_the_device(device, person):
    grant = device_authorization(device)
    page = person.submit(person.enter(grant["user_code"]), decision="continue")
    for _ in range(4):
        page = person.submit(page, email=demo.ALICE_EMAIL, password="wrong")
        assert kind(page) == "login" and "Wrong email or password." in page.text
    done = person.submit(page, email=demo.ALICE_EMAIL, password="wrong")
    assert kind(done) == "denied"
    oauth_error(poll(device, grant["device_code"]), 400, "access_denied")


@own_server("bob's browser is signed in")
def test_a_signed_in_browser_goes_from_confirm_to_consent(server, device, person):
    first = device_authorization(device)
    person.decide(first["user_code"], "approve", "bob")
    second = device_authorization(device)
    page = person.submit(person.enter(second["user_code"]), decision="continue")
    assert kind(page) == "device-consent" and demo.BOB_EMAIL in page.text
    assert kind(person.submit(page, decision="approve")) == "approved"
    body = poll(device, second["device_code"]).json()
    assert verify_id_token(device, body["id_token"])["acr"] == "urn:keeptrusts:acr:mfa"


@own_server("bob decides too late")
def test_a_code_is_decided_once(device, server):
    grant = device_authorization(device)
    one, two = Person(server), Person(server)
    try:
        page_one = one.to_consent(grant["user_code"])
        page_two = two.to_consent(grant["user_code"], "bob")
        assert kind(one.submit(page_one, decision="approve")) == "approved"
        late = two.submit(page_two, decision="approve")
        assert late.status_code == 400 and NOT_VALID in late.text
    finally:
        one.close()
        two.close()
    body = poll(device, grant["device_code"]).json()
    assert verify_id_token(device, body["id_token"])["email"] == demo.ALICE_EMAIL


# --- user code entry ---------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["lower", "nodash", "lower-nodash", "spaces"])
def test_user_code_is_accepted_in_any_case_with_or_without_dash(device, person, typed):
    code = device_authorization(device)["user_code"]
    variants = {
        "lower": code.lower(),
        "nodash": code.replace("-", ""),
        "lower-nodash": code.replace("-", "").lower(),
        "spaces": " " + code.replace("-", " ") + " ",
    }
    page = person.enter(variants[typed])
    assert page.status_code == 200 and kind(page) == "device-confirm", page.text
    assert code in page.text  # shown in its canonical XXXX-XXXX form


def test_prefilled_link_also_accepts_lower_case(device, person):
    code = device_authorization(device)["user_code"]
    page = person.open("/device?user_code=" + code.replace("-", "").lower())
    assert kind(page) == "device-confirm" and PHISHING_WARNING in page.text


def test_wrong_codes_get_one_generic_answer(server, device, person):
    """Never issued, spent, denied or not a code at all: the same page, the same words."""
    spent = device_authorization(device)
    with Person(server) as someone:
        someone.decide(spent["user_code"], "approve")
    assert poll(device, spent["device_code"]).status_code == 200
    denied = device_authorization(device)
    with Person(server) as someone:
        someone.decide(denied["user_code"], "deny")
    answers = [
        person.enter(typed)
        for typed in ("BCDF-GHJK", spent["user_code"], denied["user_code"], "x" * 200)
    ]
    for answer in answers:
        assert answer.status_code == 400 and NOT_VALID in answer.text
        assert kind(answer) == "device-code"
    assert len({answer.text for answer in answers}) == 1


def test_wrong_codes_are_rate_limited_per_browser_session(device, person, server):
    good = device_authorization(device)["user_code"]
    for i in range(5):
        wrong = person.enter("BCDF-BCDF")
        assert wrong.status_code == 400 and NOT_VALID in wrong.text, i
    limited = person.enter(good)  # even the right code is not looked up now
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many wrong codes" in limited.text and kind(limited) == "device-code"
    assert person.open("/device?user_code=" + good).status_code == 429
    # Another browser is not affected.
    other = Person(server)
    try:
        assert kind(other.enter(good)) == "device-confirm"
    finally:
        other.close()


def test_device_redirect_keeps_only_the_user_code(person):
    response = person.http.get("/device", params={"user_code": "BCDF-GHJK", "x": "y"})
    assert response.status_code == 302
    assert response.headers["location"] == "/oauth/device?user_code=BCDF-GHJK"
    assert person.http.get("/device").headers["location"] == "/oauth/device"


# --- CSRF, cookies, headers --------------------------------------------------------------------


def test_csrf_is_required_on_every_form(device, person, server):
    grant = device_authorization(device)
    page = person.open("/device")
    f = form(page)
    assert f.fields["csrf_token"]
    missing = person.http.post(f.action, data={"user_code": grant["user_code"]})
    assert missing.status_code == 400 and 'data-error="invalid_csrf_token"' in missing.text
    wrong = person.http.post(f.action, data={"user_code": grant["user_code"], "csrf_token": "0"})
    assert wrong.status_code == 400 and 'data-error="invalid_csrf_token"' in wrong.text

    confirm = person.submit(page, user_code=grant["user_code"])
    c = form(confirm)
    forged = person.http.post(
        c.action, data={"txn": c.fields["txn"], "decision": "continue", "csrf_token": "0"}
    )
    assert forged.status_code == 400 and 'data-error="invalid_csrf_token"' in forged.text
    # Another browser cannot answer this browser's forms (its token and session differ).
    other = Person(server)
    try:
        other.open("/device")
        stolen = other.http.post(c.action, data={**c.fields, "decision": "continue"})
        assert stolen.status_code == 400
    finally:
        other.close()

    consent = person.sign_in(person.submit(confirm, decision="continue"), "alice")
    k = form(consent)
    forged = person.http.post(
        k.action, data={"txn": k.fields["txn"], "decision": "approve", "csrf_token": "0"}
    )
    assert forged.status_code == 400 and 'data-error="invalid_csrf_token"' in forged.text
    oauth_error(poll(device, grant["device_code"]), 400, "authorization_pending")


def test_a_device_transaction_cannot_use_the_code_flow_consent(device, person):
    grant = device_authorization(device)
    page = person.to_consent(grant["user_code"])
    f = form(page)
    crossed = person.http.post("/oauth/authorize/consent", data={**f.fields, "decision": "approve"})
    assert crossed.status_code == 400
    assert kind(person.submit(page, decision="approve")) == "approved"


def test_pages_send_the_as_headers(device, person):
    grant = device_authorization(device)
    pages = [person.open("/device"), person.enter("BCDF-GHJK"), person.enter(grant["user_code"])]
    pages.append(person.submit(pages[-1], decision="continue"))  # sign-in
    pages.append(person.sign_in(pages[-1], "alice"))  # consent
    pages.append(person.submit(pages[-1], decision="approve"))  # final page
    for page in pages:
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["content-type"].startswith("text/html")
        assert "<script" not in page.text


def test_the_cookie_stays_under_oauth(person):
    response = person.http.get("/oauth/device")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(oauth_pages.COOKIE_NAME + "=")
    assert "Path=/oauth" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --- knobs and logs ----------------------------------------------------------------------------


def test_help_documents_the_device_knobs():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "--device-code-ttl" in result.output and "--device-interval" in result.output


def test_knobs_set_expires_in_and_interval(devserver_factory):
    expired = devserver_factory("--device-code-ttl", "0", "--device-interval", "1")
    with httpx2.Client(base_url=expired.url) as http:
        grant = device_authorization(http)
        assert (grant["expires_in"], grant["interval"]) == (0, 1)
        oauth_error(poll(http, grant["device_code"]), 400, "expired_token")
    person = Person(expired)
    try:
        page = person.enter(grant["user_code"])
        assert page.status_code == 400 and NOT_VALID in page.text
    finally:
        person.close()

    eager = devserver_factory("--device-interval", "0")
    with httpx2.Client(base_url=eager.url) as http:
        grant = device_authorization(http)
        assert (grant["expires_in"], grant["interval"]) == (600, 0)
        for _ in range(3):  # interval 0: no slow_down however fast
            oauth_error(poll(http, grant["device_code"]), 400, "authorization_pending")


def test_slow_down_against_the_process(device):
    grant = device_authorization(device)
    oauth_error(poll(device, grant["device_code"]), 400, "authorization_pending")
    body = oauth_error(poll(device, grant["device_code"]), 400, "slow_down")
    assert "10 seconds" in body["error_description"]


def test_no_codes_or_tokens_in_the_server_log(devserver):
    secrets_seen: list[str] = []
    person = Person(devserver)
    try:
        with httpx2.Client(base_url=devserver.url) as http:
            for decision in ("approve", "deny"):
                grant = device_authorization(http)
                secrets_seen += [grant["device_code"], grant["user_code"]]
                poll(http, grant["device_code"])
                poll(http, grant["device_code"])  # slow_down
                person.decide(grant["user_code"], decision, "bob")
                tokens = poll(http, grant["device_code"]).json()
                secrets_seen += [v for k, v in tokens.items() if k.endswith("token")]
                poll(http, grant["device_code"])  # replay (logged as a warning)
            person.enter("BCDF-GHJK")
    finally:
        person.close()
    assert devserver.stop() == 0
    log = devserver.stderr()
    assert "device code replayed" in log  # the log does say what happened ...
    for secret in secrets_seen:  # ... without any code or token
        for form_ in {secret, secret.replace("-", ""), secret.lower()}:
            assert form_ not in log
    assert "BCDF" not in log


def test_confirm_page_for_unknown_link_code(person):
    page = person.open("/device?user_code=ZZZZ-ZZZZ")
    assert page.status_code == 400 and kind(page) == "device-code" and NOT_VALID in page.text
