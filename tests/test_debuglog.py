"""The `--debug` redaction (kt_login/debuglog.py, SECURITY.md HY-02) on credentials that no other
pattern catches: opaque foreign bearer tokens, Basic credentials and DPoP, in every shape a log
line carries them (issue 11 case 15)."""

from __future__ import annotations

import base64
import logging

import pytest

from kt_login.debuglog import RedactingFilter, redact

OPAQUE = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"  # no kt prefix, not a JWT
BASIC = base64.b64encode(b"client:s3cr3t-pw").decode()
DPOP_PROOF = "ZHBvcC1wcm9vZg.b3BhcXVl.c2ln"  # a proof that does not start like a JWT header


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"Authorization: Bearer {OPAQUE}", OPAQUE),
        (f"authorization: bearer {OPAQUE}", OPAQUE),
        (f"[(b'authorization', b'Bearer {OPAQUE}')]", OPAQUE),
        (f"Authorization: Basic {BASIC}", BASIC),
        (f"(b'Authorization', b'Basic {BASIC}')", BASIC),
        (f"Proxy-Authorization: Basic {BASIC}", BASIC),
        (f"(b'Proxy-Authorization', b'Basic {BASIC}')", BASIC),
        (f"Authorization: DPoP {OPAQUE}", OPAQUE),
        (f"(b'authorization', b'DPoP {OPAQUE}')", OPAQUE),
        (f"(b'DPoP', b'{DPOP_PROOF}')", DPOP_PROOF),
        (f"[(b'dpop', b'{DPOP_PROOF}'), (b'authorization', b'DPoP {OPAQUE}')]", DPOP_PROOF),
        (f"[(b'dpop', b'{DPOP_PROOF}'), (b'authorization', b'DPoP {OPAQUE}')]", OPAQUE),
        (f"(b'WWW-Authenticate', b'Bearer {OPAQUE}')", OPAQUE),
    ],
)
def test_foreign_credentials_are_redacted(line, secret):
    assert secret not in redact(line)
    assert "<redacted" in redact(line)


@pytest.mark.parametrize(
    "line",
    [
        "GET /oauth/authorize?client_id=kt-cli&request_uri=urn:ietf:params:oauth:request_uri:Q3x9",
        '{"request_uri": "urn:ietf:params:oauth:request_uri:Q3x9", "expires_in": 60}',
        "request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3AQ3x9&client_id=kt-cli",
    ],
)
def test_a_pushed_request_s_request_uri_is_redacted(line):
    """RFC 9126: for its minute, the request_uri starts this sign-in in any browser."""
    assert "Q3x9" not in redact(line)
    assert "kt-cli" in redact(line) or "expires_in" in redact(line)


def test_the_filter_scrubs_format_arguments_too():
    record = logging.LogRecord(
        "httpcore", logging.DEBUG, __file__, 1, "headers=%r", ([(b"authorization", OPAQUE)],), None
    )
    RedactingFilter().filter(record)
    assert OPAQUE not in record.getMessage()
