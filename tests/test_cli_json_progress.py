"""With --json, what a caller needs while a command still runs comes as JSON lines on stderr:
the browser sign-in's URL and listener port (issue 12, defect 6), and warnings (issue 12's
friction list: the plaintext warning). Real `kt` processes against kt-devserver."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlsplit

import httpx2

from kt_devserver import demo
from tests.fixtures.oauth_client import Browser
from tests.kt_process import base_env

TIMEOUT = 60


def test_browser_login_json_prints_the_url_and_port_and_can_be_finished_without_a_browser(
    tmp_path, devserver
):
    # BROWSER names a launcher that fails, as on a machine whose browser is broken.
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=devserver.url, BROWSER="false")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kt_login", "auth", "login", "--browser", "--json",
         "--insecure-storage"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    lines = []
    try:
        while True:
            line = proc.stderr.readline()
            assert line, f"kt ended before printing the sign-in URL: {lines}"
            lines.append(json.loads(line))  # every line on stderr is JSON
            if "sign_in_url" in lines[-1]:
                break
        shown = lines[-1]
        # nothing is kept yet, so nothing said about keeping it (issue 12)
        assert not [line for line in lines if "warning" in line]
        assert shown["browser_opened"] is False
        assert urlsplit(shown["redirect_uri"]).hostname == "127.0.0.1"
        assert shown["port"] == urlsplit(shown["redirect_uri"]).port > 0
        # kt's one-time link on its listener, never the authorization request (issue 11 case 1)
        assert urlsplit(shown["sign_in_url"]).netloc == urlsplit(shown["redirect_uri"]).netloc
        # finish the sign-in elsewhere, with nothing but what that line said
        authorize = httpx2.get(shown["sign_in_url"], timeout=10).headers["location"]
        assert authorize.startswith(devserver.url + "/oauth/authorize?")
        browser = Browser(devserver)
        try:
            page = browser.http.get(authorize)
            page = browser.sign_in(page, demo.ALICE_EMAIL, demo.ALICE_PASSWORD)
            redirect = browser.approve(page)
            assert redirect.status_code in (302, 303)
            done = httpx2.get(redirect.headers["location"], timeout=10)
            assert done.status_code == 200
        finally:
            browser.close()
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert json.loads(out)["logged_in"] is True
    assert all(json.loads(line) for line in err.splitlines())
    # the plaintext warning comes once the sign-in is done, as one JSON line
    (warning,) = [json.loads(line)["warning"] for line in err.splitlines() if "warning" in line]
    assert warning["code"] == "kt.plaintext_storage" and "plaintext" in warning["message"]
