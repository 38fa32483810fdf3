"""Issue 10: providers that conform to the standards but not to kt's habits, played by the hostile
provider and signed in to with the real `kt` process. Each test asserts what the person sees (the
message and exit code), what is stored, and what was revoked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.kt_process import Result, free_port, kt

from .conftest import Box
from .hostile_as import CLIENT_ID, DELETE, EMAIL, SUBJECT

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def stored(box: Box) -> dict[str, Any] | None:
    if not box.credentials.exists():
        return None
    doc: dict[str, Any] = json.loads(box.credentials.read_bytes())
    return doc


def api_env(box: Box) -> dict[str, str]:
    """A command that uses the session as the API's (on an `api_box`, whose API is the hostile
    provider: it also serves /v1/auth/whoami)."""
    return {**box.env, "KEEPTRUSTS_API_URL": box.server.issuer}


def revoked(box: Box) -> list[str]:
    """The tokens sent to the revocation endpoint, in order."""
    return [r.form.get("token", "") for r in box.server.calls("POST", "/revoke")]


def device_login(box: Box, *extra: str) -> Result:
    return box.kt(
        "auth", "login", "--device", "--issuer", box.server.issuer,
        "--client-id", CLIENT_ID, "--insecure-storage", "--json", *extra,
    )  # fmt: skip


def human_login(box: Box, *extra: str) -> Result:
    """A browser sign-in with the human-readable output (no --json)."""
    return box.kt(
        "auth", "login", "--browser", "--issuer", box.server.issuer,
        "--client-id", CLIENT_ID, "--insecure-storage", "--timeout", "20", *extra,
    )  # fmt: skip


# --------------------------------------------------------------------------- 1. no email claim

NO_EMAIL = [
    pytest.param(
        {"preferred_username": "jdoe", "name": "Jane Doe"}, "jdoe", id="preferred_username"
    ),
    pytest.param({"name": "Jane Doe"}, "Jane Doe", id="name"),
    pytest.param({}, SUBJECT, id="sub"),
    pytest.param({"preferred_username": "j\x1b[31mdoe"}, "j\\x1b[31mdoe", id="cleaned"),
]


@pytest.mark.parametrize(("claims", "shown"), NO_EMAIL)
def test_1_no_email_names_the_person_by_the_next_claim(
    box: Box, claims: dict[str, str], shown: str
) -> None:
    """Only `openid` granted: no email in the ID token or userinfo. The login line, status and
    whoami name the person by preferred_username, name or sub, cleaned for the terminal."""
    b = box.server.behaviour
    b.id_claims.update({"email": DELETE, **claims})
    b.userinfo_claims.update({"email": DELETE})
    b.whoami_user.update({"email": DELETE})
    result = human_login(box)
    assert result.code == 0, result.stderr
    assert f"as {shown}. Session stored in" in result.stdout, result.stdout
    assert "as ." not in result.stdout and "\x1b" not in result.stdout
    doc = stored(box)
    assert doc is not None and doc["user_email"] == "" and doc["display_name"] == shown

    status = box.kt("auth", "status")
    assert status.code == 0, status.stderr
    assert f"Account: {shown}\n" in status.stdout and "Account: ?" not in status.stdout
    assert box.kt("auth", "status", "--json").json()["user"]["name"] == shown

    # The provider is not the API (case 8): whoami names the person from the sign-in.
    who = box.kt("auth", "whoami")
    assert who.code == 0, who.stderr
    assert f"as {shown} (subject {SUBJECT}" in who.stdout and "as ?" not in who.stdout
    assert "was not asked" in who.stdout


def test_1_email_wins_when_there_is_one(box: Box) -> None:
    box.server.behaviour.id_claims.update({"preferred_username": "jdoe"})
    result = human_login(box)
    assert result.code == 0, result.stderr
    assert f"as {EMAIL}. Session stored in" in result.stdout


# --------------------------------------------------------------------------- 3. device, no ID token


def test_3_device_grant_without_id_token_is_accepted_via_userinfo(box: Box) -> None:
    """RFC 8628 §3.5 returns an RFC 6749 §5.1 token response: no ID token is required. UserInfo
    says who signed in; its sub is stored and anchors the ID tokens later refreshes bring."""
    b = box.server.behaviour
    b.device_id_token = False
    result = device_login(box)
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["identity"]["subject"] == SUBJECT and doc["user"]["email"] == EMAIL
    session = stored(box)
    assert session is not None and session["subject"] == SUBJECT
    assert session["auth_time"] is None
    assert len(box.server.calls("GET", "/userinfo")) == 1
    new = {session["access_token"], session["refresh_token"]}
    assert revoked(box) and not new & set(revoked(box))  # only the replaced session is ended


@pytest.mark.parametrize(
    "provider",
    [
        pytest.param({"userinfo_status": 401}, id="userinfo-refuses"),
        pytest.param({"userinfo_claims": {"sub": DELETE}}, id="userinfo-without-sub"),
        pytest.param({"metadata": {"userinfo_endpoint": DELETE}}, id="no-userinfo-endpoint"),
    ],
)
def test_3_device_grant_without_any_identity_is_refused_and_revoked(
    box: Box, provider: dict[str, Any]
) -> None:
    """No ID token and no UserInfo naming the person: refused (exit 7), and the tokens the
    provider issued are revoked before kt exits; the earlier session is kept untouched."""
    b = box.server.behaviour
    b.device_id_token = False
    for name, value in provider.items():
        setattr(b, name, value)
    before = box.snapshot()
    result = device_login(box)
    assert result.code == 7, result.stderr
    assert "no ID token" in result.error()["message"] or "userinfo" in result.error()["message"]
    (token_call,) = box.server.token_calls(DEVICE_GRANT)
    assert len(revoked(box)) == 2 and all(t.startswith(("rt-", "at-")) for t in revoked(box))
    assert revoked(box)[0].startswith("rt-")  # the refresh token first: it ends the grant
    assert box.snapshot() == before


def test_3_code_grant_tokens_refused_are_revoked(box: Box) -> None:
    """The code flow must return an ID token (OIDC Core §3.1.3.3); when kt refuses a token
    response it has received, it revokes the tokens it got before exiting."""
    box.server.behaviour.code_id_token = False
    before = box.snapshot()
    result = box.login()
    assert result.code == 7, result.stderr
    assert "no ID token" in result.error()["message"]
    assert [t[:3] for t in revoked(box)] == ["rt-", "at-"]
    assert box.snapshot() == before


def test_3_invalid_id_token_tokens_are_revoked(box: Box) -> None:
    box.server.behaviour.id_claims["aud"] = "someone-else"
    result = device_login(box)
    assert result.code == 7, result.stderr
    assert [t[:3] for t in revoked(box)] == ["rt-", "at-"]


# --------------------------------------------------------------------------- 6. auth_time moves


def test_6_a_later_auth_time_is_recorded_not_fatal(api_box: Box) -> None:
    """A provider that puts the person's latest sign-in anywhere into refreshed ID tokens: the
    refresh is kept, with the rotated tokens and the new auth_time."""
    box = api_box  # the hostile AS is the API too, so whoami uses the session
    old = box.expire_soon()
    later = int(old["auth_time"]) + 120
    box.server.behaviour.refresh_claims["auth_time"] = later
    result = kt("auth", "whoami", "--json", env=api_env(box))
    assert result.code == 0, result.stderr
    new = stored(box)
    assert new is not None and new["auth_time"] == later
    assert new["refresh_token"] != old["refresh_token"]  # the rotated one, never the spent one
    assert not revoked(box)


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param({"iss": "https://evil.example"}, id="iss"),
        pytest.param({"sub": "user-2"}, id="sub"),
        pytest.param({"aud": "someone-else"}, id="aud"),
    ],
)
def test_6_iss_sub_aud_changes_stay_fatal_and_end_the_session(
    api_box: Box, mutation: dict[str, object]
) -> None:
    """OIDC Core §12.2: iss, sub and aud must not change. The refresh result is refused; since
    the stored refresh token is spent, the new tokens are revoked and the session cleared."""
    box = api_box  # the hostile AS is the API too, so whoami uses the session
    old = box.expire_soon()
    box.server.behaviour.refresh_claims.update(mutation)
    result = kt("auth", "whoami", "--json", env=api_env(box))
    assert result.code == 3, result.stderr
    assert result.error()["message"].startswith("your session has ended: the ID token is not valid")
    assert stored(box) is None
    assert len(revoked(box)) == 2 and old["refresh_token"] not in revoked(box)
    assert not box.server.calls("GET", "/v1/auth/whoami")
    # The next command says so at once; it never presents the spent refresh token.
    again = kt("auth", "whoami", "--json", env=api_env(box))
    assert again.code == 3 and len(box.server.token_calls("refresh_token")) == 1


def test_6_userinfo_sub_anchors_refreshed_id_tokens(api_box: Box) -> None:
    """A device sign-in without an ID token (case 3) stores UserInfo's sub; a refreshed ID token
    for another subject is then refused like any other change of sub."""
    box = api_box  # the hostile AS is the API too, so whoami uses the session
    box.server.behaviour.device_id_token = False
    assert device_login(box).code == 0
    box.server.reset()
    box.expire_soon()
    box.server.behaviour.refresh_claims["sub"] = "user-2"
    result = kt("auth", "whoami", "--json", env=api_env(box))
    assert result.code == 3, result.stderr
    assert "sub differs" in result.error()["message"]
    assert stored(box) is None

    box.server.reset()
    box.server.behaviour.device_id_token = False
    assert device_login(box).code == 0
    box.server.reset()
    box.expire_soon()
    accepted = kt("auth", "whoami", "--json", env=api_env(box))
    assert accepted.code == 0, accepted.stderr
    new = stored(box)
    assert new is not None and new["subject"] == SUBJECT
    assert new["auth_time"] is not None  # the first ID token's auth_time is recorded


# ------------------------------------------------------------------------ 7. iss only on success


def test_7_error_without_the_promised_iss_is_refused_with_the_providers_words(box: Box) -> None:
    """The provider promises iss (RFC 9207) but leaves it out of error responses. kt still
    refuses to trust the response (§2.4), and says what the provider said and that it broke
    RFC 9207; nothing is sent to the token endpoint and the earlier session stays."""
    box.server.behaviour.callback.update(
        {
            "iss": DELETE,
            "code": DELETE,
            "error": "access_denied",
            "error_description": "The user \x1b[2Jsaid no",
        }
    )
    before = box.snapshot()
    result = box.login()
    assert result.code == 7, result.stderr
    message = result.error()["message"]
    assert "broke RFC 9207" in message and "lacks the issuer (iss)" in message
    assert "access_denied: The user \\x1b[2Jsaid no" in message
    assert "\x1b" not in result.stderr
    assert not box.server.token_calls()
    assert box.snapshot() == before


def test_7_error_with_iss_is_the_providers_error(box: Box) -> None:
    box.server.behaviour.callback.update(
        {"code": DELETE, "error": "access_denied", "error_description": "User cancelled"}
    )
    result = box.login()
    assert result.code == 3, result.stderr
    message = result.error()["message"]
    assert "denied" in message and "access_denied: User cancelled" in message
    assert "RFC 9207" not in message


# ------------------------------------------------------------------------ 11. codes beside the RFC


def test_11_consent_required_is_a_denial_with_the_providers_words(box: Box) -> None:
    box.server.behaviour.callback.update(
        {"code": DELETE, "error": "consent_required", "error_description": "Consent refused"}
    )
    before = box.snapshot()
    result = box.login()
    assert result.code == 3, result.stderr
    error = result.error()
    assert "denied" in error["message"]
    assert "consent_required: Consent refused" in error["message"]
    assert error["code"] == "oauth.consent_required"
    assert box.snapshot() == before


def test_11_403_invalid_code_on_the_code_exchange(box: Box) -> None:
    """A bad PKCE verifier answered 403 invalid_code: the code was refused; sign in again."""
    b = box.server.behaviour
    b.token_status = 403
    b.token_reply = {"error": "invalid_code", "error_description": "PKCE verification failed"}
    before = box.snapshot()
    result = box.login()
    assert result.code == 3, result.stderr
    error = result.error()
    assert "refused the grant" in error["message"] and "sign-in code" in error["message"]
    assert "invalid_code: PKCE verification failed" in error["message"]
    assert "kt auth login" in error["hint"]
    assert len(box.server.token_calls("authorization_code")) == 1  # never retried
    assert box.snapshot() == before


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param((400, {"error": "invalid_request", "error_description": "unknown token"}),
                     id="invalid_request"),
        pytest.param((401, {"error": "invalid_client"}), id="invalid_client"),
        pytest.param((403, b"<html>Forbidden</html>"), id="403-html"),
        pytest.param((400, {"error": "invalid_grant"}), id="invalid_grant"),
    ],
)  # fmt: skip
def test_11_a_refused_refresh_of_any_kind_ends_the_session(
    api_box: Box, answer: tuple[int, Any]
) -> None:
    box = api_box  # the hostile AS is the API too, so whoami uses the session
    box.expire_soon()
    box.server.behaviour.refresh_answer = answer
    result = kt("auth", "whoami", "--json", env=api_env(box))
    assert result.code == 3, result.stderr
    error = result.error()
    assert error["message"].startswith("your session has ended")
    assert "Forbidden" not in error["message"]  # the body is never echoed (EH-03)
    status, body = answer
    if isinstance(body, dict):
        assert f"the provider said {body['error']}" in error["message"]
    else:
        assert f"HTTP {status}" in error["message"]
    assert "kt auth login" in error["hint"]
    assert stored(box) is None
    assert len(box.server.token_calls("refresh_token")) == 1  # no retry loop
    again = kt("auth", "whoami", "--json", env=api_env(box))
    assert again.code == 3 and len(box.server.token_calls("refresh_token")) == 1


def test_11_a_refresh_that_fails_at_the_provider_keeps_the_session(api_box: Box) -> None:
    """server_error is temporary: the session (whose refresh token was not spent) is kept."""
    box = api_box  # the hostile AS is the API too, so whoami uses the session
    box.expire_soon()
    box.server.behaviour.refresh_answer = (503, {"error": "temporarily_unavailable"})
    result = kt("auth", "whoami", "--json", env=api_env(box))
    assert result.code == 6, result.stderr
    assert "temporarily_unavailable" in result.error()["message"]
    assert stored(box) is not None


# ------------------------------------------------------------------------ 9. device, not allowed


@pytest.mark.parametrize(
    ("answer", "said", "codes"),
    [
        pytest.param((404, {"error": "device_not_found"}), "the provider said device_not_found",
                     (3, 6), id="404-device_not_found"),
        # the client may not use the device grant (an organisation that turned it off, issue 13
        # item 4): said as such, exit 7 with the command that signs in another way
        pytest.param((400, {"error": "unauthorized_client", "error_description": "no device"}),
                     "unauthorized_client: no device", (7,), id="unauthorized_client"),
        pytest.param((403, {"error": "authorization_pending"}), "HTTP 403", (3, 6),
                     id="pending-with-403"),
        pytest.param((404, b"<html>nope</html>"), "HTTP 404", (3, 6), id="404-html"),
    ],
)  # fmt: skip
def test_9_non_rfc_poll_answers_end_the_wait(
    box: Box, answer: tuple[int, Any], said: str, codes: tuple[int, ...]
) -> None:
    b = box.server.behaviour
    b.device_answer = answer
    before = box.snapshot()
    result = device_login(box)
    assert result.code in codes, result.stderr
    error = result.error()
    assert said in error["message"], error
    assert "nope" not in error["message"]
    assert len(box.server.token_calls(DEVICE_GRANT)) == 1  # one poll, no retry loop
    assert box.snapshot() == before


def test_9_pending_forever_stops_at_expires_in(box: Box) -> None:
    b = box.server.behaviour
    b.device_answer = (400, {"error": "authorization_pending"})
    b.device_expires_in = 3
    result = device_login(box)
    assert result.code == 3, result.stderr
    error = result.error()
    assert error["code"] == "oauth.expired_token"
    assert "authorization_pending" in error["message"] and "3 s" in error["message"]
    assert 1 <= len(box.server.token_calls(DEVICE_GRANT)) <= 3


# ------------------------------------------------------------------------ 2. only some scopes


def asked_scope(box: Box) -> str:
    (authorize,) = box.server.calls("GET", "/authorize")
    return authorize.query["scope"]


def test_2_default_scopes_are_narrowed_to_scopes_supported(box: Box) -> None:
    """Discovery lists only openid: kt asks for openid alone, signs in, and says that without
    offline_access no refresh token came, so the person signs in again in 10 minutes."""
    b = box.server.behaviour
    b.metadata["scopes_supported"] = ["openid"]
    b.grants_scopes = ("openid",)
    b.id_claims["email"] = DELETE
    result = human_login(box)
    assert result.code == 0, result.stderr
    assert asked_scope(box) == "openid"
    assert "prompt" not in box.server.calls("GET", "/authorize")[0].query  # no offline_access
    assert "issued no refresh token (offline_access was not granted)" in result.stderr
    assert "you will need to sign in again in 10 minutes" in result.stderr
    doc = stored(box)
    assert doc is not None and doc["refresh_token"] is None and doc["scopes"] == ["openid"]


def test_2_narrowing_keeps_what_is_listed_and_always_openid(box: Box) -> None:
    box.server.behaviour.metadata["scopes_supported"] = ["email", "offline_access", "phone"]
    result = box.login()
    assert result.code == 0, result.stderr
    assert asked_scope(box) == "openid email offline_access"
    assert result.json()["notices"] == []


def test_2_device_sign_in_narrows_too(box: Box) -> None:
    box.server.behaviour.metadata["scopes_supported"] = ["openid", "profile"]
    box.server.behaviour.grants_scopes = ("openid", "profile")
    result = device_login(box)
    assert result.code == 0, result.stderr
    (seen,) = box.server.calls("POST", "/device_authorization")
    assert seen.form["scope"] == "openid profile"
    assert any("sign in again in 10 minutes" in n for n in result.json()["notices"])


@pytest.mark.parametrize(
    ("listed", "flags", "working"),
    [
        pytest.param(None, (), "openid", id="unlisted-defaults"),
        pytest.param(
            ["openid", "email", "offline_access"],
            ("--scope", "openid email groups"),
            "openid email",
            id="listed-scope-flag",
        ),
    ],
)
def test_2_invalid_scope_says_what_was_asked_what_is_listed_and_what_works(
    box: Box, listed: list[str] | None, flags: tuple[str, ...], working: str
) -> None:
    """The provider refuses scopes (it publishes no scopes_supported, or the person asked for
    one it does not list): kt names the scopes asked for and those listed, and prints the
    --scope command that would work."""
    b = box.server.behaviour
    b.grants_scopes = ("openid", "email")
    if listed is not None:
        b.metadata["scopes_supported"] = listed
    before = box.snapshot()
    result = box.login(*flags)
    assert result.code == 3, result.stderr
    error = result.error()
    asked = asked_scope(box)
    assert f"refused the scopes asked for ({asked})" in error["message"]
    assert (
        ("lists " + " ".join(listed)) in error["message"]
        if listed
        else ("lists no scopes_supported" in error["message"])
    )
    assert "the provider said invalid_scope" in error["message"]
    quoted = f"'{working}'" if " " in working else working
    # the options given are kept (issue 12, defect 4), so the command works as printed
    assert error["hint"] == (
        f"run: kt auth login --browser --issuer {box.server.issuer} --client-id {CLIENT_ID} "
        f"--scope {quoted} --insecure-storage --timeout 20"
    )
    assert not box.server.token_calls()
    assert box.snapshot() == before

    box.server.requests.clear()
    retry = box.login("--scope", working)  # the printed command works
    assert retry.code == 0, retry.stderr


def test_2_invalid_scope_at_device_authorization(box: Box) -> None:
    box.server.behaviour.grants_scopes = ("openid",)
    result = device_login(box)
    assert result.code == 3, result.stderr
    assert result.error()["hint"].startswith("run: kt auth login --device ")
    assert result.error()["hint"].endswith("--scope openid --insecure-storage")


# ------------------------------------------------------------------------ 4. two metadata documents


def test_4_revocation_listed_only_in_rfc8414_metadata_is_used(box: Box) -> None:
    """The OpenID document lacks revocation_endpoint, the RFC 8414 one has it: kt reads both,
    merges them, and logout revokes."""
    b = box.server.behaviour
    b.metadata["revocation_endpoint"] = DELETE
    b.oauth_metadata = {"revocation_endpoint": box.server.issuer + "/revoke"}
    result = box.login()
    assert result.code == 0, result.stderr
    assert result.json()["notices"] == []
    assert box.server.calls("GET", "/.well-known/oauth-authorization-server")
    doc = stored(box)
    assert doc is not None and doc["revocation_endpoint"] == box.server.issuer + "/revoke"
    box.server.requests.clear()
    out = box.kt("auth", "logout")
    assert out.code == 0, out.stderr
    assert [t[:3] for t in revoked(box)] == ["rt-", "at-"]


def test_4_rfc8414_metadata_naming_another_issuer_is_refused(box: Box) -> None:
    b = box.server.behaviour
    b.oauth_metadata = {"issuer": "https://evil.example"}
    before = box.snapshot()
    result = box.login()
    assert result.code == 7, result.stderr
    assert "different issuer" in result.error()["message"]
    assert not box.server.calls("GET", "/authorize")
    assert box.snapshot() == before


def test_4_capabilities_in_neither_document_are_named_with_the_documents_read(box: Box) -> None:
    b = box.server.behaviour
    b.metadata["revocation_endpoint"] = DELETE
    b.metadata["device_authorization_endpoint"] = DELETE
    result = box.login()
    assert result.code == 0, result.stderr
    (notice,) = result.json()["notices"]
    issuer = box.server.issuer
    assert "neither metadata document lists a revocation_endpoint" in notice
    assert f"{issuer}/.well-known/openid-configuration" in notice
    assert f"{issuer}/.well-known/oauth-authorization-server (HTTP 404)" in notice

    device = device_login(box)
    assert device.code == 7, device.stderr
    message = device.error()["message"]
    assert "does not offer device sign-in" in message
    assert "device_authorization_endpoint" in message and "oauth-authorization-server" in message


# ------------------------------------------------------------------------ 5. logout, not revoked


def rewrite_session(box: Box, **changes: object) -> dict[str, Any]:
    """Change the stored session in place (the file keeps mode 0600)."""
    import os

    doc = stored(box)
    assert doc is not None
    doc.update(changes)
    tmp = box.credentials.with_name("seed.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, box.credentials)
    return doc


LOGOUT_CASES = [
    pytest.param(
        "not_offered", 1, "offers no token revocation", id="a-no-revocation-endpoint"
    ),
    pytest.param("refused", 6, "refused to revoke it (HTTP 401 (the provider said invalid_client: "
                 "public clients may not revoke))", id="b-refused-401-invalid_client"),
    pytest.param("unreachable", 5, "could not reach", id="c-unreachable"),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "code", "said"), LOGOUT_CASES)
def test_5_logout_that_cannot_revoke_names_its_case(
    box: Box, reason: str, code: int, said: str
) -> None:
    """Three different failures, three messages and exit codes; the local session goes in each,
    and the lifetimes are stated honestly (the refresh token's is unknown here)."""
    b = box.server.behaviour
    if reason == "not_offered":
        rewrite_session(box, revocation_endpoint=None)
    elif reason == "refused":
        b.revocation_status = 401
        b.revocation_reply = {
            "error": "invalid_client",
            "error_description": "public clients may not revoke",
        }
    else:
        rewrite_session(box, revocation_endpoint=f"http://127.0.0.1:{free_port()}/revoke")
    doc = stored(box)
    assert doc is not None and doc["refresh_expires_at"] is None
    result = box.kt("auth", "logout")
    assert result.code == code, result.stderr
    assert said in result.stdout and said in result.stderr, (result.stdout, result.stderr)
    assert "the access token until 20" in result.stdout
    assert "the refresh token for as long as the server keeps it (lifetime unknown)" in (
        result.stdout
    )
    if reason != "unreachable":
        assert "could not reach" not in result.stdout + result.stderr
    assert stored(box) is None
    assert box.kt("auth", "logout", "--json").code == 0  # nothing left to log out of


@pytest.mark.parametrize(("reason", "code", "said"), LOGOUT_CASES)
def test_5_logout_error_code_names_the_case(box: Box, reason: str, code: int, said: str) -> None:
    if reason == "not_offered":
        rewrite_session(box, revocation_endpoint=None)
    elif reason == "refused":
        box.server.behaviour.revocation_status = 401
        box.server.behaviour.revocation_reply = {"error": "invalid_client"}
    else:
        rewrite_session(box, revocation_endpoint=f"http://127.0.0.1:{free_port()}/revoke")
    result = box.kt("auth", "logout", "--json")
    assert result.code == code, result.stderr
    error = result.error()
    assert error["code"] == f"kt.revocation_{reason}" and error["exit_code"] == code
    assert result.json()["logged_out"][0]["server_revoked"] is False
