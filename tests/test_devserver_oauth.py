"""The OAuth/OIDC authorization server of kt-devserver, against the real process.

httpx2 plays the browser: it follows the HTML forms by hand (authorize → sign-in → MFA → consent)
and reads the 302's Location; nothing listens on the loopback redirect target.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import pytest

from kt_devserver import demo, totp
from kt_devserver.oauth import pages as oauth_pages
from tests.fixtures.devserver import DevServer, start_devserver
from tests.fixtures.oauth_client import (
    ALL_SCOPES,
    CALLBACK_PORT,
    CLIENT_ID,
    CSP,
    CSP_IPV6,
    REDIRECT_URI,
    Browser,
    authorization,
    callback_of,
    exchange,
    form_of,
    full_flow,
    new_pkce,
    oauth_error,
    page_kind,
    refresh,
    tokens_for,
    verify_id_token,
    whoami,
)

# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One server for the module: every test uses its own browser, state, nonce and PKCE."""
    started = start_devserver(tmp_path_factory.mktemp("oauth"))
    yield started
    started.stop()


@pytest.fixture
def browser(server: DevServer) -> Iterator[Browser]:
    b = Browser(server)
    yield b
    b.close()


@pytest.fixture
def bob_browser(devserver: DevServer) -> Iterator[Browser]:
    """For tests that sign bob in: a TOTP code is good once per server (RFC 6238 §5.2), so each
    gets a server of its own rather than the module's."""
    b = Browser(devserver)
    yield b
    b.close()


# --- metadata and keys -------------------------------------------------------------------------


def test_metadata_documents_agree_and_the_issuer_is_the_base_url(server, browser):
    issuer = server.ready_line.removeprefix("kt-devserver listening on ")
    assert issuer == server.url and not issuer.endswith("/")
    oauth = browser.http.get("/.well-known/oauth-authorization-server")
    oidc = browser.http.get("/.well-known/openid-configuration")
    assert oauth.status_code == oidc.status_code == 200
    meta = oauth.json()
    assert meta == oidc.json()
    assert b'"issuer": "' + issuer.encode() + b'"' in oauth.content or meta["issuer"] == issuer
    assert meta["issuer"] == issuer
    for name, path in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("jwks_uri", "/oauth/jwks"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("revocation_endpoint", "/oauth/revoke"),
    ]:
        assert meta[name] == issuer + path
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["acr_values_supported"] == ["urn:keeptrusts:acr:pwd", "urn:keeptrusts:acr:mfa"]
    assert set(meta["scopes_supported"]) == {"openid", "profile", "email", "offline_access"}
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert meta["token_endpoint_auth_methods_supported"] == ["none"]
    assert {"authorization_code", "refresh_token"} <= set(meta["grant_types_supported"])


def test_jwks_publishes_only_the_public_key(browser):
    keys = browser.http.get("/oauth/jwks").json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_signing_key_is_kept_across_restarts(tmp_path):
    first = start_devserver(tmp_path)
    try:
        kid = httpx2.get(first.url + "/oauth/jwks").json()["keys"][0]["kid"]
    finally:
        first.stop()
    second = start_devserver(tmp_path)
    try:
        assert httpx2.get(second.url + "/oauth/jwks").json()["keys"][0]["kid"] == kid
    finally:
        second.stop()


# --- the code flow -----------------------------------------------------------------------------


def test_alice_code_flow_with_pkce(server, browser):
    auth, cb = full_flow(browser, "alice")
    assert set(cb.query) == {"code", "state", "iss"}
    assert cb.query["state"] == auth.params["state"]
    assert cb.query["iss"] == server.url
    response = exchange(browser.http, auth, cb)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["access_token"].startswith("kta_") and body["refresh_token"].startswith("ktr_")
    assert set(body["scope"].split()) == set(ALL_SCOPES.split())

    claims = verify_id_token(browser.http, body["id_token"])
    assert claims["iss"] == server.url
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == auth.params["nonce"]
    assert claims["acr"] == "urn:keeptrusts:acr:pwd"
    assert claims["amr"] == ["pwd"]
    assert isinstance(claims["auth_time"], int) and claims["auth_time"] <= claims["iat"]
    assert claims["exp"] > claims["iat"]
    assert claims["email"] == demo.ALICE_EMAIL and claims["name"] == demo.ALICE_NAME

    me = whoami(browser.http, body["access_token"])
    assert me.status_code == 200, me.text
    me_body = me.json()
    assert me_body["user"]["email"] == demo.ALICE_EMAIL
    assert me_body["user"]["id"] == claims["sub"]
    assert me_body["mfa_authenticated"] is False
    assert me_body["auth_method"] == "session"
    assert "gateways:write" in me_body["scopes"]  # alice's role scopes


def test_bob_code_flow_with_totp(bob_browser):
    body = tokens_for(bob_browser, "bob")
    claims = verify_id_token(bob_browser.http, body["id_token"])
    assert claims["acr"] == "urn:keeptrusts:acr:mfa"
    assert claims["amr"] == ["pwd", "otp"]
    me = whoami(bob_browser.http, body["access_token"]).json()
    assert me["user"]["email"] == demo.BOB_EMAIL
    assert me["mfa_authenticated"] is True
    assert "gateways:write" not in me["scopes"]  # bob is a member


def test_ipv6_loopback_redirect_with_any_port(browser):
    auth = authorization(redirect_uri="http://[::1]:40123/callback")
    _, cb = full_flow(browser, "alice", auth)
    assert cb.location.startswith("http://[::1]:40123/callback?")
    assert exchange(browser.http, auth, cb).status_code == 200


def test_no_offline_access_means_no_refresh_token(browser):
    body = tokens_for(browser, scope="openid email")
    assert "refresh_token" not in body
    assert "id_token" in body
    claims = verify_id_token(browser.http, body["id_token"])
    assert "email" in claims and "name" not in claims


def test_userinfo(bob_browser):
    body = tokens_for(bob_browser, "bob")
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    info = bob_browser.http.get("/oauth/userinfo", headers=auth)
    assert info.status_code == 200, info.text
    claims = verify_id_token(bob_browser.http, body["id_token"])
    assert info.json() == {
        "sub": claims["sub"],
        "email": demo.BOB_EMAIL,
        "email_verified": True,
        "name": demo.BOB_NAME,
    }
    missing = bob_browser.http.get("/oauth/userinfo")
    assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
    bogus = bob_browser.http.get("/oauth/userinfo", headers={"Authorization": "Bearer kta_nope"})
    oauth_error(bogus, 401, "invalid_token")


# --- refresh -----------------------------------------------------------------------------------


def test_refresh_rotates_and_a_replay_revokes_the_family(bob_browser):
    first = tokens_for(bob_browser, "bob")
    original = verify_id_token(bob_browser.http, first["id_token"])
    rotated = refresh(bob_browser.http, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    renewed = verify_id_token(bob_browser.http, second["id_token"])
    for claim in ("iss", "sub", "aud", "auth_time", "acr", "amr"):
        assert renewed[claim] == original[claim], claim
    assert "nonce" not in renewed
    assert whoami(bob_browser.http, second["access_token"]).json()["mfa_authenticated"] is True

    oauth_error(refresh(bob_browser.http, first["refresh_token"]), 400, "invalid_grant")
    # The replay revoked the whole family: the newest tokens are dead too.
    oauth_error(refresh(bob_browser.http, second["refresh_token"]), 400, "invalid_grant")
    me = whoami(bob_browser.http, second["access_token"])
    assert me.status_code == 401 and me.json()["error"]["code"] == "auth.token_revoked"


def test_password_session_refresh_tokens_do_not_work_at_the_token_endpoint(browser):
    session = browser.http.post(
        "/v1/auth/login", json={"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD}
    ).json()
    oauth_error(refresh(browser.http, session["refresh_token"]), 400, "invalid_grant")


# --- code exchange rules -----------------------------------------------------------------------


def test_code_replay_is_refused_and_revokes_what_it_issued(browser):
    auth, cb = full_flow(browser)
    first = exchange(browser.http, auth, cb).json()
    oauth_error(exchange(browser.http, auth, cb), 400, "invalid_grant")
    me = whoami(browser.http, first["access_token"])
    assert me.status_code == 401 and me.json()["error"]["code"] == "auth.token_revoked"
    oauth_error(refresh(browser.http, first["refresh_token"]), 400, "invalid_grant")


def test_wrong_verifier_is_invalid_grant(browser):
    auth, cb = full_flow(browser)
    wrong = new_pkce().verifier
    oauth_error(exchange(browser.http, auth, cb, code_verifier=wrong), 400, "invalid_grant")


def test_missing_verifier_is_refused(browser):
    auth, cb = full_flow(browser)
    data = {
        "grant_type": "authorization_code",
        "code": cb.query["code"],
        "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID,
    }
    oauth_error(browser.http.post("/oauth/token", data=data), 400, "invalid_request")


@pytest.mark.parametrize(
    "other",
    [
        f"http://127.0.0.1:{CALLBACK_PORT + 1}/callback",
        f"http://[::1]:{CALLBACK_PORT}/callback",
        f"http://127.0.0.1:{CALLBACK_PORT}/callback/",
    ],
)
def test_token_redirect_uri_must_match_byte_for_byte(browser, other):
    auth, cb = full_flow(browser)
    oauth_error(exchange(browser.http, auth, cb, redirect_uri=other), 400, "invalid_grant")


@pytest.mark.parametrize(
    ("challenge_method", "drop_challenge"),
    [("plain", False), (None, False), ("S256", True), ("S512", False)],
)
def test_pkce_plain_or_missing_is_refused(browser, challenge_method, drop_challenge):
    overrides: dict[str, str | None] = {"code_challenge_method": challenge_method}
    if drop_challenge:
        overrides["code_challenge"] = None
    auth = authorization(**overrides)
    if challenge_method == "plain":
        auth.params["code_challenge"] = auth.pkce.verifier
    cb = callback_of(browser.authorize(auth))
    assert cb.query["error"] == "invalid_request"
    assert cb.query["state"] == auth.params["state"]
    assert cb.query["iss"] == browser.server.url
    assert "code" not in cb.query


def test_token_endpoint_errors(browser):
    http = browser.http
    oauth_error(http.post("/oauth/token", data={"grant_type": "password"}), 400,
                "unsupported_grant_type")  # fmt: skip
    oauth_error(
        http.post("/oauth/token", json={"grant_type": "authorization_code"}), 400, "invalid_request"
    )
    no_code = {"grant_type": "authorization_code", "client_id": CLIENT_ID}
    oauth_error(http.post("/oauth/token", data=no_code), 400, "invalid_request")
    unknown = {"grant_type": "authorization_code", "client_id": "nope", "code": "x"}
    oauth_error(http.post("/oauth/token", data=unknown), 400, "invalid_client")
    no_client = {"grant_type": "authorization_code", "code": "x"}
    oauth_error(http.post("/oauth/token", data=no_client), 400, "invalid_client")
    bad_code = {**no_code, "code": "nope", "redirect_uri": REDIRECT_URI, "code_verifier": "a" * 43}
    oauth_error(http.post("/oauth/token", data=bad_code), 400, "invalid_grant")
    twice = "grant_type=authorization_code&grant_type=refresh_token&client_id=kt-cli"
    response = http.post(
        "/oauth/token",
        content=twice,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    oauth_error(response, 400, "invalid_request")


# --- authorization request validation: error pages, never redirects ----------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        f"http://localhost:{CALLBACK_PORT}/callback",
        f"http://127.0.0.1:{CALLBACK_PORT}/other",
        f"http://127.0.0.1:{CALLBACK_PORT}/callback?x=1",
        f"http://127.0.0.1:{CALLBACK_PORT}/callback#frag",
        f"https://127.0.0.1:{CALLBACK_PORT}/callback",
        f"http://evil.example:{CALLBACK_PORT}/callback",
        f"http://user@127.0.0.1:{CALLBACK_PORT}/callback",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.2/callback",
        None,
    ],
)
def test_untrusted_redirect_uris_get_an_error_page(browser, redirect_uri):
    response = browser.authorize(authorization(redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "cannot continue" in response.text


def test_unknown_client_gets_an_error_page(browser):
    response = browser.authorize(authorization(client_id="evil-cli"))
    assert response.status_code == 400 and "location" not in response.headers


def test_unsupported_response_type_redirects_with_error(browser):
    auth = authorization(response_type="token")
    cb = callback_of(browser.authorize(auth))
    assert cb.query["error"] == "unsupported_response_type"
    assert cb.query["state"] == auth.params["state"] and cb.query["iss"] == browser.server.url


def test_pages_have_security_headers_and_the_cookie_is_scoped(browser):
    page = browser.authorize(authorization())
    assert page_kind(page) == "login"
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("kt_as_session=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/oauth" in lowered
    assert "<script" not in page.text and "http://" not in page.text.split("</style>")[1]
    form = form_of(page)
    assert set(form.fields) == {"csrf_token", "txn", "email", "password"}
    assert form.buttons == [("", "")]
    ipv6 = browser.authorize(authorization(redirect_uri="http://[::1]:4000/callback"))
    assert ipv6.headers["content-security-policy"] == CSP_IPV6


def test_page_text_is_escaped():
    page = oauth_pages.error_page(400, 'x"><script>', "<script>alert(1)</script>")
    assert page.text is not None
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


@pytest.mark.parametrize(
    "params",
    [
        {"redirect_uri": 'http://127.0.0.1:1/"x'},
        {"redirect_uri": "http://127.0.0.1:1/caf\u00e9"},
        {"redirect_uri": "http://127.0.0.1:1/<script>"},
    ],
)
def test_odd_characters_in_the_request_get_an_error_page(browser, params):
    response = browser.authorize(authorization(**params))
    assert response.status_code == 400 and "location" not in response.headers
    assert "<script>" not in response.text


@pytest.mark.parametrize("response_type", ['code"x', "caf\u00e9", "code id_token"])
def test_odd_response_types_redirect_with_unsupported_response_type(browser, response_type):
    auth = authorization(response_type=response_type)
    cb = callback_of(browser.authorize(auth))
    assert cb.query["error"] == "unsupported_response_type"
    assert cb.query["state"] == auth.params["state"]


# --- the pages ---------------------------------------------------------------------------------


def test_deny_redirects_with_access_denied(server, browser):
    auth = authorization()
    page = browser.sign_in(browser.authorize(auth), demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
    assert form_of(page).buttons == [("decision", "approve"), ("decision", "deny")]
    assert 'data-scope="offline_access"' in page.text and "Keeptrusts CLI" in page.text
    cb = callback_of(browser.submit(page, decision="deny"))
    assert cb.query["error"] == "access_denied"
    assert cb.query["state"] == auth.params["state"]
    assert cb.query["iss"] == server.url
    assert "code" not in cb.query


@pytest.mark.parametrize("csrf", [None, "", "0" * 64])
def test_forms_without_the_right_csrf_token_are_400(browser, csrf):
    page = browser.authorize(authorization())
    form = form_of(page)
    data = {**form.fields, "email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD}
    if csrf is None:
        del data["csrf_token"]
    else:
        data["csrf_token"] = csrf
    response = browser.http.post(form.action, data=data)
    assert response.status_code == 400
    assert "security token" in response.text
    assert "location" not in response.headers


def test_csrf_token_of_another_browser_is_refused(server, browser):
    other = Browser(server)
    try:
        theirs = form_of(other.authorize(authorization()))
    finally:
        other.close()
    mine = form_of(browser.authorize(authorization()))
    data = {**mine.fields, "csrf_token": theirs.fields["csrf_token"]}
    data.update(email=demo.ALICE_EMAIL, password=demo.ALICE_PASSWORD)
    assert browser.http.post(mine.action, data=data).status_code == 400


def test_wrong_password_and_unknown_email_look_the_same(browser):
    page = browser.authorize(authorization())
    wrong = browser.submit(page, email=demo.ALICE_EMAIL, password="nope")
    assert page_kind(wrong) == "login" and "Wrong email or password." in wrong.text
    unknown = browser.submit(wrong, email="nobody@example.com", password="nope")
    assert page_kind(unknown) == "login"
    strip = lambda r: r.text.replace(form_of(r).fields["csrf_token"], "").replace("4 attempt", "")  # noqa: E731
    assert strip(unknown).replace("3 attempt", "") == strip(wrong).replace("3 attempt", "")
    # The same transaction still completes with the right password.
    page = browser.sign_in(unknown, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
    assert page_kind(page) == "consent"


def test_five_failures_end_the_attempt(browser):
    auth = authorization()
    page = browser.authorize(auth)
    for _ in range(4):
        page = browser.submit(page, email=demo.ALICE_EMAIL, password="nope")
        assert page_kind(page) == "login"
    stale = form_of(page)
    cb = callback_of(browser.submit(page, email=demo.ALICE_EMAIL, password="nope"))
    assert cb.query["error"] == "access_denied" and cb.query["state"] == auth.params["state"]
    again = browser.http.post(
        stale.action,
        data={**stale.fields, "email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD},
    )
    assert again.status_code == 400


def test_bob_wrong_totp_shows_the_mfa_page_again(bob_browser):
    page = bob_browser.submit(
        bob_browser.authorize(authorization()), email=demo.BOB_EMAIL, password=demo.BOB_PASSWORD
    )
    assert page_kind(page) == "mfa"
    good = totp.code(demo.BOB_TOTP_SECRET)
    page = bob_browser.submit(page, code="000000" if good != "000000" else "111111")
    assert page_kind(page) == "mfa" and "Wrong code." in page.text
    page = bob_browser.submit(page, code=totp.code(demo.BOB_TOTP_SECRET))
    assert page_kind(page) == "consent"


def test_second_authorization_in_the_same_browser_skips_the_password(browser):
    tokens_for(browser, "alice")
    page = browser.authorize(authorization())
    assert page_kind(page) == "consent"
    auth = authorization()
    page = browser.authorize(auth)
    cb = callback_of(browser.approve(page))
    body = exchange(browser.http, auth, cb).json()
    assert verify_id_token(browser.http, body["id_token"])["email"] == demo.ALICE_EMAIL


def test_prompt_login_forces_the_password_again(browser):
    tokens_for(browser, "alice")
    page = browser.authorize(authorization(prompt="login"))
    assert page_kind(page) == "login"
    page = browser.sign_in(page, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
    assert page_kind(page) == "consent"


def test_prompt_none_cannot_skip_consent(browser):
    auth = authorization(prompt="none")
    cb = callback_of(browser.authorize(auth))
    assert cb.query["error"] == "login_required" and cb.query["iss"] == browser.server.url
    tokens_for(browser, "alice")
    cb = callback_of(browser.authorize(authorization(prompt="none")))
    assert cb.query["error"] == "consent_required"


def test_acr_values_mfa_forces_the_totp_step(bob_browser):
    tokens_for(bob_browser, "bob")
    assert page_kind(bob_browser.authorize(authorization())) == "consent"
    auth = authorization(acr_values="urn:keeptrusts:acr:mfa")
    page = bob_browser.authorize(auth)
    assert page_kind(page) == "mfa"
    # The sign-in above used this step's code, and a code is good once: the next step's.
    page = bob_browser.submit(page, code=totp.code(demo.BOB_TOTP_SECRET, time.time() + 30))
    cb = callback_of(bob_browser.approve(page))
    claims = verify_id_token(
        bob_browser.http, exchange(bob_browser.http, auth, cb).json()["id_token"]
    )
    assert claims["acr"] == "urn:keeptrusts:acr:mfa"


def test_sign_in_rotates_the_cookie(browser):
    page = browser.authorize(authorization())
    before = browser.http.cookies["kt_as_session"]
    browser.sign_in(page, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
    assert browser.http.cookies["kt_as_session"] != before


# --- revocation, logout ------------------------------------------------------------------------


def revoke(http: httpx2.Client, token: str, hint: str | None = None) -> httpx2.Response:
    data = {"token": token, "client_id": CLIENT_ID}
    if hint:
        data["token_type_hint"] = hint
    return http.post("/oauth/revoke", data=data)


def test_revoking_a_refresh_token_revokes_its_family(browser):
    body = tokens_for(browser)
    response = revoke(browser.http, body["refresh_token"], "refresh_token")
    assert response.status_code == 200 and response.json() == {}
    assert whoami(browser.http, body["access_token"]).status_code == 401
    oauth_error(refresh(browser.http, body["refresh_token"]), 400, "invalid_grant")


def test_revoking_an_access_token(browser):
    body = tokens_for(browser)
    assert revoke(browser.http, body["access_token"]).status_code == 200
    assert whoami(browser.http, body["access_token"]).status_code == 401
    assert refresh(browser.http, body["refresh_token"]).status_code == 200


def test_revocation_of_unknown_tokens_is_200_and_needs_a_client(browser):
    assert revoke(browser.http, "ktr_unknown").status_code == 200
    response = browser.http.post("/oauth/revoke", data={"token": "x"})
    oauth_error(response, 400, "invalid_client")
    oauth_error(browser.http.post("/oauth/revoke", data={"client_id": CLIENT_ID}), 400,
                "invalid_request")  # fmt: skip


def test_first_party_logout_revokes_an_oauth_grant(browser):
    body = tokens_for(browser)
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    assert browser.http.post("/v1/auth/logout", headers=auth).status_code == 200
    oauth_error(refresh(browser.http, body["refresh_token"]), 400, "invalid_grant")


# --- logs --------------------------------------------------------------------------------------


def test_no_secrets_in_the_server_log(devserver):
    browser = Browser(devserver)
    try:
        auth, cb = full_flow(browser, "bob")
        body = exchange(browser.http, auth, cb).json()
        rotated = refresh(browser.http, body["refresh_token"]).json()
        refresh(browser.http, body["refresh_token"])  # a reuse, which is logged
        exchange(browser.http, auth, cb)  # a replay, which is logged
        cookie = browser.http.cookies["kt_as_session"]
    finally:
        browser.close()
    log = devserver.stderr()
    assert "refresh token replayed" in log and "authorization code replayed" in log
    secrets_seen = [
        cb.query["code"],
        auth.pkce.verifier,
        body["access_token"],
        body["refresh_token"],
        body["id_token"],
        rotated["access_token"],
        rotated["refresh_token"],
        demo.BOB_PASSWORD,
        cookie,
    ]
    for secret in secrets_seen:
        assert secret not in log
    assert totp.code(demo.BOB_TOTP_SECRET) not in log
