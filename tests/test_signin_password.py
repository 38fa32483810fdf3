"""The password sign-in use case, driven as a program would: codes from a callable, no terminal."""

from __future__ import annotations

import json

import httpx2
import pytest

from kt_login.api import ApiClient, make_http_client
from kt_login.errors import MfaRequired
from kt_login.signin.password import MAX_CODE_ATTEMPTS, password_sign_in

API = "https://api.example"
SESSION = {"access_token": "kta_mfa", "token_type": "Bearer", "mfa_authenticated": True}


class MfaApi:
    """Password right, MFA on; only `good_code` is accepted."""

    def __init__(self, good_code: str) -> None:
        self.good_code = good_code
        self.codes: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if request.url.path == "/v1/auth/login":
            error = {"code": "auth.mfa_required", "message": "MFA", "mfa_token": "mfa_1"}
            return httpx2.Response(401, json={"error": error})
        assert request.url.path == "/v1/auth/mfa/challenge" and body["mfa_token"] == "mfa_1"
        self.codes.append(body["code"])
        if body["code"] != self.good_code:
            error = {"code": "auth.invalid_mfa_code", "message": "wrong code"}
            return httpx2.Response(400, json={"error": error})
        return httpx2.Response(200, json=SESSION)


@pytest.fixture
def api_for():
    clients: list[httpx2.Client] = []

    def make(handler) -> ApiClient:
        clients.append(make_http_client(httpx2.MockTransport(handler)))
        return ApiClient(API, clients[-1])

    yield make
    for c in clients:
        c.close()


def test_codes_are_asked_for_until_one_is_accepted(api_for):
    server = MfaApi("222222")
    codes = iter(["111111", "222222"])
    rejected: list[bool] = []
    session = password_sign_in(
        api_for(server),
        "bob@example.com",
        "pw",
        ask_code=lambda: next(codes),
        on_rejected=rejected.append,
    )
    assert session.method == "mfa" and session.mfa_authenticated
    assert server.codes == ["111111", "222222"] and rejected == ["wrong code"]


def test_wrong_codes_end_at_the_bound_with_the_token_to_continue(api_for):
    """Issue 12, defect 5: not three codes while the server takes more, and never a dead end:
    past the bound, the mfa_token (still good) comes back for `kt auth mfa challenge`."""
    server = MfaApi("never")
    with pytest.raises(MfaRequired) as info:
        password_sign_in(api_for(server), "bob@example.com", "pw", ask_code=lambda: "000000")
    assert len(server.codes) == MAX_CODE_ATTEMPTS > 3
    assert info.value.mfa_token == "mfa_1" and "wrong code" in info.value.message


def test_with_nobody_to_ask_the_mfa_token_comes_back(api_for):
    server = MfaApi("222222")
    with pytest.raises(MfaRequired) as info:
        password_sign_in(api_for(server), "bob@example.com", "pw", ask_code=None)
    assert info.value.mfa_token == "mfa_1" and server.codes == []
