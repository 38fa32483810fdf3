"""Scoped API tokens through the real `kt` process and server: create, list, revoke, rotate."""

from __future__ import annotations

from pathlib import Path

import pytest

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from tests.kt_process import ALICE, BOB, kt, password_login
from tests.terminal import Terminal


@pytest.fixture
def env(env):
    """The shared `env` (tests/fixtures/devserver.py), its sessions kept in files."""
    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text('credential_store = "file"\n')
    return env


def alice(env):
    r = password_login(env, ALICE)
    assert r.code == 0, r.stderr


def bob_with_mfa(env):
    r = password_login(env, BOB, "--json")
    assert r.code == 4
    token = r.error()["mfa_token"]
    r = kt("auth", "mfa", "challenge", "--token", token, env=env, input=totp.code(BOB_TOTP_SECRET))
    assert r.code == 0, r.stderr


def create(env, *scopes, name="ci-deploy"):
    r = kt(
        "auth", "token", "create", "--name", name, "--scope", ",".join(scopes), "--json", env=env
    )
    assert r.code == 0, r.stderr
    return r.json()


def test_create_prints_secret_once_on_stdout(env):
    alice(env)
    r = kt(
        "auth",
        "token",
        "create",
        "--name",
        "ci",
        "--scope",
        "configurations:write,gateways:read",
        env=env,
    )
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kt_live_")
    assert "will not be shown again" in r.stderr
    secret = lines[0]
    listed = kt("auth", "token", "list", "--json", env=env)
    assert listed.code == 0
    assert secret not in listed.stdout
    (tok,) = listed.json()["tokens"]
    assert tok["name"] == "ci" and tok["state"] == "active"
    assert sorted(tok["scopes"]) == ["configurations:write", "gateways:read"]
    assert tok["expires_at"]  # finite default expiry
    human = kt("auth", "token", "list", env=env)
    assert "ci" in human.stdout and "active" in human.stdout and secret not in human.stdout


def test_env_token_is_used_scoped_and_revoked(env):
    alice(env)
    made = create(env, "tokens:read", "gateways:read")
    secret, token_id = made["secret"], made["token"]["id"]
    ci = dict(env, KEEPTRUSTS_API_TOKEN=secret)
    who = kt("auth", "whoami", "--json", env=ci)
    assert who.code == 0, who.stderr
    assert who.json()["auth_method"] == "api_token"
    assert who.json()["credential_source"] == "environment"
    assert kt("auth", "token", "list", env=ci).code == 0
    # the token lacks tokens:write
    denied = kt(
        "auth", "token", "create", "--name", "x", "--scope", "tokens:read", "--json", env=ci
    )
    assert denied.code == 1
    assert denied.error()["code"] == "auth.insufficient_scope"
    # revoke (either spelling), then the token is refused on its next request
    r = kt("auth", "token", "revoke", "--id", token_id, "--json", env=env)
    assert r.code == 0, r.stderr
    assert r.json()["revoked"]["state"] == "revoked"
    gone = kt("auth", "whoami", "--json", env=ci)
    assert gone.code == 3
    assert gone.error()["code"] == "auth.token_revoked"
    again = kt("auth", "token", "revoke", "--token-id", token_id, env=env)
    assert again.code == 0
    assert "already revoked" in again.stdout
    listed = kt("auth", "token", "list", "--all", "--json", env=env).json()["tokens"]
    assert listed[0]["state"] == "revoked"


def test_env_token_never_written(env):
    alice(env)
    secret = create(env, "tokens:read")["secret"]
    ci = dict(env, KEEPTRUSTS_API_TOKEN=secret)
    assert kt("auth", "whoami", env=ci).code == 0
    for path in Path(env["KEEPTRUSTS_CONFIG_DIR"]).rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace")
    out = kt("auth", "logout", env=ci)
    assert "KEEPTRUSTS_API_TOKEN is still set" in out.stderr


def test_unknown_token_id(env):
    alice(env)
    r = kt("auth", "token", "revoke", "--token-id", "tok_doesnotexist", "--json", env=env)
    assert r.code == 1
    assert r.error()["code"] == "auth.not_found"
    r = kt("auth", "token", "revoke", "--token-id", "../../v1/auth/logout", "--json", env=env)
    assert r.code == 2


def test_scope_beyond_role_refused(tmp_path, env):
    bob_with_mfa(env)
    r = kt("auth", "token", "create", "--name", "x", "--scope", "gateways:write", "--json", env=env)
    assert r.code == 1
    assert r.error()["code"] == "auth.scope_not_allowed"


def test_rotate_requires_mfa_session(env):
    alice(env)
    token_id = create(env, "tokens:read")["token"]["id"]
    r = kt("auth", "token", "rotate", "--id", token_id, "--json", env=env)
    assert r.code == 4
    assert r.error()["code"] == "auth.mfa_required"


def test_rotate_after_mfa(env):
    bob_with_mfa(env)
    old = create(env, "tokens:read", "gateways:read")
    r = kt("auth", "token", "rotate", "--token-id", old["token"]["id"], env=env)
    assert r.code == 0, r.stderr
    (new_secret,) = r.stdout.splitlines()
    assert new_secret.startswith("kt_live_") and new_secret != old["secret"]
    assert kt("auth", "whoami", env=dict(env, KEEPTRUSTS_API_TOKEN=old["secret"])).code == 3
    who = kt("auth", "whoami", "--json", env=dict(env, KEEPTRUSTS_API_TOKEN=new_secret))
    assert who.code == 0
    tokens = kt("auth", "token", "list", "--all", "--json", env=env).json()["tokens"]
    states = {t["id"]: t["state"] for t in tokens}
    assert states[old["token"]["id"]] == "revoked"
    assert sorted(states.values()) == ["active", "revoked"]


def _listed(env, *flags):
    r = kt("auth", "token", "list", "--json", *flags, env=env)
    assert r.code == 0, r.stderr
    return {t["id"]: t for t in r.json()["tokens"]}


@pytest.mark.parametrize("answer", ["n", ""])
def test_declining_the_revoke_confirmation_revokes_nothing_and_exits_0(env, answer):
    """Issue 12, defect 1 (and the confirmation names the token): a decline is no interruption."""
    alice(env)
    made = create(env, "tokens:read", "gateways:read", name="deploy-bot")
    token_id = made["token"]["id"]
    term = Terminal(["auth", "token", "revoke", "--id", token_id], env)
    prompt = term.expect("This cannot be undone")
    assert "deploy-bot" in prompt and "gateways:read,tokens:read" in prompt
    assert "last used: never" in prompt
    term.type(answer)
    assert term.finish() == 0, term.seen
    assert "Nothing was revoked" in term.seen
    assert "interrupted" not in term.seen and "Error" not in term.seen
    assert _listed(env)[token_id]["state"] == "active"


def test_confirming_revokes_and_revoking_again_says_it_was_already_revoked(env):
    alice(env)
    token_id = create(env, "tokens:read")["token"]["id"]
    term = Terminal(["auth", "token", "revoke", "--id", token_id], env)
    term.expect("This cannot be undone")
    term.type("y")
    assert term.finish() == 0, term.seen
    assert f"Revoked API token {token_id}" in term.seen
    again = kt("auth", "token", "revoke", "--id", token_id, "--json", env=env)
    assert again.code == 0, again.stderr
    assert again.json()["already_revoked"] is True
    human = kt("auth", "token", "revoke", "--id", token_id, env=env)
    assert "was already revoked at " in human.stdout and "Revoked API token" not in human.stdout


def test_list_hides_revoked_tokens_unless_all(env):
    alice(env)
    kept = create(env, "tokens:read", name="kept")["token"]["id"]
    gone = create(env, "tokens:read", name="gone")["token"]["id"]
    assert kt("auth", "token", "revoke", "--id", gone, "--yes", env=env).code == 0
    assert set(_listed(env)) == {kept}
    assert set(_listed(env, "--all")) == {kept, gone}
    human = kt("auth", "token", "list", env=env)
    assert "kept" in human.stdout and gone not in human.stdout
    assert "1 revoked or expired token not shown (kt auth token list --all" in human.stdout
    assert gone in kt("auth", "token", "list", "--all", env=env).stdout


def test_list_fits_a_narrow_terminal(env):
    alice(env)
    long_name = "nightly-deploy-of-the-configuration-service-" + "x" * 30
    token_id = create(env, "configurations:read", "gateways:read", "tokens:read", name=long_name)[
        "token"
    ]["id"]
    term = Terminal(["auth", "token", "list"], env, columns=60)
    assert term.finish() == 0, term.seen
    lines = [line for line in term.seen.splitlines() if line.strip()]
    assert lines[0].split()[:4] == ["ID", "NAME", "SCOPES", "STATE"]
    assert all(len(line) <= 60 for line in lines), lines
    assert token_id in term.seen and "active" in term.seen and "…" in term.seen
    wide = kt("auth", "token", "list", env=env)  # not a terminal: nothing is cut
    assert (
        long_name in wide.stdout and "configurations:read,gateways:read,tokens:read" in wide.stdout
    )


def test_rotate_keeps_the_old_lifetime_and_says_the_new_expiry(env):
    """Issue 12, defect 7: no silent 90-day default."""
    bob_with_mfa(env)
    r = kt(
        "auth",
        "token",
        "create",
        "--name",
        "short",
        "--scope",
        "tokens:read",
        "--expires-in-days",
        "7",
        "--json",
        env=env,
    )
    assert r.code == 0, r.stderr
    old = r.json()["token"]
    rotated = kt("auth", "token", "rotate", "--id", old["id"], env=env)
    assert rotated.code == 0, rotated.stderr
    new = next(t for t in _listed(env).values() if t["id"] != old["id"])
    assert new["expires_at"][:10] == old["expires_at"][:10]  # 7 days, not 90
    assert f"expires {new['expires_at']}" in rotated.stderr
    longer = kt(
        "auth", "token", "rotate", "--id", new["id"], "--expires-in-days", "30", "--json", env=env
    )
    assert longer.code == 0, longer.stderr
    assert longer.json()["token"]["expires_at"][:10] > new["expires_at"][:10]


def test_an_unknown_scope_is_refused_with_the_valid_ones(env):
    alice(env)
    r = kt("auth", "token", "create", "--name", "x", "--scope", "bogus", env=env)
    assert r.code == 1
    assert "Unknown scope(s): 'bogus'" in r.stderr
    assert "Valid scopes: configurations:read" in r.stderr and "tokens:write" in r.stderr
