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
    │   └── InsufficientScope    exit 1   the credential lacks a scope (RFC 6750 insufficient_scope)
    ├── OAuthError               exit 3 (6 for server_error / temporarily_unavailable)
    ├── RevocationFailed         a session not ended where it was issued: exit 1 when the
    │                            server offers no revocation, 6 when it refused, 5 unreachable
    └── ValidationFailed         exit 7   bad token, issuer, state, transport rule
        └── SignInLinkReused     exit 7   the one-time browser sign-in link was opened twice

Messages are one line, say what failed and what to do next, and never carry a secret.
"""

from __future__ import annotations

from .text import clean

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
    """The server wants a second factor, or a more recent or stronger sign-in (RFC 9470
    insufficient_user_authentication: `acr_values` and `max_age` as its WWW-Authenticate said).
    `step_up` is how to continue without a person at the terminal (a two-step sign-in)."""

    exit_code = EXIT_MFA_REQUIRED
    code = "auth.mfa_required"

    def __init__(
        self,
        message: str,
        *,
        mfa_token: str | None,
        hint: str | None = None,
        acr_values: str | None = None,
        max_age: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        # The mfa_token is short-lived and single-purpose; it is printed on purpose, as the
        # documented `kt auth mfa challenge --token …` command needs it.
        self.mfa_token = mfa_token
        self.acr_values = acr_values
        self.max_age = max_age
        self.step_up: dict[str, object] | None = None

    @property
    def insufficient_user_authentication(self) -> bool:
        """Whether the server said what sign-in it needs (RFC 9470), not only that MFA is due."""
        return self.acr_values is not None or self.max_age is not None

    def as_json(self) -> dict[str, object]:
        body = super().as_json()
        err = body["error"]
        assert isinstance(err, dict)
        if self.mfa_token:
            err["mfa_token"] = self.mfa_token
        if self.acr_values is not None:
            err["acr_values"] = self.acr_values
        if self.max_age is not None:
            err["max_age"] = self.max_age
        if self.step_up is not None:
            err["step_up"] = self.step_up
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


class InsufficientScope(ApiError):
    """403 insufficient_scope (RFC 6750 §3.1): the credential lacks `scope` (space-separated),
    as the reply's WWW-Authenticate says."""

    def __init__(self, message: str, *, code: str, scope: str, hint: str | None = None) -> None:
        super().__init__(message, code=code, status=403, hint=hint)
        self.scope = scope

    def as_json(self) -> dict[str, object]:
        body = super().as_json()
        err = body["error"]
        assert isinstance(err, dict)
        err["required_scope"] = self.scope
        return body


class ValidationFailed(KtError):
    exit_code = EXIT_VALIDATION
    code = "kt.validation"


class DeviceFlowUnavailable(ValidationFailed):
    """The provider offers no device grant, or refuses it to this client (an organisation
    turned it off against device-code phishing): another way in is needed (issue 13 item 4)."""

    code = "kt.device_flow_unavailable"


class SignInLinkReused(ValidationFailed):
    """The browser sign-in's one-time link was fetched a second time: someone else may hold the
    authorization request, so the sign-in was stopped (issue 11 case 1)."""

    code = "kt.sign_in_link_reused"


# Fixed texts for the RFC 6749 §4.1.2.1 / §5.2 codes (SECURITY.md EH-02), by what the person needs
# to know; codes beside the RFC that mean the same get the same text (issue 10, case 11).
_DENIED = "the sign-in was denied or cancelled at the identity provider"
_OAUTH_MESSAGES = {
    "access_denied": _DENIED,
    "consent_required": _DENIED + " (consent was not given)",
    "login_required": "the identity provider requires you to sign in again",
    "interaction_required": "the identity provider needs you to interact with it",
    "invalid_scope": "the identity provider refused the requested scopes",
    "invalid_grant": "the identity provider refused the grant (expired, used or revoked)",
    "invalid_client": "the identity provider does not know this client",
    "unauthorized_client": "this client may not use this sign-in method",
    "server_error": "the identity provider failed",
    "temporarily_unavailable": "the identity provider is temporarily unavailable",
    "expired_token": "the code expired before the sign-in was approved",
}
MAX_DESCRIPTION = 120


class OAuthError(KtError):
    """An OAuth error answer (authorization response or token endpoint).

    The message says what it means for the person (`meaning`: the fixed text of the code, or
    what the caller knows from the endpoint) and always what the provider said: its code and
    description, made inert for a terminal and cut short (HY-04, EH-02)."""

    def __init__(
        self,
        error: str,
        *,
        description: object = None,
        hint: str | None = None,
        meaning: str | None = None,
        said: str | None = None,
    ) -> None:
        safe = "".join(c for c in error if c.isalnum() or c in "_-.")[:64] or "unknown"
        self.error = safe
        self.description = _description(description)
        self.meaning = meaning or _OAUTH_MESSAGES.get(safe, "the identity provider refused")
        # What the provider did, when that was not an error code of its own (an HTTP status,
        # a wait that ran out).
        self._said = said
        super().__init__(f"{self.meaning} ({self.provider_said})", hint=hint)
        self.code = f"oauth.{safe}"
        if safe in ("server_error", "temporarily_unavailable"):
            self.exit_code = EXIT_SERVER
        else:
            self.exit_code = EXIT_NOT_LOGGED_IN

    @property
    def provider_said(self) -> str:
        if self._said is not None:
            return self._said
        said = f"the provider said {self.error}"
        return f"{said}: {self.description}" if self.description else said

    def restated(self, meaning: str, *, hint: str | None = None) -> OAuthError:
        """The same answer of the provider, with what it means where the caller received it."""
        return OAuthError(
            self.error,
            description=self.description,
            meaning=meaning,
            hint=hint or self.hint,
            said=self._said,
        )


def _description(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    # Inert for a terminal, one line, and no angle brackets: it cannot read as markup wherever
    # the message ends up (a log viewer, an HTML report).
    text = clean(" ".join(value.split())).replace("<", "").replace(">", "")
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


# Why a session could not be ended on the server that issued it (kt auth logout), by exit code.
NOT_OFFERED = "not_offered"  # the provider lists no revocation endpoint
REFUSED = "refused"  # it answered, and did not revoke (e.g. 401 invalid_client)
UNREACHABLE = "unreachable"  # no answer, or 503: the token may still be valid (RFC 7009 §2.2.1)
_REVOCATION_EXIT = {NOT_OFFERED: EXIT_ERROR, REFUSED: EXIT_SERVER, UNREACHABLE: EXIT_NETWORK}


class RevocationFailed(KtError):
    """A session kt could not end where it was issued, and which of the three cases it was."""

    def __init__(self, reason: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        self.code = f"kt.revocation_{reason}"
        self.exit_code = _REVOCATION_EXIT[reason]
