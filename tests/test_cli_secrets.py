"""The canary sweep (SECURITY.md HY-01, HY-02, HY-05, ST-06): every `kt` command, on success and
failure paths, with and without --json, against a real `kt-devserver`. Every secret that exists
during the run (passwords, session tokens, mfa_tokens, API token secrets) is a canary: it may
appear only where it is documented to, and never in the server's log or in any other file.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kt_devserver import totp
from kt_devserver.demo import BOB_TOTP_SECRET
from tests.fixtures.devserver import DevServer
from tests.kt_process import ALICE, BOB, Result, base_env, free_port, kt, login_blocked_on_password

WRONG = "Wrong-Password-Canary-5d1c9a"
MODES = ((), ("--json",))
SCOPES = ("--scope", "tokens:read,tokens:write")

# ST-06: everything a stored session may hold (never a password, mfa_token, code, PKCE verifier,
# state, nonce or device code)
SESSION_KEYS = {
    "api_url",
    "access_token",
    "refresh_token",
    "expires_at",
    "refresh_expires_at",
    "obtained_at",
    "method",
    "kind",  # who refreshes and revokes: "keeptrusts" or "oauth"
    "user_email",
    "user_id",
    "organization",
    "role",
    "scopes",
    "mfa_authenticated",
    "session_id",
    # OAuth/OIDC sign-ins: endpoints and what the ID token said, none of it secret
    "issuer",
    "client_id",
    "token_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "subject",
    "auth_time",
    "acr",
    "display_name",  # how kt names the person without an email (issue 10 case 1)
    "granted_scope",  # the OAuth scope granted (not secret)
    "resource",  # RFC 8707: the API the tokens were asked for
    "issuer_source",  # RFC 9728: where kt found the issuer
    "dpop_key",  # a --dpop session's private key (RFC 9449): as secret as the tokens
}
MFA_HINT = "run: kt auth mfa challenge --token "


@dataclass
class Run:
    args: tuple[str, ...]
    result: Result
    api_secret: str | None = None  # the one secret this run may print: token create/rotate


# (args, profile, stdin, extra environment)
Call = tuple[tuple[str, ...], str, str | None, dict[str, str]]


def call(*args: str, profile: str, input: str | None = None, **extra: str) -> Call:
    return args, profile, input, extra


def login_call(who: tuple[str, str], *extra: str, password: str | None = None) -> Call:
    return call(
        "auth",
        "login",
        "--email",
        who[0],
        "--password-stdin",
        *extra,
        profile=who[0].split("@")[0],
        input=(password or who[1]) + "\n",
    )


@dataclass
class Sweep:
    """Runs kt, remembers every output, and harvests every session token ever stored."""

    env: dict[str, str]
    runs: list[Run] = field(default_factory=list)
    session_tokens: set[str] = field(default_factory=set)
    mfa_tokens: set[str] = field(default_factory=set)
    api_secrets: set[str] = field(default_factory=set)

    @property
    def config(self) -> Path:
        return Path(self.env["KEEPTRUSTS_CONFIG_DIR"])

    def batch(self, *calls: Call) -> list[Result]:
        """Run independent commands at the same time (they must not depend on each other)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(self._run, calls))
        for c, r in zip(calls, results, strict=True):
            assert "Traceback" not in r.stderr, r.stderr
            self.runs.append(Run(c[0], r))
        self.harvest()
        return results

    def run(self, c: Call) -> Result:
        return self.batch(c)[0]

    def _run(self, c: Call) -> Result:
        args, profile, stdin, extra = c
        return kt(*args, env=dict(self.env, KEEPTRUSTS_PROFILE=profile, **extra), input=stdin)

    def harvest(self) -> None:
        for path in (self.config / "credentials").glob("*.json"):
            stored = json.loads(path.read_text())
            assert set(stored) <= SESSION_KEYS, sorted(set(stored) - SESSION_KEYS)
            self.session_tokens.add(stored["access_token"])
            if stored.get("refresh_token"):
                self.session_tokens.add(stored["refresh_token"])
            if stored.get("dpop_key"):
                self.session_tokens.add(json.loads(stored["dpop_key"])["d"])

    def session_file(self, profile: str) -> Path:
        return self.config / "credentials" / f"{profile}.json"

    def issue(self, *args: str, profile: str) -> tuple[str, str | None]:
        """Run token create/rotate; return the secret and (with --json) the new token's id."""
        r = self.run(call(*args, profile=profile))
        assert r.code == 0, r.stderr
        token_id = None
        if "--json" in args:
            doc = r.json()
            secret, token_id = doc["secret"], doc["token"]["id"]
        else:
            # HY-05: `kt auth token create | cat` gets exactly one line, the secret
            lines = r.stdout.splitlines()
            assert len(lines) == 1 and r.stdout == lines[0] + "\n", r.stdout
            secret = lines[0]
            assert "will not be shown again" in r.stderr
        assert secret.startswith("kt_live_")
        self.runs[-1].api_secret = secret
        self.api_secrets.add(secret)
        return secret, token_id


def _without_allowed_mfa_token(run: Run, mfa_tokens: set[str]) -> str:
    """stderr of an exit-4 run minus the documented places an mfa_token appears: the hint line
    (human) or the error's `hint` and `mfa_token` fields (--json)."""
    kept = []
    for line in run.result.stderr.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if "error" not in doc:  # a JSON warning line (e.g. plaintext storage): kept whole
                kept.append(line)
                continue
            err = doc["error"]
            token = err.pop("mfa_token", None)
            if token is not None:
                assert token in mfa_tokens
                hint = err.pop("hint")
                assert hint.startswith(MFA_HINT + token)
            kept.append(json.dumps(doc))
        elif line.startswith(MFA_HINT):
            assert line.split()[6] in mfa_tokens
        else:
            kept.append(line)
    return "\n".join(kept)


def assert_no_canary(where: str, text: str, canaries: set[str]) -> None:
    leaked = sorted(c for c in canaries if c in text)
    assert not leaked, f"{where} shows {leaked}:\n{text}"


@pytest.fixture
def sweep(tmp_path: Path, devserver: DevServer) -> Sweep:
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, KT_DEBUG="1")
    config = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    config.mkdir(parents=True)
    (config / "config.toml").write_text('credential_store = "file"\n')  # readable canaries
    return Sweep(env)


def test_canary_sweep(sweep: Sweep, devserver: DevServer) -> None:
    s = sweep
    # --- login: failure paths, then success (the second replaces and revokes the first)
    wrong = s.batch(*(login_call(ALICE, *m, password=WRONG) for m in MODES))
    assert [r.code for r in wrong] == [3, 3]
    assert s.run(login_call(ALICE)).code == 0
    assert s.run(login_call(ALICE, "--json")).code == 0

    # --- MFA: exit 4 with the mfa_token, a wrong code, then the right one
    first, second = s.batch(login_call(BOB, "--json"), login_call(BOB))
    assert first.code == second.code == 4
    mfa_token = first.error()["mfa_token"]
    hint = next(line for line in second.stderr.splitlines() if line.startswith(MFA_HINT))
    s.mfa_tokens |= {mfa_token, hint.split()[6]}
    challenge = ("auth", "mfa", "challenge", "--token", mfa_token)
    assert s.run(call(*challenge, profile="bob", input="000000\n")).code == 4
    code = totp.code(BOB_TOTP_SECRET)
    assert s.run(call(*challenge, "--json", profile="bob", input=code + "\n")).code == 0

    # --- read-only commands, both modes
    read_only = [("auth", "whoami"), ("auth", "status"), ("config", "show")]
    results = s.batch(*(call(*c, *m, profile="alice") for c in read_only for m in MODES))
    assert [r.code for r in results] == [0] * 6

    # --- API tokens: create, list, revoke, use as KEEPTRUSTS_API_TOKEN, rotate
    kept, _ = s.issue("auth", "token", "create", "--name", "ci-a", *SCOPES, profile="alice")
    revoked, revoked_id = s.issue(
        "auth", "token", "create", "--name", "ci-b", *SCOPES, "--json", profile="alice"
    )
    assert revoked_id is not None
    listed, gone, missing = s.batch(
        call("auth", "token", "list", profile="alice"),
        call("auth", "token", "revoke", "--id", revoked_id, "--yes", profile="alice"),
        call("auth", "token", "revoke", "--id", "tok_nope", "--json", profile="alice"),
    )
    assert (listed.code, gone.code, missing.code) == (0, 0, 1)
    results = s.batch(
        *(call("auth", "whoami", *m, profile="x", KEEPTRUSTS_API_TOKEN=revoked) for m in MODES),
        call("auth", "whoami", "--json", profile="x", KEEPTRUSTS_API_TOKEN=kept),
        call("auth", "status", profile="x", KEEPTRUSTS_API_TOKEN=kept),
        # rotate needs MFA: alice has none (exit 4, no mfa_token to offer)
        call("auth", "token", "rotate", "--id", revoked_id, profile="alice"),
    )
    assert [r.code for r in results] == [3, 3, 0, 0, 4]
    _, bobs_id = s.issue(
        "auth", "token", "create", "--name", "bob-ci", *SCOPES, "--json", profile="bob"
    )
    assert bobs_id is not None
    _, rotated_id = s.issue("auth", "token", "rotate", "--id", bobs_id, "--json", profile="bob")
    assert rotated_id is not None
    s.issue("auth", "token", "rotate", "--id", rotated_id, profile="bob")
    stale, bobs_list = s.batch(
        call("auth", "token", "rotate", "--id", bobs_id, "--json", profile="bob"),
        call("auth", "token", "list", "--json", profile="bob"),
    )
    assert (stale.code, bobs_list.code) == (1, 0)

    # --- logout; the revoked session, put back, is refused and cleared
    saved = s.session_file("alice").read_bytes()
    assert s.run(call("auth", "logout", profile="alice")).code == 0
    for mode in MODES:
        s.session_file("alice").write_bytes(saved)
        s.session_file("alice").chmod(0o600)
        assert s.run(call("auth", "whoami", *mode, profile="alice")).code == 3
        assert not s.session_file("alice").exists()

    # --- the server goes away while bob has a session
    devserver.stop()
    results = s.batch(
        *(call("auth", "whoami", *m, profile="bob") for m in MODES),
        call("auth", "token", "list", profile="bob"),
        login_call(ALICE, "--json"),
        login_call(BOB),
    )
    assert [r.code for r in results] == [5] * 5
    assert s.run(call("auth", "logout", "--json", profile="bob")).code == 5

    # ------------------------------------------------------------------ the assertions
    assert len(s.session_tokens) >= 6 and len(s.mfa_tokens) == 2 and len(s.api_secrets) == 5
    passwords = {ALICE[1], BOB[1], WRONG}
    everything = passwords | s.session_tokens | s.mfa_tokens | s.api_secrets
    for run in s.runs:
        where = "kt " + " ".join(run.args)
        out, err = run.result.stdout, run.result.stderr
        if run.api_secret is not None:
            assert out.count(run.api_secret) == 1, where  # the one documented place
            out = out.replace(run.api_secret, "")
        if run.result.code == 4:
            err = _without_allowed_mfa_token(run, s.mfa_tokens)
        assert_no_canary(where + " (stdout)", out, everything)
        assert_no_canary(where + " (stderr)", err, everything)

    assert_no_canary("the kt-devserver log", devserver.stderr(), everything)
    for path in s.config.rglob("*"):
        if path.is_file():
            # no password, mfa_token or API token secret was ever written anywhere; the
            # session file (gone by now) was the only place for session tokens
            assert_no_canary(str(path), path.read_text(errors="replace"), everything)


def test_password_stdin_keeps_the_password_out_of_the_command_line(tmp_path: Path) -> None:
    """HY-01: while `kt auth login --password-stdin` runs, /proc/<pid>/cmdline (readable by
    every local user) and its environment hold no password."""
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=f"http://127.0.0.1:{free_port()}")
    with login_blocked_on_password(env) as login:
        assert login.proc.poll() is None  # blocked reading the password
        cmdline = Path(f"/proc/{login.proc.pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{login.proc.pid}/environ").read_bytes()
        assert b"--password-stdin\0" in cmdline and ALICE[0].encode() in cmdline  # the real one
        assert ALICE[1].encode() not in cmdline + environ
        result = login.send_password(ALICE[1], timeout=30)
    # the password was read and sent: nothing listens there
    assert result.code == 5, result.stderr
    assert "plaintext" not in result.stderr  # nothing to keep: no word about storing it
    assert ALICE[1] not in result.stdout + result.stderr
