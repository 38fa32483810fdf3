"""The peer of `kt auth login --browser` in bench/floor: httpx-auth's Authorization Code + PKCE
against the same kt-devserver, then the same first API call kt makes (GET /v1/auth/whoami).

Run by the peers' own interpreter (bench/floor installs httpx-auth there, with httpx):

    PEER_PYTHON bench/_httpx_auth_login.py ISSUER API_URL PORT TOKEN_CACHE_FILE

Its browser is the BROWSER variable (Python's webbrowser honours it), as kt's is; the token is
kept in a JSON file, as kt keeps its session in a file under --insecure-storage.
"""

import sys

import httpx
import httpx_auth

issuer, api_url, port, cache = sys.argv[1:5]
httpx_auth.OAuth2.token_cache = httpx_auth.JsonTokenFileCache(cache)
auth = httpx_auth.OAuth2AuthorizationCodePKCE(
    f"{issuer}/oauth/authorize",
    f"{issuer}/oauth/token",
    client_id="kt-cli",
    scope="openid profile email offline_access",
    redirect_uri_domain="127.0.0.1",
    redirect_uri_endpoint="callback",
    redirect_uri_port=int(port),
    timeout=60,
)
with httpx.Client() as client:
    client.get(f"{api_url}/v1/auth/whoami", auth=auth).raise_for_status()
