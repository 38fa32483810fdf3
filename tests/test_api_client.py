"""The API client against malformed and hostile replies (httpx2.MockTransport), and its rules."""

from __future__ import annotations

import json

import httpx2
import pytest

from kt_login.api import (
    Account,
    ApiClient,
    BearerAuth,
    decode_reply,
    make_http_client,
    session_from_reply,
)
from kt_login.cli import main
from kt_login.cli.app import App
from kt_login.config import normalize_api_url
from kt_login.errors import (
    ApiError,
    InsufficientScope,
    MfaRequired,
    NetworkError,
    ServerError,
    UsageError,
    ValidationFailed,
)
from kt_login.refresh import needs_refresh
from kt_login.text import clean

API = "https://api.example"


class Recorder:
    def __init__(self, reply):
        self.reply = reply
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.reply(request)


def client(recorder) -> ApiClient:
    return ApiClient(API, make_http_client(httpx2.MockTransport(recorder)))


def test_redirect_is_not_followed_and_token_not_forwarded():
    rec = Recorder(lambda r: httpx2.Response(302, headers={"Location": "https://evil.example/x"}))
    with pytest.raises(ServerError):
        client(rec).request("GET", "/v1/auth/whoami", auth=BearerAuth("kt_live_canary", API))
    assert [str(r.url) for r in rec.requests] == [API + "/v1/auth/whoami"]


@pytest.mark.parametrize(
    "elsewhere",
    [
        "https://api.example.attacker.net",
        "https://api.example:8443",
        "http://api.example",
        "https://evil.example",
    ],
)
def test_api_token_only_sent_to_its_exact_origin(elsewhere):
    rec = Recorder(lambda r: httpx2.Response(200, json={}))
    api = ApiClient(elsewhere, make_http_client(httpx2.MockTransport(rec)))
    with pytest.raises(ValidationFailed):
        api.request("GET", "/v1/auth/whoami", auth=BearerAuth("kt_live_canary", API))
    assert rec.requests == []


def test_api_token_sent_to_same_origin_with_default_port():
    rec = Recorder(lambda r: httpx2.Response(200, json={"ok": True}))
    api = ApiClient("https://API.example:443", make_http_client(httpx2.MockTransport(rec)))
    assert api.request("GET", "/x", auth=BearerAuth("kt_live_canary", API)) == {"ok": True}
    assert rec.requests[0].headers["Authorization"] == "Bearer kt_live_canary"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b"<html>", ServerError),
        (200, b"[1,2]", ServerError),
        (500, b'{"error": {"code": "auth.internal"}}', ServerError),
        (502, b"Bad gateway", ServerError),
        (400, b"not json", ServerError),
        (400, b'{"error": "flat string"}', ServerError),
    ],
)
def test_malformed_replies(status, body, error):
    with pytest.raises(error) as info:
        decode_reply(httpx2.Response(status, content=body), API)
    assert info.value.exit_code == 6


def test_hostile_error_text_is_cleaned():
    body = {"error": {"code": "auth.nope", "message": "\x1b[2J\x1b]0;pwned\x07 boom"}}
    with pytest.raises(Exception) as info:
        decode_reply(httpx2.Response(403, json=body), API)
    assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)


def test_timeout_is_a_network_error():
    def hang(request):
        raise httpx2.ReadTimeout("timed out", request=request)

    with pytest.raises(NetworkError) as info:
        client(Recorder(hang)).request("GET", "/v1/auth/whoami")
    assert info.value.exit_code == 5


def test_token_type_case_insensitive_and_missing_expiry():
    s = session_from_reply(
        {"access_token": "a", "token_type": "bEARER"}, api_url=API, method="password", now=1000.0
    )
    assert s.expires_at is None and not needs_refresh(s, 10**12)
    with pytest.raises(ServerError):
        session_from_reply(
            {"access_token": "a", "token_type": "mac"}, api_url=API, method="x", now=0
        )
    with pytest.raises(ServerError):
        session_from_reply({"token_type": "Bearer"}, api_url=API, method="x", now=0)


def test_refresh_window():
    s = session_from_reply(
        {"access_token": "a", "expires_in": 900}, api_url=API, method="password", now=0.0
    )
    assert not needs_refresh(s, 800.0)  # 100 s left > max(60, 90)
    assert needs_refresh(s, 811.0)  # 89 s left
    long = session_from_reply(
        {"access_token": "a", "expires_in": 36000}, api_url=API, method="password", now=0.0
    )
    assert needs_refresh(long, 36000 - 3599)  # 10% of ten hours


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.keeptrusts.com/", True),
        ("http://127.0.0.1:8765", True),
        ("http://[::1]:8765", True),
        ("http://localhost:8765", True),
        ("http://api.example", False),
        ("http://10.0.0.5", False),
        ("ftp://api.example", False),
        ("https://user:pw@api.example", False),
        ("javascript:alert(1)", False),
    ],
)
def test_transport_rule(url, ok):
    if ok:
        assert normalize_api_url(url).startswith(("https://", "http://"))
    else:
        with pytest.raises(Exception) as info:
            normalize_api_url(url)
        assert getattr(info.value, "exit_code", None) == 2


def test_clean_escapes_terminal_controls():
    assert clean("a\x1b[31mred\x1b[0m") == "a\\x1b[31mred\\x1b[0m"
    assert clean("ok\x07\x9b") == "ok\\x07\\x9b"
    assert clean("line1\nline2") == "line1\\x0aline2"


def test_cli_prints_hostile_server_text_inert(tmp_path, capsys):
    def reply(request):
        return httpx2.Response(
            401,
            json={"error": {"code": "auth.invalid_credentials", "message": "\x1b]0;pwned\x07no"}},
        )

    app = App(
        env={"KEEPTRUSTS_CONFIG_DIR": str(tmp_path), "KEEPTRUSTS_API_URL": API},
        transport=httpx2.MockTransport(reply),
        interactive=lambda: False,
    )
    code = main(
        ["auth", "login", "--email", "a@b", "--password", "x", "--insecure-storage"], obj=app
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "\x1b" not in err and "\x07" not in err and "pwned" in err


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer kta_secret-1", "kta_secret-1"),
        ("POST /token code=c0de&code_verifier=v3r&state=st4te", "c0de"),
        ("POST /token code=c0de&code_verifier=v3r&state=st4te", "v3r"),
        ('{"refresh_token": "r3fresh", "id_token": "eyJh.eyJi.sig"}', "r3fresh"),
        ('{"refresh_token": "r3fresh", "id_token": "eyJh.eyJi.sig"}', "eyJh.eyJi.sig"),
        ("[(b'Set-Cookie', b'sid=c00kie; HttpOnly')]", "c00kie"),
        ("token kt_live_Abc123 in a message", "kt_live_Abc123"),
    ],
)
def test_debug_log_redaction(line, secret):
    from kt_login.debuglog import redact

    assert secret not in redact(line)


# --------------------------------------------------------------------------- the typed calls

SESSION_REPLY = {
    "access_token": "kta_new",
    "refresh_token": "ktr_new",
    "token_type": "Bearer",
    "expires_in": 900,
    "user": {"id": "usr_a", "email": "alice@example.com"},
    "organization": {"name": "Acme"},
    "role": "admin",
    "scopes": ["tokens:read"],
    "mfa_authenticated": True,
}


def typed_client(reply) -> tuple[ApiClient, Recorder]:
    rec = Recorder(reply)
    return ApiClient(API, make_http_client(httpx2.MockTransport(rec)), clock=lambda: 1000.0), rec


def sent(request: httpx2.Request) -> tuple[str, str, object]:
    body = json.loads(request.content) if request.content else None
    return request.method, request.url.path, body


def test_login_mfa_and_refresh_return_sessions_from_their_paths():
    api, rec = typed_client(lambda r: httpx2.Response(200, json=SESSION_REPLY))
    s = api.login("alice@example.com", "pw")
    assert (s.method, s.api_url, s.expires_at, s.organization) == ("password", API, 1900.0, "Acme")
    assert api.mfa_challenge("mfa_tok", "123456").method == "mfa"
    assert api.refresh("ktr_old", method="browser").method == "browser"
    assert [sent(r) for r in rec.requests] == [
        ("POST", "/v1/auth/login", {"email": "alice@example.com", "password": "pw"}),
        ("POST", "/v1/auth/mfa/challenge", {"mfa_token": "mfa_tok", "code": "123456"}),
        ("POST", "/v1/auth/refresh", {"refresh_token": "ktr_old"}),
    ]


def test_login_of_an_mfa_account_raises_with_the_mfa_token():
    body = {"error": {"code": "auth.mfa_required", "message": "MFA", "mfa_token": "mfa_x"}}
    api, _ = typed_client(lambda r: httpx2.Response(401, json=body))
    with pytest.raises(MfaRequired) as info:
        api.login("a@b", "pw")
    assert info.value.mfa_token == "mfa_x"


def test_logout_sends_the_refresh_token_only_when_there_is_one():
    api, rec = typed_client(lambda r: httpx2.Response(200, json={}))
    auth = BearerAuth("kta_x", API)
    api.logout(auth, "ktr_x")
    api.logout(auth, None)
    assert [sent(r) for r in rec.requests] == [
        ("POST", "/v1/auth/logout", {"refresh_token": "ktr_x"}),
        ("POST", "/v1/auth/logout", {}),
    ]
    assert rec.requests[0].headers["Authorization"] == "Bearer kta_x"


def test_whoami_is_parsed_into_an_account():
    reply = {
        "user": {"id": "usr_a", "email": "alice@example.com", "name": "Alice"},
        "organization": {"id": "org_a", "name": "Acme"},
        "role": "admin",
        "scopes": ["tokens:read", "tokens:write"],
        "mfa_authenticated": True,
        "auth_method": "session",
        "expires_at": None,
    }
    api, rec = typed_client(lambda r: httpx2.Response(200, json=reply))
    account = api.whoami(BearerAuth("kta_x", API))
    assert sent(rec.requests[0]) == ("GET", "/v1/auth/whoami", None)
    assert account == Account(
        user_id="usr_a",
        email="alice@example.com",
        name="Alice",
        organization="Acme",
        role="admin",
        scopes=("tokens:read", "tokens:write"),
        mfa_authenticated=True,
        auth_method="session",
    )
    assert account.reply == reply  # kept whole for --json


@pytest.mark.parametrize(
    "reply",
    [
        {},
        {"user": "alice", "organization": ["Acme"], "scopes": "tokens:read"},
        {"user": None, "organization": None, "scopes": None, "mfa_authenticated": "yes"},
    ],
)
def test_whoami_with_missing_or_misshapen_fields_says_unknown(reply):
    account = Account.from_reply(reply)
    assert (account.email, account.user_id, account.organization, account.role) == (None,) * 4
    assert account.scopes == () and account.mfa_authenticated is False


def test_tokens_calls_and_their_paths():
    token = {"id": "tok_1", "name": "ci", "scopes": ["a"]}

    def reply(request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET":
            return httpx2.Response(200, json={"tokens": [token, "junk"]})
        if request.method == "DELETE":
            return httpx2.Response(200, json={"token": token})
        if request.url.path.endswith("/rotate"):
            return httpx2.Response(200, json={"token": token, "secret": "s2", "revoked": token})
        return httpx2.Response(201, json={"token": token, "secret": "s1"})

    api, rec = typed_client(reply)
    auth = BearerAuth("kta_x", API)
    created = api.tokens.create(auth, name="ci", scopes=["a"], expires_in_days=7)
    assert (created.secret, created.token, created.revoked) == ("s1", token, None)
    assert "s1" not in repr(created)
    assert api.tokens.list(auth) == [token]
    assert api.tokens.revoke(auth, "tok_1") == token
    rotated = api.tokens.rotate(auth, "tok_1")
    assert (rotated.secret, rotated.revoked) == ("s2", token)
    assert [sent(r) for r in rec.requests] == [
        ("POST", "/v1/auth/tokens", {"name": "ci", "scopes": ["a"], "expires_in_days": 7}),
        ("GET", "/v1/auth/tokens", None),
        ("DELETE", "/v1/auth/tokens/tok_1", None),
        ("POST", "/v1/auth/tokens/tok_1/rotate", None),
    ]


def test_tokens_replies_that_break_the_contract():
    api, _ = typed_client(lambda r: httpx2.Response(200, json={"token": {"id": "tok_1"}}))
    auth = BearerAuth("kta_x", API)
    with pytest.raises(ServerError):
        api.tokens.create(auth, name="ci", scopes=["a"], expires_in_days=7)  # no secret
    with pytest.raises(ServerError):
        api.tokens.list(auth)  # no token list


@pytest.mark.parametrize("token_id", ["", ".", "..", "a/b", "a?b", "a#b", "a%2f"])
def test_token_ids_that_would_change_the_path_are_refused_before_sending(token_id):
    api, rec = typed_client(lambda r: httpx2.Response(200, json={}))
    with pytest.raises(UsageError):
        api.tokens.revoke(BearerAuth("kta_x", API), token_id)
    assert rec.requests == []


# ------------------------------------------- the self-refreshing session auth: its own origin check


def _session_auth(api_url: str = API, refreshed_url: str = API):
    """A SessionAuth whose session belongs to `api_url`, and whose refresh returns one for
    `refreshed_url`; it records every refresh asked for."""
    from kt_login.api import SessionAuth
    from tests.sample_sessions import make_session

    refreshes: list[object] = []

    def refresh(stale):
        refreshes.append(stale)
        return make_session(api_url=refreshed_url, access_token="kta_CANARY-refreshed")

    return SessionAuth(lambda: make_session(api_url=api_url), refresh), refreshes


@pytest.mark.parametrize(
    "elsewhere",
    [
        "https://api.example.attacker.net",
        "https://api.example:8443",
        "http://api.example",
        "https://evil.example",
    ],
)
def test_session_auth_only_sent_to_its_exact_origin(elsewhere):
    """SessionAuth on its own (no outer check in the way) refuses to attach the session."""
    rec = Recorder(lambda r: httpx2.Response(200, json={}))
    auth, refreshes = _session_auth()
    with make_http_client(httpx2.MockTransport(rec)) as http:
        with pytest.raises(ValidationFailed) as info:
            http.get(elsewhere + "/v1/auth/whoami", auth=auth)
    assert rec.requests == [] and refreshes == []
    assert "refusing to send the session" in info.value.message
    assert "CANARY" not in info.value.message


def test_session_auth_sent_to_its_own_origin():
    rec = Recorder(lambda r: httpx2.Response(200, json={}))
    auth, _ = _session_auth()
    with make_http_client(httpx2.MockTransport(rec)) as http:
        http.get("https://API.example:443/v1/auth/whoami", auth=auth)
    assert rec.requests[0].headers["Authorization"] == "Bearer kta_CANARY-access-7f3a9c"


def test_session_auth_refreshed_for_another_origin_is_not_sent():
    """A refresh that returns a session of another API never sends it on the retried request."""
    answers = iter(
        [httpx2.Response(401, json={"error": {"code": "auth.token_expired"}}), httpx2.Response(200)]
    )
    rec = Recorder(lambda r: next(answers))
    auth, refreshes = _session_auth(refreshed_url="https://evil.example")
    with make_http_client(httpx2.MockTransport(rec)) as http:
        with pytest.raises(ValidationFailed):
            http.get(API + "/v1/auth/whoami", auth=auth)
    assert len(rec.requests) == 1 and len(refreshes) == 1


STEP_UP = (
    'Bearer error="insufficient_user_authentication", error_description="Needs MFA",'
    ' acr_values="urn:keeptrusts:acr:mfa", max_age=300'
)


def test_the_reply_mapping_reads_the_www_authenticate_challenge():
    # RFC 9470: a server that says it only in the header still asks for a step-up
    reply = httpx2.Response(401, headers={"WWW-Authenticate": STEP_UP})
    with pytest.raises(MfaRequired) as info:
        decode_reply(reply, API)
    error = info.value
    assert (error.acr_values, error.max_age, error.mfa_token) == (
        "urn:keeptrusts:acr:mfa",
        300,
        None,
    )
    assert error.message == "Needs MFA" and error.exit_code == 4
    # beside the JSON body, the body's mfa_token and message are kept; several header fields
    body = {"error": {"code": "auth.mfa_required", "message": "MFA", "mfa_token": "ktm_x"}}
    reply = httpx2.Response(
        401,
        json=body,
        headers=[("WWW-Authenticate", 'DPoP algs="ES256"'), ("WWW-Authenticate", STEP_UP)],
    )
    with pytest.raises(MfaRequired) as info:
        decode_reply(reply, API)
    assert (info.value.mfa_token, info.value.max_age, info.value.message) == ("ktm_x", 300, "MFA")
    assert info.value.as_json()["error"]["acr_values"] == "urn:keeptrusts:acr:mfa"


def test_a_malformed_challenge_is_not_acted_on():
    body = {"error": {"code": "auth.mfa_required", "message": "MFA", "mfa_token": "ktm_x"}}
    broken = STEP_UP.replace("max_age=300", 'max_age="300')  # an unterminated quoted-string
    with pytest.raises(MfaRequired) as info:
        decode_reply(httpx2.Response(401, json=body, headers={"WWW-Authenticate": broken}), API)
    assert (info.value.acr_values, info.value.max_age) == (None, None)  # the body alone
    with pytest.raises(ServerError):  # and nothing else to go on
        decode_reply(httpx2.Response(401, headers={"WWW-Authenticate": broken}), API)
    for max_age in ("-1", "1e9", "99999999999999", "soon"):  # not a sane number: not given
        header = STEP_UP.replace("max_age=300", f"max_age={max_age}")
        with pytest.raises(MfaRequired) as info:
            decode_reply(httpx2.Response(401, headers={"WWW-Authenticate": header}), API)
        assert info.value.max_age is None


def test_insufficient_scope_names_the_scope_needed():
    body = {"error": {"code": "auth.insufficient_scope", "message": "lacks tokens:write"}}
    header = 'Bearer error="insufficient_scope", scope="tokens:write  gateways:read"'
    reply = httpx2.Response(403, json=body, headers={"WWW-Authenticate": header})
    with pytest.raises(InsufficientScope) as info:
        decode_reply(reply, API)
    assert info.value.scope == "tokens:write gateways:read" and info.value.exit_code == 1
    assert info.value.as_json()["error"]["required_scope"] == "tokens:write gateways:read"
    # without a scope in the challenge there is nothing to ask for: a plain API error
    reply = httpx2.Response(
        403, json=body, headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
    )
    with pytest.raises(ApiError) as plain:
        decode_reply(reply, API)
    assert not isinstance(plain.value, InsufficientScope)
