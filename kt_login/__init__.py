"""kt-login: sign people and machines in to the Keeptrusts API from a terminal, and the same
machinery as a library:

    import httpx2, kt_login

    with kt_login.session_auth() as auth, httpx2.Client(base_url=auth.api_url) as http:
        http.get("/v1/auth/whoami", auth=auth)  # refreshed when needed, for its origin only

Names that need httpx2 (and Session) load on first use, so `import kt_login` (and `kt --help`)
stays light.
"""

import importlib as _importlib
import typing as _typing

from ._version import __version__
from .errors import (
    ApiError,
    ConfigError,
    KtError,
    MfaRequired,
    NetworkError,
    NotLoggedIn,
    OAuthError,
    ServerError,
    StoreError,
    StoreUnavailable,
    UsageError,
    ValidationFailed,
)

if _typing.TYPE_CHECKING:
    from .api import BearerAuth
    from .authenticate import session_auth
    from .session import Session

__all__ = [
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

_LAZY = {
    "BearerAuth": "kt_login.api",
    "Session": "kt_login.session",
    "session_auth": "kt_login.authenticate",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kt_login' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value
