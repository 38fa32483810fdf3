"""What a person sees for device sign-in: code, URL, QR code, warning; --json: one line."""

from __future__ import annotations

import io
import json

from kt_login.cli.app import App, Invocation
from kt_login.cli.login_oauth import show_device_code
from kt_login.flows.device import DeviceAuthorization

AUTH = DeviceAuthorization(
    device_code="dc-CANARY-secret",
    user_code="BCDF-GHJK",
    verification_uri="https://as.example/device",
    verification_uri_complete="https://as.example/device?user_code=BCDF-GHJK",
    expires_in=600,
    interval=5,
)


def shown(*, json_mode=False, show_qr=True) -> str:
    inv = Invocation(App(env={}), profile_flag=None, api_url_flag=None, json_mode=json_mode)
    inv.console.err = io.StringIO()
    inv.console.out = io.StringIO()
    show_device_code(inv, AUTH, show_qr=show_qr)
    assert inv.console.out.getvalue() == ""  # stdout stays for the result
    return inv.console.err.getvalue()


def test_human_display_has_code_url_qr_and_warning():
    text = shown()
    assert "BCDF-GHJK" in text and "https://as.example/device" in text
    assert "█" in text or "▀" in text or "▄" in text  # the QR code, drawn with block characters
    assert "Only enter this code if you started this sign-in yourself" in text
    assert "dc-CANARY" not in text  # DV-04


def test_no_qr():
    text = shown(show_qr=False)
    assert "BCDF-GHJK" in text and "█" not in text and "▀" not in text


def test_json_mode_is_one_line_on_stderr():
    (line,) = shown(json_mode=True).splitlines()
    assert json.loads(line) == {
        "verification_uri": "https://as.example/device",
        "verification_uri_complete": "https://as.example/device?user_code=BCDF-GHJK",
        "user_code": "BCDF-GHJK",
        "expires_in": 600,
    }
