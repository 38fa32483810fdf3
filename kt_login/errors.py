"""One exception family for kt-login; each error knows its exit code.

    KtError                      exit 1   unexpected / generic
    ├── UsageError               exit 2   bad flags or input the user can fix
    ├── ConfigError              exit 2   unreadable or invalid config file / directory
    ├── StoreUnavailable         exit 1   no usable keyring (and no opt-in to file storage)
    ├── StoreError               exit 1   the credential store failed while reading or writing
    ├── NotLoggedIn              exit 3   no session, session revoked, refresh refused
    ├── MfaRequired              exit 4   the server wants a second factor
    ├── NetworkError             exit 5   server unreachable, timeout, TLS failure
    ├── ServerError              exit 6   5xx or a reply that breaks the contract
    ├── ApiError                 exit by status: 401 → 3, 403 → 1, 4xx → 1
    ├── OAuthError               exit 3 (6 for server_error / temporarily_unavailable)
    └── ValidationFailed         exit 7   bad token, issuer, state, transport rule

Messages are one line, say what failed and what to do next, and never carry a secret.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_LOGGED_IN = 3
EXIT_MFA_REQUIRED = 4
EXIT_NETWORK = 5
EXIT_SERVER = 6
EXIT_VALIDATION = 7
EXIT_INTERRUPTED = 130


class KtError(Exception):
    """Base of every error kt-login raises on purpose."""

    exit_code = EXIT_ERROR
    code = "kt.error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "exit_code": self.exit_code,
        }
        if self.hint:
            body["hint"] = self.hint
        return {"error": body}


class UsageError(KtError):
    exit_code = EXIT_USAGE
    code = "kt.usage"


class ConfigError(KtError):
    exit_code = EXIT_USAGE
    code = "kt.config"


class StoreUnavailable(KtError):
    code = "kt.store_unavailable"


class StoreError(KtError):
    code = "kt.store_error"


class NotLoggedIn(KtError):
    exit_code = EXIT_NOT_LOGGED_IN
    code = "auth.login_required"


class MfaRequired(KtError):
    exit_code = EXIT_MFA_REQUIRED
    code = "auth.mfa_required"

    def __init__(self, message: str, *, mfa_token: str | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        # The mfa_token is short-lived and single-purpose; it is printed on purpose, as the
        # documented `kt auth mfa challenge --token …` command needs it.
        self.mfa_token = mfa_token

    def as_json(self) -> dict[str, object]:
        body = super().as_json()
        if self.mfa_token:
            err = body["error"]
            assert isinstance(err, dict)
            err["mfa_token"] = self.mfa_token
        return body


class NetworkError(KtError):
    exit_code = EXIT_NETWORK
    code = "kt.network"


class ServerError(KtError):
    exit_code = EXIT_SERVER
    code = "kt.server"


class ApiError(KtError):
    """A 4xx reply from the API that is not one of the cases above."""

    def __init__(self, message: str, *, code: str, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.status = status
        self.exit_code = EXIT_NOT_LOGGED_IN if status == 401 else EXIT_ERROR


class ValidationFailed(KtError):
    exit_code = EXIT_VALIDATION
    code = "kt.validation"


# Fixed texts for the RFC 6749 §4.1.2.1 / §5.2 codes (SECURITY.md EH-02); others get a generic one.
_OAUTH_MESSAGES = {
    "access_denied": "the sign-in was denied or cancelled",
    "login_required": "the identity provider requires you to sign in again",
    "consent_required": "the identity provider needs your consent",
    "interaction_required": "the identity provider needs you to interact with it",
    "invalid_scope": "the identity provider refused the requested scopes",
    "invalid_grant": "the identity provider refused the grant (expired, used or revoked)",
    "invalid_client": "the identity provider does not know this client",
    "unauthorized_client": "this client may not use this sign-in method",
    "server_error": "the identity provider failed",
    "temporarily_unavailable": "the identity provider is temporarily unavailable",
    "expired_token": "the code expired before the sign-in was approved",
}


class OAuthError(KtError):
    """An OAuth error answer (authorization response or token endpoint)."""

    def __init__(self, error: str, *, hint: str | None = None) -> None:
        safe = "".join(c for c in error if c.isalnum() or c in "_-.")[:64] or "unknown"
        message = _OAUTH_MESSAGES.get(safe, f"the identity provider answered with error {safe!r}")
        super().__init__(message, hint=hint)
        self.error = safe
        self.code = f"oauth.{safe}"
        if safe in ("server_error", "temporarily_unavailable"):
            self.exit_code = EXIT_SERVER
        else:
            self.exit_code = EXIT_NOT_LOGGED_IN
