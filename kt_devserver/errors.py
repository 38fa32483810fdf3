"""The API's error object, `{"error": {"code": "auth.…", "message": "…", …extra}}`, as an exception.

Handlers raise `ApiError`; the middleware in app.py turns it, and aiohttp's own HTTP errors,
into JSON.
Messages are one line for a person and never carry a secret.

A refusal of the credential carries a challenge (`bearer_challenge`, `dpop_challenge`); the
middleware puts the API's protected resource metadata URL first in it when it writes the reply
(RFC 9728 §5.1: `resource_metadata="<base>/.well-known/oauth-protected-resource"`, `response`).
"""

from __future__ import annotations

from aiohttp import web

from kt_login.www_authenticate import challenge, parse

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extra: dict[str, JsonValue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, JsonValue]:
        error: dict[str, JsonValue] = {"code": self.code, "message": self.message}
        error.update(self.extra)
        return {"error": error}

    def response(self, *, resource_metadata: str | None = None) -> web.Response:
        """The JSON reply; `resource_metadata` (the API's RFC 9728 metadata URL, which only the
        request knows) named first in its challenge, if it has one."""
        headers = dict(self.headers)
        if resource_metadata is not None and "WWW-Authenticate" in headers:
            headers["WWW-Authenticate"] = with_resource_metadata(
                headers["WWW-Authenticate"], resource_metadata
            )
        return web.json_response(self.body(), status=self.status, headers=headers)


def with_resource_metadata(header: str, url: str) -> str:
    """Each challenge of `header` (written by `_challenge`) with RFC 9728 §5.1's
    `resource_metadata` first, read and rewritten by kt's own grammar."""
    rewritten = []
    for found in parse(header):
        params = {k: v for k, v in found.params.items() if k != "resource_metadata"}
        scheme = _SCHEMES.get(found.scheme, found.scheme)
        rewritten.append(challenge(scheme, {"resource_metadata": url, **params}))
    return ", ".join(rewritten)


# The schemes the API challenges with, as written (the parser lower-cases them).
_SCHEMES = {"bearer": "Bearer", "dpop": "DPoP"}


def invalid_request(message: str) -> ApiError:
    return ApiError(400, "auth.invalid_request", message)


def bearer_challenge(**params: str | int | None) -> dict[str, str]:
    """The `WWW-Authenticate: Bearer …` header of an API refusal (RFC 6750 §3, RFC 9470 §3),
    written by the grammar kt reads it with (kt_login.www_authenticate); None values left out.
    Every challenge the API sends is built here, so a parameter every 401 must carry (RFC 9728's
    resource_metadata) is added in one place."""
    return _challenge("Bearer", params)


def dpop_challenge(**params: str | int | None) -> dict[str, str]:
    """The `WWW-Authenticate: DPoP …` header of a refused DPoP proof, or of a DPoP-bound token
    sent without one (RFC 9449 §7.1), built as bearer_challenge builds its own."""
    return _challenge("DPoP", params)


def _challenge(scheme: str, params: dict[str, str | int | None]) -> dict[str, str]:
    present = {name: value for name, value in params.items() if value is not None}
    return {"WWW-Authenticate": challenge(scheme, present)}


def unauthenticated(
    message: str = "Sign in first: no valid bearer credential.", *, sent: bool = False
) -> ApiError:
    """401 auth.unauthenticated; `sent`: a credential came, and is not one this API accepts
    (RFC 6750 §3.1 invalid_token; none when no credential was sent)."""
    return ApiError(
        401,
        "auth.unauthenticated",
        message,
        headers=bearer_challenge(realm="keeptrusts", error="invalid_token" if sent else None),
    )


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError(404, "auth.not_found", message)


def insufficient_scope(required: str, message: str | None = None) -> ApiError:
    """403 for a credential without `required` (space-separated scopes): the JSON body's
    `required_scope`, and RFC 6750 §3.1's `error="insufficient_scope", scope="…"` beside it."""
    message = message or f"This credential lacks the scope {required!r}."
    return ApiError(
        403,
        "auth.insufficient_scope",
        message,
        extra={"required_scope": required},
        headers=bearer_challenge(
            error="insufficient_scope", error_description=message, scope=required
        ),
    )


def mfa_required(
    status: int, message: str, *, mfa_token: str | None = None, expires_in: int | None = None
) -> ApiError:
    extra: dict[str, JsonValue] = {}
    if mfa_token is not None:
        extra["mfa_token"] = mfa_token
        extra["expires_in"] = expires_in
    return ApiError(status, "auth.mfa_required", message, extra=extra)


def insufficient_user_authentication(
    message: str,
    *,
    acr_values: str,
    max_age: int | None,
    mfa_token: str | None = None,
    expires_in: int | None = None,
) -> ApiError:
    """RFC 9470 §3: 401 with `error="insufficient_user_authentication"`, the `acr_values` the
    operation needs and, when it wants a recent sign-in, `max_age` — beside the JSON body
    `auth.mfa_required` (with the mfa_token for the code prompt), so older clients keep working."""
    error = mfa_required(401, message, mfa_token=mfa_token, expires_in=expires_in)
    error.headers.update(
        bearer_challenge(
            error="insufficient_user_authentication",
            error_description=message,
            acr_values=acr_values,
            max_age=max_age,
        )
    )
    return error


# aiohttp's own errors (routing, body size) mapped onto the contract's codes.
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("auth.invalid_request", "The request is malformed."),
    404: ("auth.not_found", "No such endpoint."),
    405: ("auth.method_not_allowed", "This method is not allowed on this endpoint."),
    413: ("auth.payload_too_large", "The request body is larger than 64 KiB."),
    415: ("auth.unsupported_media_type", "The request body must be application/json."),
}


def from_http_exception(exc: web.HTTPException) -> ApiError:
    status = exc.status
    if status in STATUS_CODES:
        code, message = STATUS_CODES[status]
    elif status >= 500:
        code, message = "auth.internal", "The server failed to handle the request."
    else:
        code, message = "auth.invalid_request", "The request was refused."
    headers = {}
    if "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    return ApiError(status, code, message, headers=headers)


def internal() -> ApiError:
    return ApiError(500, "auth.internal", "The server failed to handle the request.")
