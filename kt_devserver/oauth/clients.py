"""Registered OAuth clients (authlib's ClientMixin interface), with RFC 8252 loopback matching.

`kt-cli` is a public native client. Its registered redirect URIs are `http://127.0.0.1/callback`
and `http://[::1]/callback`; a request may add any port (RFC 8252 §7.3) and nothing else: no
other host (`localhost` included), path, query, fragment, userinfo or scheme. It may also use
the server's own "copy this code" page, `{issuer}/oauth/remote-callback`, exactly (`accepts`).

`kt-cli-localhost` is the same client as registered with a provider that refuses IP literals:
its one redirect URI is `http://localhost/callback` (RFC 8252 §8.3: NOT RECOMMENDED, but what
such providers accept), with any port, and the IP literals are refused (issue 13 item 2:
`kt auth login --browser --redirect-host localhost --client-id kt-cli-localhost`).

`kt-cli-par` is `kt-cli` registered with `require_par`: its authorization requests must be pushed
(RFC 9126 §4, oauth/pushed.py), so it signs in only where the server serves `--par`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE  # type: ignore[import-untyped]

from kt_devserver.oauth.metadata import REMOTE_CALLBACK_PATH, TOKEN_EXCHANGE
from kt_devserver.oauth.scopes import OIDC_SCOPES

KT_CLI = "kt-cli"
KT_CLI_LOCALHOST = "kt-cli-localhost"
KT_CLI_PAR = "kt-cli-par"

_LOOPBACK_REDIRECT = re.compile(
    r"http://(?P<host>127\.0\.0\.1|\[::1\]|localhost)(?::(?P<port>[1-9][0-9]{0,4}))?(?P<path>/[^?#]*)"
)


def loopback_without_port(uri: str) -> str | None:
    """`uri` with its port removed if it is a plain loopback http URI, else None."""
    match = _LOOPBACK_REDIRECT.fullmatch(uri)
    if match is None:
        return None
    port = match.group("port")
    if port is not None and int(port) > 65535:
        return None
    return f"http://{match.group('host')}{match.group('path')}"


@dataclass(frozen=True)
class Client:
    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    response_types: tuple[str, ...] = ("code",)
    token_endpoint_auth_method: str = "none"  # noqa: S105 - public client
    # May use the server's own page as redirect URI, for a browser that cannot reach the client.
    remote_page: bool = False
    # Its authorization requests must be pushed first (RFC 9126 §4; oauth/pushed.py).
    require_par: bool = False

    def accepts(self, redirect_uri: str, issuer: str) -> bool:
        """A registered redirect URI (`check_redirect_uri`), or this server's remote page."""
        if self.remote_page and redirect_uri == issuer + REMOTE_CALLBACK_PATH:
            return True
        return self.check_redirect_uri(redirect_uri)

    # --- authlib ClientMixin -----------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # The port of a loopback redirect varies per login, so there is no default.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return "openid"
        allowed = set(self.scopes)
        return " ".join(s for s in dict.fromkeys(scope.split()) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if redirect_uri in self.redirect_uris:
            return True
        return loopback_without_port(redirect_uri) in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # public clients only

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


CLIENTS: dict[str, Client] = {
    KT_CLI: Client(
        client_id=KT_CLI,
        client_name="Keeptrusts CLI (kt)",
        redirect_uris=("http://127.0.0.1/callback", "http://[::1]/callback"),
        grant_types=(
            "authorization_code",
            "refresh_token",
            DEVICE_CODE_GRANT_TYPE,
            TOKEN_EXCHANGE,
        ),
        scopes=OIDC_SCOPES,
        remote_page=True,
    ),
    KT_CLI_LOCALHOST: Client(
        client_id=KT_CLI_LOCALHOST,
        client_name="Keeptrusts CLI (kt), localhost redirect",
        redirect_uris=("http://localhost/callback",),
        grant_types=(
            "authorization_code",
            "refresh_token",
            DEVICE_CODE_GRANT_TYPE,
            TOKEN_EXCHANGE,
        ),
        scopes=OIDC_SCOPES,
    ),
    KT_CLI_PAR: Client(
        client_id=KT_CLI_PAR,
        client_name="Keeptrusts CLI (kt), pushed requests only",
        redirect_uris=("http://127.0.0.1/callback", "http://[::1]/callback"),
        grant_types=("authorization_code", "refresh_token", DEVICE_CODE_GRANT_TYPE),
        scopes=OIDC_SCOPES,
        remote_page=True,
        require_par=True,
    ),
}


def find(client_id: str | None) -> Client | None:
    return None if client_id is None else CLIENTS.get(client_id)
