"""`kt auth login --federated` (issue 15 part 2): a CI job signs in with its own identity token,
exchanged (RFC 8693) at a real kt-devserver whose trust rule names the stub OpenID provider as
the CI's issuer (its own JWKS over loopback; HostileAS.ci_token mints the job's JWTs, and serves
GitHub Actions' token request). Every refusal goes through the real `kt`: one clear line, exit 3,
nothing stored, no token printed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.adversarial.hostile_as import ACTIONS_TOKEN_PATH, CI_SUBJECT, DELETE, HostileAS
from tests.fixtures.devserver import DevServer
from tests.kt_process import Result, kt


@pytest.fixture(scope="module")
def ci() -> Iterator[HostileAS]:
    server = HostileAS().start()
    yield server
    server.stop()


@pytest.fixture
def trusted(devserver: DevServer, ci: HostileAS) -> DevServer:
    ci.reset()
    devserver.trust(ci.issuer, "--scope", "gateways:read", "--lifetime", "600")
    return devserver


def token_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / "ci-token"
    path.write_text(token + "\n")
    return str(path)


def stored_sessions(env: dict[str, str]) -> list[Path]:
    config = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    return [p for p in config.rglob("*") if p.is_file()] if config.exists() else []


def test_a_ci_job_signs_in_with_its_identity_token_and_keeps_the_session(
    tmp_path: Path, env: dict[str, str], trusted: DevServer, ci: HostileAS
) -> None:
    path = token_file(tmp_path, ci.ci_token(trusted.url))
    r = kt(
        "auth", "login", "--federated", "--subject-token-file", path, "--insecure-storage",
        env=env,
    )  # fmt: skip
    assert r.code == 0, r.stderr
    assert f"Logged in to {trusted.url} as deploy@workload.invalid (Acme, workload)" in r.stdout
    assert "expires in 10 minutes and has no refresh token" in r.stdout
    who = kt("auth", "whoami", "--json", env=env)
    assert who.code == 0, who.stderr
    doc = who.json()
    assert doc["auth_method"] == "federated"
    assert doc["federated"] == {"issuer": ci.issuer, "subject": CI_SUBJECT}
    assert doc["scopes"] == ["gateways:read"]
    human = kt("auth", "whoami", env=env)
    assert f"Federated from: {CI_SUBJECT} at {ci.issuer}" in human.stdout
    status = kt("auth", "status", "--json", env=env)
    assert status.json()["method"] == "federated", status.stdout
    other_api = kt("auth", "whoami", "--api-url", "http://127.0.0.1:9", env=env)
    assert other_api.code == 3
    assert "kt auth login --federated --api-url http://127.0.0.1:9" in other_api.stderr
    token = kt("auth", "print-access-token", env=env).stdout.strip()
    assert kt("auth", "logout", env=env).code == 0
    assert kt("auth", "whoami", env=env).code == 3
    # revoked on the server too (RFC 7009 at the issuer), not only forgotten here
    assert kt("auth", "whoami", env={**env, "KEEPTRUSTS_API_TOKEN": token}).code == 3


def test_no_store_prints_only_the_access_token_and_keeps_nothing(
    env: dict[str, str], trusted: DevServer, ci: HostileAS
) -> None:
    env = {**env, "CI_ID_TOKEN": ci.ci_token(trusted.url)}
    r = kt(
        "auth", "login", "--federated", "--subject-token-env", "CI_ID_TOKEN", "--no-store", env=env
    )
    assert r.code == 0, r.stderr
    token = r.stdout.strip()
    assert r.stdout == token + "\n" and token.startswith("kta_")
    assert "KEEPTRUSTS_API_TOKEN" in r.stderr and token not in r.stderr
    assert env["CI_ID_TOKEN"] not in r.stdout + r.stderr
    assert stored_sessions(env) == []
    who = kt("auth", "whoami", "--json", env={**env, "KEEPTRUSTS_API_TOKEN": token})
    assert who.code == 0, who.stderr
    assert who.json()["auth_method"] == "federated"
    assert who.json()["credential_source"] == "environment"


def test_json_no_store_gives_the_token_in_one_document(
    tmp_path: Path, env: dict[str, str], trusted: DevServer, ci: HostileAS
) -> None:
    path = token_file(tmp_path, ci.ci_token(trusted.url))
    r = kt(
        "auth",
        "login",
        "--federated",
        "--subject-token-file",
        path,
        "--no-store",
        "--json",
        env=env,
    )
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["stored"] is False and doc["access_token"].startswith("kta_")
    assert doc["method"] == "federated" and doc["scopes"] == ["gateways:read"]
    assert stored_sessions(env) == []


def test_github_actions_identity_token_is_asked_for_and_its_request_token_never_shown(
    env: dict[str, str], trusted: DevServer, ci: HostileAS
) -> None:
    request_token = "ghs-request-token-" + "x" * 24  # noqa: S105 - test value
    ci.actions_request_token = request_token
    try:
        gha = {
            **env,
            "ACTIONS_ID_TOKEN_REQUEST_URL": ci.issuer + ACTIONS_TOKEN_PATH + "?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token,
        }
        r = kt("auth", "login", "--federated", "--no-store", "--debug", env=gha)
    finally:
        ci.actions_request_token = None
    assert r.code == 0, r.stderr
    assert request_token not in r.stdout + r.stderr
    (asked,) = ci.calls("GET", ACTIONS_TOKEN_PATH)
    assert asked.query == {"api-version": "2.0", "audience": trusted.url}
    assert asked.headers["Authorization"] == f"Bearer {request_token}"
    minted = [t for t in ci.issued if t.count(".") == 2]
    assert minted and not any(t in r.stdout + r.stderr for t in minted)


def _refused(r: Result, reason: str, secret: str, env: dict[str, str]) -> None:
    assert r.code == 3, (r.stdout, r.stderr)
    assert "refused the identity token" in r.stderr and reason in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert secret not in r.stderr
    assert stored_sessions(env) == []


def _now() -> int:
    return int(time.time())


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ({"audience": "https://another-api.example"}, "aud is not an audience a rule expects"),
        ({"claims": {"repository": "evil/app"}}, "repository claim matches no rule"),
        ({"claims": {"ref": "refs/pull/7/merge"}}, "ref claim matches no rule"),
        ({"claims": {"exp": "past", "iat": "past"}}, "it has expired"),
        ({"how": "none"}, "algorithm 'none' is not allowed"),
        ({"how": "hs256-public-key"}, "algorithm 'HS256' is not allowed"),
        ({"how": "rsa-attacker"}, "no key of the provider matches it"),
        ({"how": "rsa-evil"}, "the signature does not verify"),
        ({"claims": {"jti": DELETE}}, "has no jti"),
    ],
    ids=[
        "wrong-audience",
        "wrong-repository",
        "wrong-ref",
        "expired",
        "unsigned",
        "hmac-with-public-key",
        "foreign-key",
        "same-kid-other-key",
        "no-jti",
    ],
)
def test_a_token_the_trust_rule_does_not_accept_is_refused_clearly(
    tmp_path: Path,
    env: dict[str, str],
    trusted: DevServer,
    ci: HostileAS,
    case: dict[str, Any],
    reason: str,
) -> None:
    claims = dict(case.get("claims", {}))
    if claims.get("exp") == "past":
        claims.update(exp=_now() - 600, iat=_now() - 900, nbf=_now() - 900)
    token = ci.ci_token(case.get("audience", trusted.url), claims, how=case.get("how", "rsa-k1"))
    path = token_file(tmp_path, token)
    r = kt(
        "auth", "login", "--federated", "--subject-token-file", path, "--insecure-storage", env=env
    )
    _refused(r, reason, token, env)


def test_a_replayed_identity_token_is_refused(
    tmp_path: Path, env: dict[str, str], trusted: DevServer, ci: HostileAS
) -> None:
    token = ci.ci_token(trusted.url)
    path = token_file(tmp_path, token)
    first = kt("auth", "login", "--federated", "--subject-token-file", path, "--no-store", env=env)
    assert first.code == 0, first.stderr
    again = kt(
        "auth", "login", "--federated", "--subject-token-file", path, "--no-store", "--json",
        env=env,
    )  # fmt: skip
    assert again.code == 3
    error = again.error()
    assert error["code"] == "oauth.invalid_grant"
    assert "already used" in error["message"]
    assert token not in again.stderr


def test_json_refusal_is_one_error_document(
    tmp_path: Path, env: dict[str, str], trusted: DevServer, ci: HostileAS
) -> None:
    token = ci.ci_token(trusted.url, {"repository": "evil/app"})
    r = kt(
        "auth", "login", "--federated", "--subject-token-file", token_file(tmp_path, token),
        "--no-store", "--json", env=env,
    )  # fmt: skip
    assert r.code == 3
    assert r.stderr.count("\n") == 1
    error = r.error()
    assert error["exit_code"] == 3 and "repository claim" in error["message"]
    assert "trust rule" in error["hint"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--federated"], "no identity token to sign in with"),
        (["--federated", "--subject-token-env", "NOT_SET"], "NOT_SET is not set"),
        (["--federated", "--subject-token-file", "/nonexistent/t"], "cannot read"),
        (["--no-store"], "--no-store go with --federated"),
        (["--federated", "--browser"], "drop --browser"),
        (["--federated", "--no-store", "--insecure-storage"], "drop --insecure-storage"),
    ],
)
def test_usage_errors(env: dict[str, str], args: list[str], message: str) -> None:
    r = kt("auth", "login", *args, env=env)
    assert r.code == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr


def test_a_file_that_is_not_a_jwt_is_refused_before_anything_is_sent(
    tmp_path: Path, env: dict[str, str], devserver: DevServer
) -> None:
    r = kt(
        "auth", "login", "--federated", "--subject-token-file", token_file(tmp_path, "not a jwt"),
        env=env,
    )  # fmt: skip
    assert r.code == 2
    assert "does not hold a JWT" in r.stderr
