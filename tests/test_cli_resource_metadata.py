"""Issue 14 items 1 and 2 on kt's side: with no issuer named anywhere, `kt auth login` asks the API
which authorization server to use (RFC 9728 protected resource metadata), refuses metadata that
describes another resource and a listed server whose own metadata names another issuer, asks for
--issuer when several are listed, and asks for tokens for that API only (RFC 8707 `resource` in
the authorization, token and refresh requests; `send_resource = false` turns it off).

In process against two stub servers (HostileAS: one as the API, one as its identity provider,
every request recorded), and as the real `kt` against a real kt-devserver, browser and device,
whose access tokens then name the API as their audience and are refused by a second API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from kt_login.cli import main
from kt_login.cli.app import App
from kt_login.flows.resource import metadata_url
from kt_login.store import FileStore
from tests.adversarial.hostile_as import HostileAS
from tests.fixtures.oauth_client import form_of
from tests.kt_process import ALICE, kt

WELL_KNOWN = "/.well-known/oauth-protected-resource"


@pytest.fixture
def api() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


@pytest.fixture
def idp() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


def lists(api: HostileAS, *servers: str, resource: str | None = None) -> None:
    api.behaviour.resource_metadata = {
        "resource": api.issuer if resource is None else resource,
        "authorization_servers": list(servers),
        "bearer_methods_supported": ["header"],
    }


def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "cfg"


def run(tmp_path: Path, api: HostileAS, idp: HostileAS, capsys, *args: str) -> tuple[int, Any, str]:
    """`kt <args> --json` in process, the API at `api`, no issuer configured; the browser is
    the identity provider's (it answers kt's listener at once)."""
    app = App(
        env={
            "KEEPTRUSTS_CONFIG_DIR": str(config_dir(tmp_path)),
            "KEEPTRUSTS_API_URL": api.issuer,
        },
        interactive=lambda: False,
        opener=idp.browser,
    )
    code = main([*args, "--json"], obj=app)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def login(tmp_path: Path, api: HostileAS, idp: HostileAS, capsys) -> tuple[int, Any, str]:
    return run(
        tmp_path, api, idp, capsys,
        "auth", "login", "--browser", "--insecure-storage", "--timeout", "10",
    )  # fmt: skip


def error_of(err: str) -> dict[str, Any]:
    line = err.strip().splitlines()[-1]
    error: dict[str, Any] = json.loads(line)["error"]
    return error


def nothing_stored(tmp_path: Path) -> bool:
    return not (config_dir(tmp_path) / "credentials").exists() or not any(
        (config_dir(tmp_path) / "credentials").iterdir()
    )


def test_the_api_s_resource_metadata_names_the_issuer_and_tokens_are_for_the_api(
    tmp_path, capsys, api, idp
):
    """RFC 9728 §3 + RFC 8707 §2: sign-in at the listed server, resource=<API URL> in the
    authorization request, the code exchange and the refresh; status and config show say
    where the issuer came from."""
    lists(api, idp.issuer)
    code, doc, err = login(tmp_path, api, idp, capsys)
    assert code == 0, err
    source = f"resource metadata of {api.issuer}"
    assert doc["identity"]["issuer"] == idp.issuer
    assert doc["identity"]["issuer_source"] == source
    assert doc["identity"]["resource"] == api.issuer
    assert [r.path for r in api.requests] == [WELL_KNOWN]  # asked once, then never again
    (authorize,) = idp.calls("GET", "/authorize")
    assert authorize.query["resource"] == api.issuer
    (exchange,) = idp.token_calls("authorization_code")
    assert exchange.form["resource"] == api.issuer

    code, status, err = run(tmp_path, api, idp, capsys, "auth", "status")
    assert code == 0, err
    assert status["identity"]["issuer_source"] == source
    code, shown, err = run(tmp_path, api, idp, capsys, "config", "show")
    assert code == 0, err
    assert shown["issuer"] == {"value": idp.issuer, "source": source}

    code, _, err = run(tmp_path, api, idp, capsys, "auth", "refresh")
    assert code == 0, err
    (refreshed,) = idp.token_calls("refresh_token")
    assert refreshed.form["resource"] == api.issuer


def test_a_device_sign_in_names_the_api_in_its_requests_too(tmp_path, capsys, api, idp):
    """RFC 8707 in the device grant: the device authorization request and every poll."""
    lists(api, idp.issuer)
    code, doc, err = run(
        tmp_path, api, idp, capsys, "auth", "login", "--device", "--insecure-storage"
    )
    assert code == 0, err
    assert doc["identity"]["issuer"] == idp.issuer and doc["identity"]["resource"] == api.issuer
    (asked,) = idp.calls("POST", "/device_authorization")
    assert asked.form["resource"] == api.issuer
    polls = idp.token_calls("urn:ietf:params:oauth:grant-type:device_code")
    assert polls and all(poll.form["resource"] == api.issuer for poll in polls)


@pytest.mark.parametrize(
    ("api_url", "expected"),
    [
        ("https://api.example", "https://api.example/.well-known/oauth-protected-resource"),
        (
            "https://gw.example/tenant/api",
            "https://gw.example/.well-known/oauth-protected-resource/tenant/api",
        ),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765/.well-known/oauth-protected-resource"),
    ],
)
def test_the_well_known_url_is_built_from_the_api_url(api_url, expected):
    """RFC 9728 §3.1: the suffix inserted between the host and the path."""
    assert metadata_url(api_url) == expected


def test_the_metadata_a_401_names_is_read_when_the_well_known_has_none(tmp_path, capsys, api, idp):
    """RFC 9728 §5.1: the API's 401 names its metadata (read with kt's RFC 9110 parser)."""
    lists(api, idp.issuer)
    api.behaviour.resource_metadata_at = "/meta/api"
    api.behaviour.whoami_challenge = (
        f'Bearer realm="api", resource_metadata="{api.issuer}/meta/api", error="invalid_token"'
    )
    code, doc, err = login(tmp_path, api, idp, capsys)
    assert code == 0, err
    assert doc["identity"]["issuer"] == idp.issuer
    assert [r.path for r in api.requests] == [WELL_KNOWN, "/v1/auth/whoami", "/meta/api"]
    assert "Authorization" not in api.requests[1].headers


def test_metadata_a_401_names_for_another_resource_is_refused(tmp_path, capsys, api, idp):
    """RFC 9728 §3.3 holds for the document a challenge names as for the well-known one."""
    lists(api, idp.issuer, resource="https://api.other.example")
    api.behaviour.resource_metadata_at = "/meta/api"
    api.behaviour.whoami_challenge = f'Bearer resource_metadata="{api.issuer}/meta/api"'
    code, _, err = login(tmp_path, api, idp, capsys)
    assert code == 7, err
    assert "not the API" in error_of(err)["message"]
    assert idp.requests == [] and nothing_stored(tmp_path)


@pytest.mark.parametrize(
    "resource",
    ["https://api.other.example", "{api}/", "{api}/v1", "HTTP://{host}"],
    ids=["another-host", "trailing-slash", "another-path", "other-spelling"],
)
def test_metadata_for_another_resource_is_refused(tmp_path, capsys, api, idp, resource):
    """RFC 9728 §3.3: `resource` must be the API URL byte for byte; otherwise the document is
    not used at all — the listed server is never asked, no browser opens, nothing is stored."""
    lists(
        api, idp.issuer,
        resource=resource.format(api=api.issuer, host=api.issuer.removeprefix("http://")),
    )  # fmt: skip
    code, _, err = login(tmp_path, api, idp, capsys)
    assert code == 7, err
    error = error_of(err)
    assert "not the API" in error["message"] and "RFC 9728" in error["message"]
    assert "\n" not in error["message"] and "Traceback" not in err
    assert idp.requests == [] and idp.opened == []
    assert nothing_stored(tmp_path)


def test_a_listed_server_whose_metadata_names_another_issuer_is_refused(tmp_path, capsys, api, idp):
    """The listed authorization server's own metadata must name exactly it (RFC 8414 §3.3)."""
    lists(api, idp.issuer)
    idp.behaviour.metadata = {"issuer": "https://evil.example"}
    code, _, err = login(tmp_path, api, idp, capsys)
    assert code == 7, err
    error = error_of(err)
    assert f"the resource metadata of {api.issuer} lists" in error["message"]
    assert idp.calls("GET", "/authorize") == [] and idp.opened == []
    assert nothing_stored(tmp_path)


def test_several_listed_servers_need_issuer(tmp_path, capsys, api, idp):
    other = "https://login.other.example"
    lists(api, idp.issuer, other)
    code, _, err = login(tmp_path, api, idp, capsys)
    assert code == 2, err
    error = error_of(err)
    assert idp.issuer in error["message"] and other in error["message"]
    # the sign-in's own flags carried (Invocation's hints)
    assert error["hint"] == (
        f"run: kt auth login --issuer {idp.issuer} --insecure-storage --timeout 10"
    )
    assert idp.requests == [] and nothing_stored(tmp_path)
    # the command the hint names works (the person chose; the listed server is asked)
    code, doc, err = run(
        tmp_path, api, idp, capsys,
        "auth", "login", "--browser", "--issuer", idp.issuer, "--insecure-storage",
        "--timeout", "10",
    )  # fmt: skip
    assert code == 0, err
    assert doc["identity"]["issuer_source"] is None


def test_send_resource_false_leaves_the_parameter_out(tmp_path, capsys, api, idp):
    lists(api, idp.issuer)
    config_dir(tmp_path).mkdir()
    code, _, err = run(tmp_path, api, idp, capsys, "config", "set", "send_resource", "false")
    assert code == 0, err
    code, doc, err = login(tmp_path, api, idp, capsys)
    assert code == 0, err
    assert doc["identity"]["resource"] is None
    (authorize,) = idp.calls("GET", "/authorize")
    assert "resource" not in authorize.query
    assert "resource" not in idp.token_calls("authorization_code")[0].form


def test_an_api_without_resource_metadata_is_its_own_issuer(tmp_path, capsys, api, idp):
    """As before RFC 9728: no document, no challenge → the API URL is the issuer, and no
    resource is named (nothing said the provider wants one)."""
    code, doc, err = login(tmp_path, api, api, capsys)
    assert code == 0, err
    assert doc["identity"]["issuer"] == api.issuer
    assert doc["identity"]["issuer_source"] is None
    assert "resource" not in api.calls("GET", "/authorize")[0].query


# ------------------------------------------------------------ the real kt, a real kt-devserver


def person_signs_in(sign_in_url: str) -> None:
    with httpx2.Client(timeout=10, follow_redirects=True) as browser:
        page = browser.get(sign_in_url)
        for fields in ({"email": ALICE[0], "password": ALICE[1]}, {"decision": "approve"}):
            form = form_of(page)
            page = browser.post(str(page.url.join(form.action)), data={**form.fields, **fields})


def person_approves(verification_uri_complete: str) -> None:
    with httpx2.Client(timeout=10, follow_redirects=True) as browser:
        page = browser.get(verification_uri_complete)
        for fields in (
            {"decision": "continue"},
            {"email": ALICE[0], "password": ALICE[1]},
            {"decision": "approve"},
        ):
            form = form_of(page)
            page = browser.post(str(page.url.join(form.action)), data={**form.fields, **fields})
        assert page.status_code == 200, page.text


@pytest.fixture
def plain_env(env: dict[str, str]) -> dict[str, str]:
    """No API URL, no issuer anywhere: only --api-url names the server."""
    return {k: v for k, v in env.items() if k != "KEEPTRUSTS_API_URL"}


@pytest.mark.parametrize("method", ["browser", "device"])
def test_login_with_only_the_api_url_signs_in_through_its_resource_metadata(
    plain_env, devserver_factory, method
):
    """Done when (issue 14): `kt auth login --api-url <devserver>` with no issuer anywhere, in
    a browser and with a device code; the access token's aud is the API, and a second API (a
    second kt-devserver on the same token database) refuses it."""
    first = devserver_factory()
    second = devserver_factory()
    started = kt(
        "auth", "login", f"--{method}", "--start", "--api-url", first.url,
        "--insecure-storage", "--json", env=plain_env,
    )  # fmt: skip
    assert started.code == 0, started.stderr
    info = started.json()
    if method == "browser":
        person_signs_in(info["sign_in_url"])
    else:
        person_approves(info["verification_uri_complete"])
    done = kt("auth", "login", "--complete", info["handle"], "--json", env=plain_env, timeout=120)
    assert done.code == 0, done.stderr
    identity = done.json()["identity"]
    assert identity["issuer"] == first.url
    assert identity["issuer_source"] == f"resource metadata of {first.url}"
    assert identity["resource"] == first.url

    status = kt("auth", "status", "--api-url", first.url, env=plain_env)
    assert status.code == 0, status.stderr
    assert f"issuer from the resource metadata of {first.url}" in status.stdout
    shown = kt("config", "show", "--api-url", first.url, "--json", env=plain_env).json()
    assert shown["issuer"]["source"] == f"resource metadata of {first.url}"

    session = FileStore(Path(plain_env["KEEPTRUSTS_CONFIG_DIR"])).load("default")
    assert session is not None
    bearer = {"Authorization": f"Bearer {session.access_token}"}
    me = httpx2.get(first.url + "/v1/auth/whoami", headers=bearer)
    assert me.status_code == 200 and me.json()["audience"] == first.url
    replayed = httpx2.get(second.url + "/v1/auth/whoami", headers=bearer)
    assert replayed.status_code == 401
    assert 'error="invalid_token"' in replayed.headers["www-authenticate"]
    assert kt("auth", "whoami", "--api-url", first.url, env=plain_env).code == 0


def test_doctor_checks_the_issuer_the_api_names(tmp_path, capsys, api, idp):
    """kt auth doctor asks the API as a sign-in does: the listed issuer's metadata is checked."""
    lists(api, idp.issuer)
    _, doc, _ = run(tmp_path, api, idp, capsys, "auth", "doctor")
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["issuer"]["status"] in ("ok", "warn"), checks["issuer"]
    assert checks["issuer"]["detail"].startswith(
        f"{idp.issuer} (resource metadata of {api.issuer})"
    )
    assert idp.calls("GET", "/.well-known/openid-configuration")
