"""`kt auth login --dpop` against a real kt-devserver (issue 15 part 1, RFC 9449): the session's
tokens are bound to a key kept with it, so a copy of them without the key is refused; every
request carries a fresh proof (a replayed one is refused), the server's nonce is asked for and
used, refreshes keep the binding, and `kt auth status` shows the key's thumbprint, never the
key."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from kt_login import dpop
from tests.fixtures.devserver import DevServer
from tests.fixtures.oauth_client import CLIENT_ID, approve_device
from tests.kt_process import Result, base_env, kt, start_device_login


def dpop_login(env: dict[str, str], server: DevServer, *extra: str) -> Result:
    proc, doc = start_device_login(env, *extra)
    approve_device(server.url, doc["verification_uri_complete"])
    out, err = proc.communicate(timeout=60)
    return Result(proc.returncode, out, err)


def stored(env: dict[str, str], profile: str = "default") -> dict[str, object]:
    path = Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "credentials" / f"{profile}.json"
    data: dict[str, object] = json.loads(path.read_text())
    return data


def whoami_with(
    server: DevServer, token: str, *, scheme: str, proof: str | None
) -> httpx2.Response:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return httpx2.get(server.url + "/v1/auth/whoami", headers=headers)


def test_a_dpop_session_works_and_status_shows_its_key_thumbprint(env, devserver):
    login = dpop_login(env, devserver, "--dpop")
    assert login.code == 0, login.stderr
    session = stored(env)
    key = dpop.DpopKey.from_json(str(session["dpop_key"]))
    assert login.json()["dpop_jkt"] == key.thumbprint
    status = kt("auth", "status", env=env)
    assert status.code == 0, status.stderr
    assert f"Bound to DPoP key: {key.thumbprint}" in status.stdout
    assert kt("auth", "status", "--json", env=env).json()["dpop_jkt"] == key.thumbprint
    whoami = kt("auth", "whoami", env=env)
    assert whoami.code == 0, whoami.stderr
    assert "alice@example.com" in whoami.stdout
    private = json.loads(str(session["dpop_key"]))["d"]
    for result in (login, status, whoami, kt("auth", "status", "--json", env=env)):
        assert private not in result.stdout + result.stderr
        assert str(session["dpop_key"]) not in result.stdout + result.stderr


def test_a_copied_access_token_is_refused_without_the_key(env, devserver, tmp_path):
    assert dpop_login(env, devserver, "--dpop").code == 0
    session = stored(env)
    access, refresh = str(session["access_token"]), str(session["refresh_token"])
    # another process, another machine: the token alone, as an API token would be used
    thief = base_env(tmp_path / "thief", KEEPTRUSTS_API_URL=devserver.url)
    thief["KEEPTRUSTS_API_TOKEN"] = access
    r = kt("auth", "whoami", env=thief)
    assert r.code == 3, r.stderr
    assert "bound to a DPoP key" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2
    # by hand: as Bearer, as DPoP without a proof, with a proof of another key
    other = dpop.Prover(dpop.DpopKey.generate())
    url = devserver.url + "/v1/auth/whoami"
    for scheme, proof in (
        ("Bearer", None),
        ("DPoP", None),
        ("DPoP", other.proof("GET", url, access_token=access)),
    ):
        assert whoami_with(devserver, access, scheme=scheme, proof=proof).status_code == 401
    copied_refresh = httpx2.post(
        devserver.url + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID},
    )
    assert copied_refresh.status_code == 400
    assert copied_refresh.json()["error"] == "invalid_dpop_proof"
    # none of that spent or ended the session of the key's holder
    assert kt("auth", "whoami", env=env).code == 0


def test_a_replayed_proof_is_refused(env, devserver):
    assert dpop_login(env, devserver, "--dpop").code == 0
    session = stored(env)
    access = str(session["access_token"])
    prover = dpop.Prover(dpop.DpopKey.from_json(str(session["dpop_key"])))
    url = devserver.url + "/v1/auth/whoami"
    asked = whoami_with(
        devserver, access, scheme="DPoP", proof=prover.proof("GET", url, access_token=access)
    )
    assert asked.status_code == 401 and prover.learn(asked)  # the server's nonce first
    proof = prover.proof("GET", url, access_token=access)
    assert whoami_with(devserver, access, scheme="DPoP", proof=proof).status_code == 200
    replayed = whoami_with(devserver, access, scheme="DPoP", proof=proof)
    assert replayed.status_code == 401
    assert replayed.json()["error"]["code"] == "auth.invalid_dpop_proof"
    assert "used before" in replayed.json()["error"]["message"]


def test_refresh_keeps_the_binding(devserver_factory, tmp_path):
    # 30 s access tokens: every command refreshes first (less than 60 s left)
    server = devserver_factory("--access-token-ttl", "30")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    config = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    config.mkdir(parents=True, mode=0o700, exist_ok=True)
    (config / "config.toml").write_text("[profiles.default]\ndpop = true\n")
    login = dpop_login(env, server)  # no --dpop: the profile's `dpop = true`
    assert login.code == 0, login.stderr
    first = stored(env)
    jkt = login.json()["dpop_jkt"]
    assert jkt
    for command in (("auth", "whoami"), ("auth", "refresh")):
        r = kt(*command, env=env)
        assert r.code == 0, r.stderr
    after = stored(env)
    assert after["access_token"] != first["access_token"]
    assert after["refresh_token"] != first["refresh_token"]
    assert after["dpop_key"] == first["dpop_key"]
    assert kt("auth", "status", "--json", env=env).json()["dpop_jkt"] == jkt
    # the refreshed token is bound to the same key: refused without it
    access = str(after["access_token"])
    assert whoami_with(server, access, scheme="Bearer", proof=None).status_code == 401


@pytest.mark.parametrize(
    "flags",
    [
        ("--email", "alice@example.com", "--password-stdin"),
        ("--with-token",),
        ("--device", "--start"),
    ],
)
def test_dpop_is_refused_where_kt_does_not_finish_an_oauth_sign_in(env, flags):
    r = kt("auth", "login", "--dpop", *flags, env=env, input="x\n")
    assert r.code == 2, r.stderr
    assert "--dpop" in r.stderr and "Traceback" not in r.stderr


def test_a_profile_asking_for_dpop_refuses_a_two_step_sign_in(env):
    config = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    config.mkdir(parents=True, mode=0o700, exist_ok=True)
    (config / "config.toml").write_text("[profiles.agent]\ndpop = true\n")
    r = kt("auth", "login", "--device", "--start", "--profile", "agent", env=env)
    assert r.code == 2, r.stderr
    assert "dpop = true" in r.stderr and "kt auth login --device --profile agent" in r.stderr
    assert not (config / "pending").exists()
