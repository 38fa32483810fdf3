"""Authenticator: which credential a profile's requests carry, replacing and revoking sessions."""

from __future__ import annotations

import dataclasses
import json

import httpx2
import pytest

from kt_login.api import make_http_client, session_from_reply
from kt_login.authenticate import ENVIRONMENT, Authenticator, NoCredential
from kt_login.config import DEFAULT, Setting
from kt_login.config import ENVIRONMENT as FROM_ENV
from kt_login.errors import StoreError
from kt_login.session import OAUTH
from kt_login.store import FileStore, SessionStore

API = "https://api.example"
PROFILE = "default"
DEFAULT_API = Setting(API, DEFAULT)  # the API URL nothing configured


def session(access: str, refresh: str = "ktr_x", api_url: str = API):
    reply = {"access_token": access, "refresh_token": refresh, "expires_in": 900}
    return session_from_reply(reply, api_url=api_url, method="password", now=1000.0)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(200, json={})

    def seen(self) -> list[tuple[str, str, str]]:
        return [(r.method, str(r.url), r.headers.get("Authorization", "")) for r in self.requests]


@pytest.fixture
def http_and_calls():
    recorder = Recorder()
    with make_http_client(httpx2.MockTransport(recorder)) as http:
        yield http, recorder


def authenticator(tmp_path, http, *, api_url=DEFAULT_API, env_token=None):
    return Authenticator(
        profile=PROFILE,
        api_url=api_url,
        store=SessionStore(tmp_path),
        http=http,
        env_token=env_token,
        clock=lambda: 1000.0,
    )


def test_the_environment_token_wins_and_is_bound_to_the_configured_origin(tmp_path, http_and_calls):
    http, calls = http_and_calls
    FileStore(tmp_path).save(PROFILE, session("kta_stored"))
    credential = authenticator(tmp_path, http, env_token="kt_live_env").credential()
    assert credential.source == ENVIRONMENT and credential.api.api_url == API
    credential.call(lambda api, auth: api.request("GET", "/x", auth=auth))
    assert calls.seen() == [("GET", API + "/x", "Bearer kt_live_env")]


def test_no_session_is_no_credential(tmp_path, http_and_calls):
    with pytest.raises(NoCredential) as info:
        authenticator(tmp_path, http_and_calls[0]).credential()
    assert info.value.exit_code == 3 and info.value.api_url is None


def test_a_session_of_another_api_is_not_used(tmp_path, http_and_calls):
    FileStore(tmp_path).save(PROFILE, session("kta_other", api_url="https://other.example"))
    configured = Setting("https://api.example", FROM_ENV)
    with pytest.raises(NoCredential) as info:
        authenticator(tmp_path, http_and_calls[0], api_url=configured).credential()
    assert info.value.api_url == API and "other.example" in info.value.message


def test_the_stored_session_is_used_where_nothing_names_another_api(tmp_path, http_and_calls):
    http, calls = http_and_calls
    FileStore(tmp_path).save(PROFILE, session("kta_other", api_url="https://other.example"))
    credential = authenticator(tmp_path, http).credential()  # the API URL is only the default
    assert credential.source == "file (plaintext)"
    credential.call(lambda api, auth: api.request("GET", "/x", auth=auth))
    assert calls.seen() == [("GET", "https://other.example/x", "Bearer kta_other")]


def test_save_replaces_and_revokes_the_old_session(tmp_path, http_and_calls):
    http, calls = http_and_calls
    FileStore(tmp_path).save(PROFILE, session("kta_old", "ktr_old"))
    auth = authenticator(tmp_path, http)
    auth.save(auth.store.in_file, session("kta_new", "ktr_new"))
    stored = FileStore(tmp_path).load(PROFILE)
    assert stored is not None and stored.access_token == "kta_new"
    assert calls.seen() == [("POST", API + "/v1/auth/logout", "Bearer kta_old")]
    assert json.loads(calls.requests[0].content) == {"refresh_token": "ktr_old"}


def test_a_session_that_cannot_be_saved_is_revoked(tmp_path, http_and_calls, monkeypatch):
    http, calls = http_and_calls

    def full_disk(self, profile, new):
        raise StoreError("No space left on device")

    monkeypatch.setattr(FileStore, "save", full_disk)
    auth = authenticator(tmp_path, http)
    with pytest.raises(StoreError):
        auth.save(auth.store.in_file, session("kta_new"))
    assert calls.seen() == [("POST", API + "/v1/auth/logout", "Bearer kta_new")]


def test_an_oauth_session_is_revoked_at_its_issuer(tmp_path, http_and_calls):
    http, calls = http_and_calls
    oauth = dataclasses.replace(
        session("at_x", "rt_x", api_url="https://idp.example"),
        kind=OAUTH,
        client_id="kt-cli",
        token_endpoint="https://idp.example/token",
        revocation_endpoint="https://idp.example/revoke",
    )
    assert authenticator(tmp_path, http).revoke(oauth) is None
    assert [(r.method, str(r.url)) for r in calls.requests] == [
        ("POST", "https://idp.example/revoke"),
        ("POST", "https://idp.example/revoke"),
    ]
    bodies = [r.content.decode() for r in calls.requests]
    assert "token_type_hint=refresh_token" in bodies[0] and "token=rt_x" in bodies[0]
    assert "token_type_hint=access_token" in bodies[1]
