"""docs/automation.md is true: every `sh` block runs, in order, in one working directory, with
the real `kt` on PATH against a kt-devserver (alice signed in as the person who creates the CI
token; a trust rule for a stub CI issuer that answers GitHub Actions' identity token request, as
ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN name it); its exit-code table is the README's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx2

from kt_devserver import demo
from tests.adversarial.hostile_as import ACTIONS_TOKEN_PATH, HostileAS
from tests.fixtures.oauth_client import form_of
from tests.kt_process import ALICE, REPO, base_env, password_login

DOC = REPO / "docs" / "automation.md"


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)


def person_approves(url: str, verification_uri_complete: str) -> None:
    """alice, on her phone: open the link, confirm the code, sign in, approve."""
    with httpx2.Client(base_url=url, timeout=10, follow_redirects=True) as browser:
        page = browser.get(verification_uri_complete)
        for fields in (
            {"decision": "continue"},
            {"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD},
            {"decision": "approve"},
        ):
            form = form_of(page)
            page = browser.post(form.action, data={**form.fields, **fields})
        assert page.status_code == 200 and 'data-result="approved"' in page.text, page.text


def exit_code_rows(text: str) -> list[str]:
    section = text.split("## Exit codes", 1)[1]
    return [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]


def test_every_command_in_the_automation_recipes_runs(tmp_path: Path, devserver):
    github = HostileAS().start()  # the CI's OIDC issuer, trusted for acme/app's branches
    try:
        github.actions_request_token = "gha-request-token"  # noqa: S105 - test value
        devserver.trust(github.issuer)
        _run_recipes(tmp_path, devserver, github)
    finally:
        github.stop()


def _run_recipes(tmp_path: Path, devserver, github: HostileAS) -> None:
    env = base_env(
        tmp_path,
        KEEPTRUSTS_API_URL=devserver.url,
        ACTIONS_ID_TOKEN_REQUEST_URL=github.issuer + ACTIONS_TOKEN_PATH + "?api-version=2.0",
        ACTIONS_ID_TOKEN_REQUEST_TOKEN="gha-request-token",
    )
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the `kt` of this checkout
    assert password_login(env, ALICE, "--insecure-storage").code == 0
    work = tmp_path / "work"
    work.mkdir()
    blocks = sh_blocks()
    assert len(blocks) >= 6
    outputs = []
    for block in blocks:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, f"{block}\n--- stderr:\n{run.stderr}"
        outputs.append(run.stdout)
        if "--device --start" in block:  # the person approves on their phone
            started = json.loads((work / "start.json").read_text())
            person_approves(devserver.url, started["verification_uri_complete"])

    token = (work / "ci-token.txt").read_text().strip()
    assert token.startswith("kt_live_")
    ci = outputs[1]  # the CI job: whoami --json, then status
    whoami, _ = json.JSONDecoder().raw_decode(ci)
    assert whoami["auth_method"] == "api_token" and whoami["token"]["name"] == "ci-deploy"
    assert "KEEPTRUSTS_API_TOKEN" in ci
    (federated,) = [
        out for block, out in zip(blocks, outputs, strict=True) if "--federated" in block
    ]
    assert json.loads(federated)["auth_method"] == "federated"
    assert "gha-request-token" not in "".join(outputs)
    (delegated,) = [out for block, out in zip(blocks, outputs, strict=True) if "--actor" in block]
    assert "as agent deploy-bot on behalf of alice@example.com" in delegated
    printed = json.loads((work / "token.json").read_text())
    assert printed["access_token"] and printed["expires_in"] >= 600
    assert printed["credential_source"] == "file (plaintext)"
    assert any('"profile": "agent-a"' in out for out in outputs)
    (status,) = [out for block, out in zip(blocks, outputs, strict=True) if "signed in" in block]
    assert status.strip() == "signed in"
    assert "Logged in to" in outputs[-1] and "alice@example.com" in outputs[-1]  # agent-b
    for secret in (token, printed["access_token"]):
        assert not any(secret in out for out in outputs)  # only where the recipe saved it


def test_the_exit_code_table_is_the_readmes():
    rows = exit_code_rows(DOC.read_text())
    assert rows and rows == exit_code_rows((REPO / "README.md").read_text())
