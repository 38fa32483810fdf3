"""The transport rule (https, plain http only on loopback) is `config.check_transport`; the API
URL, the issuer, the provider's endpoints and the URLs kt opens all go through it and agree."""

from __future__ import annotations

import json

import pytest

from kt_login.config import check_transport, normalize_api_url
from kt_login.errors import KtError, UsageError, ValidationFailed
from kt_login.flows.authcode import safe_browser_url
from kt_login.flows.discovery import check_issuer, parse_metadata

ISSUER = "https://as.example"


def metadata(**overrides: str) -> bytes:
    doc = {
        "issuer": ISSUER,
        "authorization_endpoint": ISSUER + "/authorize",
        "token_endpoint": ISSUER + "/token",
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


ALLOWED = [
    "https://as.example",
    "https://as.example:8443/tenant",
    "http://127.0.0.1:8765",
    "http://[::1]:8765",
    "http://localhost:8765",
    "http://127.5.6.7",
]
REFUSED = [
    "http://as.example",
    "http://10.0.0.5",
    "http://127.0.0.1.evil.example",
    "http://localhost.evil.example",
    "ftp://as.example",
    "javascript:alert(1)",
    "https://user:pw@as.example",
    "https://as.example@evil.example",
    "http://127.0.0.1\\@evil.example",
    "https://as.example /x",
    "https://as.\x1bexample",
    "https://\u00e9vil.example",
    "https://[::1",
    "https://as.example:99999",
    "https:///path",
    "",
]


@pytest.mark.parametrize("url", ALLOWED)
def test_allowed_everywhere(url):
    assert check_transport(url, "the URL").hostname
    assert normalize_api_url(url)
    assert check_issuer(url) == url
    assert parse_metadata(metadata(token_endpoint=url + "/token"), ISSUER).token_endpoint
    assert safe_browser_url(url + "/authorize", url)


@pytest.mark.parametrize("url", REFUSED)
def test_refused_everywhere(url):
    with pytest.raises(UsageError):
        check_transport(url, "the URL")
    with pytest.raises(UsageError):
        normalize_api_url(url)
    with pytest.raises(UsageError):
        check_issuer(url)
    with pytest.raises(ValidationFailed):
        parse_metadata(metadata(token_endpoint=url), ISSUER)
    with pytest.raises(ValidationFailed):
        safe_browser_url(url, ISSUER)


def test_the_error_names_the_url_and_the_rule():
    with pytest.raises(ValidationFailed) as info:
        check_transport("http://as.example/token", "the token endpoint", error=ValidationFailed)
    assert info.value.message == (
        "the token endpoint must be an https URL (http only on loopback hosts such as "
        "127.0.0.1); refusing plain http for as.example"
    )
    assert isinstance(info.value, KtError) and info.value.exit_code == 7
