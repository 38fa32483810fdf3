"""`kt auth login --browser` through pushed authorization requests (RFC 9126, issue 14 item 4):
the real `kt` against a real kt-devserver started with `--par` / `--require-par`, the person's
browser scripted over HTTP (e2e/test_browser_par.py does it in Chromium against npm
oidc-provider). kt pushes the request and the browser is sent to a short URL carrying only
client_id and request_uri; one-step and `--start`/`--complete` alike."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest

from kt_login.store import FileStore
from tests.fixtures.oauth_client import form_of
from tests.kt_process import (
    ALICE,
    base_env,
    kt,
    start_browser_login,
)
from tests.terminal import Terminal

PAR_CLIENT = "kt-cli-par"  # kt-devserver's client that must push its requests


def short_url_behind(link: str) -> str:
    """Where kt's one-time link sends the browser: the authorization request."""
    response = httpx2.get(link, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def signs_in(authorize_url: str) -> httpx2.Response:
    """The provider's pages (sign-in, consent), then its redirect followed back to kt."""
    with httpx2.Client(timeout=10) as browser:
        page = browser.get(authorize_url)
        for fields in ({"email": ALICE[0], "password": ALICE[1]}, {"decision": "approve"}):
            form = form_of(page)
            page = browser.post(str(page.url.join(form.action)), data={**form.fields, **fields})
        assert page.status_code == 302, page.text
        return browser.get(page.headers["location"])  # kt's listener


def only_client_id_and_request_uri(url: str, server_url: str, client_id: str) -> str:
    parts = urlsplit(url)
    assert url.startswith(server_url + "/oauth/authorize?")
    query = parse_qsl(parts.query)
    assert [name for name, _ in query] == ["client_id", "request_uri"]
    assert dict(query)["client_id"] == client_id
    request_uri = dict(query)["request_uri"]
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:")
    # nothing of the request rides in the URL: no state, nonce, PKCE challenge or redirect_uri
    assert len(url) < 140
    return request_uri


@pytest.fixture
def par_server(devserver_factory):
    return devserver_factory("--par")


@pytest.fixture
def par_env(tmp_path, par_server):
    return base_env(tmp_path, KEEPTRUSTS_API_URL=par_server.url)


@pytest.mark.parametrize("client_id", ["kt-cli", PAR_CLIENT])
def test_browser_sign_in_pushes_the_request_and_opens_a_short_url(par_env, par_server, client_id):
    proc, shown = start_browser_login(par_env, "--client-id", client_id)
    try:
        url = short_url_behind(shown["sign_in_url"])
        only_client_id_and_request_uri(url, par_server.url, client_id)
        landed = signs_in(url)
        assert landed.status_code == 200
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["logged_in"] is True and doc["user"]["email"] == ALICE[0]
    assert doc["identity"]["client_id"] == client_id
    assert "Traceback" not in err
    session = FileStore(Path(par_env["KEEPTRUSTS_CONFIG_DIR"])).load("default")
    assert session is not None and session.client_id == client_id
    assert kt("auth", "whoami", "--json", env=par_env).code == 0
    # RFC 8707 through PAR: the issuer came from the API's resource metadata, so kt pushed the
    # API as `resource`, and the access token is for that API
    assert doc["identity"]["resource"] == par_server.url
    bearer = {"Authorization": f"Bearer {session.access_token}"}
    me = httpx2.get(par_server.url + "/v1/auth/whoami", headers=bearer)
    assert me.status_code == 200 and me.json()["audience"] == par_server.url


def test_a_server_that_requires_pushed_requests(tmp_path, devserver_factory):
    server = devserver_factory("--require-par")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    meta = httpx2.get(server.url + "/.well-known/openid-configuration").json()
    assert meta["require_pushed_authorization_requests"] is True
    proc, shown = start_browser_login(env)
    try:
        url = short_url_behind(shown["sign_in_url"])
        only_client_id_and_request_uri(url, server.url, "kt-cli")
        signs_in(url)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err


def test_two_step_sign_in_pushes_too(par_env, par_server):
    r = kt("auth", "login", "--browser", "--start", "--insecure-storage", "--json", env=par_env)
    assert r.code == 0, r.stderr
    started = r.json()
    url = short_url_behind(started["sign_in_url"])
    only_client_id_and_request_uri(url, par_server.url, "kt-cli")
    signs_in(url)
    done = kt("auth", "login", "--complete", started["handle"], "--json", env=par_env, timeout=120)
    assert done.code == 0, done.stderr
    assert done.json()["logged_in"] is True


def test_a_refused_push_is_one_line_and_stores_nothing(par_env):
    r = kt(
        "auth", "login", "--browser", "--no-browser", "--insecure-storage",
        "--client-id", "nobody", env=par_env,
    )  # fmt: skip
    assert r.code == 3, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    error = next(line for line in lines if line.startswith("Error:"))
    assert "refused the sign-in request it was sent (pushed authorization request" in error
    assert "invalid_client" in error
    assert "run: kt auth login --browser" in r.stderr
    assert FileStore(Path(par_env["KEEPTRUSTS_CONFIG_DIR"])).load("default") is None
    as_json = kt(
        "auth", "login", "--browser", "--no-browser", "--insecure-storage", "--json",
        "--client-id", "nobody", env=par_env,
    )  # fmt: skip
    assert as_json.code == 3
    assert (
        json.loads(as_json.stderr.strip().splitlines()[-1])["error"]["code"]
        == "oauth.invalid_client"
    )


@pytest.mark.parametrize("two_step", [False, True], ids=["one-step", "start-complete"])
def test_a_link_opened_after_the_pushed_request_expired_still_signs_in(
    tmp_path, devserver_factory, two_step
):
    """kt honours expires_in: the listener's link, followed once the pushed request_uri has
    expired (a printed link opened later, a --start link handed on), pushes the request again
    rather than send the browser to a refused request_uri (kt-devserver refuses an expired one:
    tests/test_devserver_par.py)."""
    server = devserver_factory("--par", "--par-request-ttl", "1")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    if two_step:
        r = kt("auth", "login", "--browser", "--start", "--insecure-storage", "--json", env=env)
        assert r.code == 0, r.stderr
        link, handle, proc = r.json()["sign_in_url"], r.json()["handle"], None
    else:
        proc, shown = start_browser_login(env)
        link = shown["sign_in_url"]
    try:
        time.sleep(1.5)  # the first request_uri expires (lifetime 1 s): nothing to wait on
        url = short_url_behind(link)
        only_client_id_and_request_uri(url, server.url, "kt-cli")
        assert signs_in(url).status_code == 200
        if proc is None:
            done = kt("auth", "login", "--complete", handle, "--json", env=env, timeout=120)
            assert done.code == 0, done.stderr
        else:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    finally:
        if proc is not None:
            proc.kill()
    assert FileStore(Path(env["KEEPTRUSTS_CONFIG_DIR"])).load("default") is not None


def test_remote_shows_the_short_url_to_type_on_another_screen(par_env, par_server):
    """`kt auth login --remote`: the address printed for a browser elsewhere is the pushed
    request's short URL (nothing of the request in it), and the answer pasted back from the
    provider's page signs in."""
    term = Terminal(
        ["auth", "login", "--remote", "--insecure-storage", "--no-qr", "--timeout", "60"],
        par_env,
        columns=400,
    )
    seen = term.expect("Paste here and press Enter: ")
    shown = re.findall(r"(http://127\.0\.0\.1:\d+/oauth/authorize\S*)", seen)
    assert shown, seen
    for url in shown:
        only_client_id_and_request_uri(url, par_server.url, "kt-cli")
    assert "code_challenge" not in seen and "state=" not in seen
    with httpx2.Client(timeout=10) as browser:
        page = browser.get(shown[0])
        for fields in ({"email": ALICE[0], "password": ALICE[1]}, {"decision": "approve"}):
            form = form_of(page)
            page = browser.post(str(page.url.join(form.action)), data={**form.fields, **fields})
        answer = page.headers["location"]
    assert answer.startswith(par_server.url + "/oauth/remote-callback?")  # the pushed redirect
    term.type(answer)
    assert term.finish() == 0, term.seen
    assert kt("auth", "status", env=par_env).code == 0


def test_remote_s_listener_link_opened_after_the_push_expired_still_signs_in(
    tmp_path, devserver_factory
):
    """--remote also shows the listener's one-time link (a browser on this machine); followed
    after its pushed request expired, it pushes again (kt_login/signin/race.py)."""
    server = devserver_factory("--par", "--par-request-ttl", "1")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    term = Terminal(
        ["auth", "login", "--remote", "--insecure-storage", "--no-qr", "--timeout", "60"],
        env,
        columns=400,
    )
    seen = term.expect("Paste here and press Enter: ")
    (link,) = re.findall(r"(http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]{43})\s", seen)
    time.sleep(1.5)  # both pushed requests expire (lifetime 1 s): nothing to wait on
    url = short_url_behind(link)
    only_client_id_and_request_uri(url, server.url, "kt-cli")
    assert signs_in(url).status_code == 200
    assert term.finish() == 0, term.seen
    assert kt("auth", "status", env=env).code == 0
