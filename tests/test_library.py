"""kt_login as a Python library: a pinned public surface, a light import, and the README's
"Use from Python" example run as written against a real kt-devserver."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import kt_login
from tests.kt_process import ALICE, REPO, base_env, password_login

PUBLIC = [
    "ApiError",
    "BearerAuth",
    "ConfigError",
    "KtError",
    "MfaRequired",
    "NetworkError",
    "NotLoggedIn",
    "OAuthError",
    "ServerError",
    "Session",
    "StoreError",
    "StoreUnavailable",
    "UsageError",
    "ValidationFailed",
    "__version__",
    "session_auth",
]


def test_exported_members_are_exactly_the_public_names():
    assert kt_login.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(kt_login, name) is not None, name
    public_attrs = {n for n in dir(kt_login) if not n.startswith("_")} - {
        m for m in dir(kt_login) if isinstance(getattr(kt_login, m, None), type(sys))
    }
    assert public_attrs <= set(PUBLIC)


def test_errors_are_one_family():
    for name in PUBLIC:
        obj = getattr(kt_login, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, kt_login.KtError), name


def test_importing_the_library_loads_no_http_or_keyring():
    code = "import sys, kt_login; print('\\n'.join(sys.modules))"
    mods = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "kt_login" in mods
    assert not {"httpx2", "keyring", "aiohttp", "authlib", "jinja2"} & set(mods)


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's 'Use from Python' has no python example"
    return match.group(1)


def test_readme_example_refreshes_and_calls_the_api(tmp_path, devserver_factory):
    # 30 s access tokens sit inside the refresh window at once: the library must refresh before
    # its first request, save the rotated tokens, and still answer as alice.
    server = devserver_factory("--access-token-ttl", "30")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    signed = password_login(env, ALICE, "--insecure-storage")
    assert signed.code == 0, signed.stderr
    session_file = Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "credentials" / "default.json"
    before = json.loads(session_file.read_text())

    script = tmp_path / "example.py"
    script.write_text(readme_example())
    run = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "alice@example.com" in run.stdout

    after = json.loads(session_file.read_text())
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # rotated and saved
    assert before["access_token"] not in run.stdout + run.stderr


def test_session_auth_without_a_session_is_not_logged_in(tmp_path):
    code = (
        "import kt_login\n"
        "try:\n"
        "    kt_login.session_auth()\n"
        "except kt_login.NotLoggedIn as exc:\n"
        "    print('not logged in:', exc.hint)\n"
    )
    env = base_env(tmp_path, KEEPTRUSTS_API_URL="http://127.0.0.1:9")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "not logged in: run: kt auth login" in run.stdout


def test_session_auth_uses_the_environment_token_for_its_origin_only(tmp_path):
    code = (
        "import httpx2, kt_login\n"
        "with kt_login.session_auth() as auth, httpx2.Client() as http:\n"
        "    print(auth.api_url)\n"
        "    try:\n"
        "        http.get('http://127.0.0.2:9/', auth=auth)\n"
        "    except kt_login.ValidationFailed as exc:\n"
        "        print('refused:', exc.message)\n"
    )
    env = base_env(
        tmp_path,
        KEEPTRUSTS_API_URL="http://127.0.0.1:9",
        KEEPTRUSTS_API_TOKEN="kt_env_token_for_test",
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "http://127.0.0.1:9"
    assert lines[1].startswith("refused: refusing to send the API token to http://127.0.0.2:9")
    assert "kt_env_token_for_test" not in run.stdout
