"""kt-devserver as an OAuth protected resource (issue 14 items 1 and 2): its RFC 9728 metadata,
the Bearer challenge on its 401/403s, and RFC 8707 audience-bound tokens — a resource it does not
know refused with invalid_target, and a token for one API refused by another one (two
kt-devserver processes on one token database: one authorization server's data, two APIs)."""

from __future__ import annotations

from typing import Any

import httpx2

from kt_devserver import demo
from kt_login.www_authenticate import find, parse
from tests.fixtures.oauth_client import (
    CLIENT_ID,
    Browser,
    authorization,
    callback_of,
    exchange,
    full_flow,
    oauth_error,
    refresh,
    tokens_for,
    whoami,
)

METADATA = "/.well-known/oauth-protected-resource"


def signed_in(server, **overrides: str | None) -> dict[str, Any]:
    """Tokens from one browser sign-in (a fresh browser each, so each signs in)."""
    browser = Browser(server)
    try:
        return tokens_for(browser, **overrides)
    finally:
        browser.close()


def bearer(response: httpx2.Response) -> dict[str, str]:
    challenge = find(parse(response.headers.get_list("www-authenticate")), "Bearer")
    assert challenge is not None, response.headers
    return dict(challenge.params)


def test_the_api_publishes_its_protected_resource_metadata(devserver):
    """RFC 9728 §2/§3: `resource` is the API's URL exactly, its one authorization server is the
    same server (whose own metadata names that issuer), tokens go in the header."""
    doc = httpx2.get(devserver.url + METADATA).json()
    assert doc["resource"] == devserver.url
    assert doc["authorization_servers"] == [devserver.url]
    assert doc["bearer_methods_supported"] == ["header"]
    assert set(doc["scopes_supported"]) >= {"openid", "offline_access"}
    as_meta = httpx2.get(devserver.url + "/.well-known/oauth-authorization-server").json()
    assert as_meta["issuer"] == doc["authorization_servers"][0]


def test_api_401s_and_403s_name_the_metadata_in_their_challenge(devserver):
    """RFC 9728 §5.1 and RFC 6750 §3: no credential → no error code; a bad one → invalid_token;
    a missing scope → insufficient_scope with the scope; the JSON body stays as it was."""
    url = devserver.url + "/v1/auth/whoami"
    expected = devserver.url + METADATA
    none = httpx2.get(url)
    assert none.status_code == 401 and none.json()["error"]["code"] == "auth.unauthenticated"
    assert bearer(none) == {"resource_metadata": expected, "realm": "keeptrusts"}
    assert none.headers["www-authenticate"].startswith(f'Bearer resource_metadata="{expected}"')
    bad = httpx2.get(url, headers={"Authorization": "Bearer kta_nonsense"})
    assert bad.status_code == 401
    assert bearer(bad) == {
        "resource_metadata": expected,
        "realm": "keeptrusts",
        "error": "invalid_token",
    }
    with httpx2.Client(base_url=devserver.url) as http:
        login = http.post(
            "/v1/auth/login", json={"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD}
        ).json()
        created = http.post(
            "/v1/auth/tokens",
            json={"name": "narrow", "scopes": ["gateways:read"]},
            headers={"Authorization": f"Bearer {login['access_token']}"},
        ).json()
        denied = http.get(
            "/v1/auth/tokens", headers={"Authorization": f"Bearer {created['secret']}"}
        )
    assert denied.status_code == 403
    assert denied.json()["error"]["required_scope"] == "tokens:read"
    params = bearer(denied)
    assert list(params)[0] == "resource_metadata" and params["resource_metadata"] == expected
    assert params["error"] == "insufficient_scope" and params["scope"] == "tokens:read"


def test_tokens_are_bound_to_the_api_asked_for_or_to_this_api_by_default(devserver):
    """RFC 8707 §2: the resource asked for is the audience; none asked → this API."""
    asked = signed_in(devserver, resource=devserver.url)
    default = signed_in(devserver)
    with httpx2.Client(base_url=devserver.url) as http:
        for tokens in (asked, default):
            me = whoami(http, tokens["access_token"])
            assert me.status_code == 200 and me.json()["audience"] == devserver.url
        # a refresh naming the same resource keeps it; the rotated token still works here
        again = http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": asked["refresh_token"],
                "client_id": CLIENT_ID,
                "resource": devserver.url,
            },
        )
        assert again.status_code == 200, again.text
        assert whoami(http, again.json()["access_token"]).json()["audience"] == devserver.url


def test_an_unknown_resource_is_refused_with_invalid_target(devserver):
    """RFC 8707 §2: at the authorization endpoint (a redirect carrying the error), the device
    authorization endpoint, and the token endpoint (a code, a refresh) for another resource."""
    other = "https://api.other.example"
    browser = Browser(devserver)
    try:
        refused = browser.authorize(authorization(resource=other))
        assert callback_of(refused).query["error"] == "invalid_target"
        with_fragment = browser.authorize(authorization(resource=devserver.url + "#x"))
        assert callback_of(with_fragment).query["error"] == "invalid_target"
        device = browser.http.post(
            "/oauth/device_authorization",
            data={"client_id": CLIENT_ID, "scope": "openid", "resource": other},
        )
        oauth_error(device, 400, "invalid_target")
        auth, cb = full_flow(browser)
        oauth_error(exchange(browser.http, auth, cb, resource=other), 400, "invalid_target")
        tokens = signed_in(devserver)
        moved = browser.http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": CLIENT_ID,
                "resource": other,
            },
        )
        oauth_error(moved, 400, "invalid_target")
        assert refresh(browser.http, tokens["refresh_token"]).status_code == 200
    finally:
        browser.close()


def test_a_token_for_one_api_is_refused_by_another(devserver_factory, tmp_path):
    """Two kt-devserver processes: `second` shares the first's token database (so it finds the
    token, and refuses it for its audience), `elsewhere` has its own (it never heard of it)."""
    first = devserver_factory()
    second = devserver_factory()  # the same dev.db under tmp_path
    elsewhere = devserver_factory("--db", str(tmp_path / "elsewhere.db"))
    assert len({first.url, second.url, elsewhere.url}) == 3
    token = signed_in(first, resource=first.url)["access_token"]
    with httpx2.Client() as http:
        ok = http.get(first.url + "/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["audience"] == first.url
        for other in (second, elsewhere):
            replayed = http.get(
                other.url + "/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}
            )
            assert replayed.status_code == 401, replayed.text
            assert bearer(replayed)["error"] == "invalid_token"
            assert bearer(replayed)["resource_metadata"] == other.url + METADATA
        wrong = http.get(
            second.url + "/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}
        )
        assert "another API" in wrong.json()["error"]["message"]
        # and logging out there ends nothing: the token still works on its own API
        gone = http.post(
            second.url + "/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}, json={}
        )
        assert gone.status_code == 401
        still = http.get(
            first.url + "/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}
        )
        assert still.status_code == 200
