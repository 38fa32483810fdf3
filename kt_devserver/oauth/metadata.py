"""The authorization server's metadata (RFC 8414; the same document serves OIDC Discovery)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE  # type: ignore[import-untyped]

from kt_devserver import dpop
from kt_devserver.oauth.id_tokens import ALGORITHM
from kt_devserver.oauth.scopes import ACR_VALUES, OIDC_SCOPES

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
REVOKE_PATH = "/oauth/revoke"
JWKS_PATH = "/oauth/jwks"
USERINFO_PATH = "/oauth/userinfo"
DEVICE_AUTHORIZATION_PATH = "/oauth/device_authorization"
PAR_PATH = "/oauth/par"  # RFC 9126, served with --par (oauth/par.py)
# The "copy this code" page (issue 13 item 1): a redirect URI on the server itself, for a CLI
# whose loopback the browser cannot reach; announced under a vendor name (RFC 8414 §2 allows
# additional metadata), as no standard one exists.
REMOTE_CALLBACK_PATH = "/oauth/remote-callback"
REMOTE_REDIRECT_METADATA = "keeptrusts_remote_redirect_uri"
# RFC 8693 (oauth/grants/token_exchange.py): CI sign-in with a trusted issuer's JWT, delegation.
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN


def metadata(
    issuer: str, *, device_flow: bool = True, par: bool = False, require_par: bool = False
) -> dict[str, Any]:
    """The document; without `device_flow`, nothing about the device grant; with `par`, the
    RFC 9126 endpoint, and `require_par` when only pushed requests are accepted."""
    doc = _metadata(issuer)
    if not device_flow:
        del doc["device_authorization_endpoint"]
        doc["grant_types_supported"].remove(DEVICE_CODE_GRANT_TYPE)
    if par:
        doc["pushed_authorization_request_endpoint"] = issuer + PAR_PATH
        doc["require_pushed_authorization_requests"] = require_par
    return doc


def _metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZE_PATH,
        "token_endpoint": issuer + TOKEN_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        "userinfo_endpoint": issuer + USERINFO_PATH,
        "revocation_endpoint": issuer + REVOKE_PATH,
        "device_authorization_endpoint": issuer + DEVICE_AUTHORIZATION_PATH,
        "scopes_supported": list(OIDC_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            DEVICE_CODE_GRANT_TYPE,
            TOKEN_EXCHANGE,
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "acr_values_supported": list(ACR_VALUES),
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "azp",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "at_hash",
            "name",
            "email",
            "email_verified",
        ],  # fmt: skip
        "authorization_response_iss_parameter_supported": True,
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),  # RFC 9449 §5.1
        REMOTE_REDIRECT_METADATA: issuer + REMOTE_CALLBACK_PATH,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
    }
