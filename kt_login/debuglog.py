"""`--debug` / KT_DEBUG=1: library logging (httpx2, httpcore, kt) on stderr, redacted.

Every record is formatted first and then scrubbed, so a secret cannot slip through a format
argument: bearer credentials, kt's token prefixes, JWTs and the OAuth/OIDC parameters that carry
secrets in a query or form (SECURITY.md HY-02).
"""

from __future__ import annotations

import logging
import re
import sys

_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|basic|dpop)\s+[^\s\"',]+"), r"\1 <redacted>"),
    (
        re.compile(
            r"(?i)\b(code|code_verifier|state|nonce|refresh_token|access_token|id_token|"
            r"device_code|user_code|password|client_secret|mfa_token|token|secret|request_uri)"
            r"(\"?\s*[=:]\s*\"?)[^&\s\"',}]+"
        ),
        r"\1\2<redacted>",
    ),
    (re.compile(r"(?i)(b?'(?:set-)?cookie',\s*b?')[^']*"), r"\1<redacted>"),
    # A credential header as httpcore logs it, whatever its value looks like.
    (
        re.compile(r"(?i)(b?'(?:proxy-)?(?:authorization|dpop)',\s*b?')[^']*"),
        r"\1<redacted>",
    ),
    (re.compile(r"\bkt(?:_live|[amrd])_[A-Za-z0-9_\-]+"), "<redacted-token>"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "<redacted-jwt>"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def enable() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
