"""CI sign-in with the CI's own identity (`kt auth login --federated`, RFC 8693; issue 15 part 2):
the job's identity JWT (from a file, an environment variable, or GitHub Actions' token request)
is exchanged at the issuer's token endpoint for a short-lived access token, which the server
grants per its trust rules. No long-lived secret is stored in the CI system at all.

The session made of it has no refresh token: when it expires, the job signs in again with a new
identity token. Nothing is printed or logged of the subject token or of GitHub's request token
(which is read from the environment only, never from the command line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx2

from ..authenticate import Authenticator
from ..config import check_transport
from ..errors import OAuthError, UsageError
from ..flows import drive
from ..flows.discovery import discover
from ..flows.token_exchange import JWT, exchange_token, github_actions_token
from ..session import OAUTH, Session
from ..text import clean
from .finish import with_account

FEDERATED = "federated"  # Session.method of a CI sign-in
GITHUB_REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 - a variable's name
MAX_SUBJECT_TOKEN = 16 * 1024


@dataclass(frozen=True, repr=False)
class SubjectToken:
    """The CI's identity token and where it came from (said in messages; the token never)."""

    value: str = field(repr=False)
    source: str

    def __repr__(self) -> str:
        return f"SubjectToken(source={self.source!r}, value=<redacted>)"


def find_subject_token(
    env: Mapping[str, str],
    http: httpx2.Client,
    *,
    path: str | None,
    variable: str | None,
    audience: str,
) -> SubjectToken:
    """--subject-token-file, else --subject-token-env, else GitHub Actions' pair of variables
    (the request URL and its bearer token, set for jobs with `id-token: write`)."""
    if path is not None and variable is not None:
        raise UsageError("use either --subject-token-file or --subject-token-env, not both")
    if path is not None:
        return _checked(_read_token_file(path), f"the file {path}")
    if variable is not None:
        value = env.get(variable, "").strip()
        if not value:
            raise UsageError(f"the environment variable {clean(variable)} is not set or is empty")
        return _checked(value, f"the environment variable {variable}")
    url, token = env.get(GITHUB_REQUEST_URL), env.get(GITHUB_REQUEST_TOKEN)
    if url and token:
        check_transport(url, GITHUB_REQUEST_URL)
        value = drive(github_actions_token(url, token, audience), http)
        return _checked(value.strip(), "GitHub Actions")
    raise UsageError(
        "no identity token to sign in with: pass --subject-token-file PATH or "
        "--subject-token-env NAME, or run in GitHub Actions with `permissions: id-token: write`"
    )


def _read_token_file(path: str) -> str:
    # Not trusted_files: a CI's token file is the CI's (a projected Kubernetes token is a
    # symlink), and it is only ever sent to the issuer, never trusted by kt itself.
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_SUBJECT_TOKEN + 1)
    except OSError as exc:
        raise UsageError(
            f"cannot read the identity token file {clean(path)}: {exc.strerror or exc}"
        ) from None
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise UsageError(f"the file {clean(path)} does not hold a JWT") from None


def _checked(value: str, source: str) -> SubjectToken:
    if len(value) > MAX_SUBJECT_TOKEN:
        raise UsageError(f"the identity token from {clean(source)} is too large to be a JWT")
    if value.count(".") != 2 or any(c.isspace() for c in value):
        raise UsageError(f"{clean(source)} does not hold a JWT (header.payload.signature)")
    return SubjectToken(value, source)


def federated_sign_in(
    authenticator: Authenticator,
    *,
    issuer: str,
    client_id: str,
    api_url: str,
    subject: SubjectToken,
    scope: str | None = None,
) -> Session:
    """The session the issuer grants for `subject` (RFC 8693), described by the API's whoami
    when the issuer is the API's own. Refusals keep the server's reason."""
    http = authenticator.http
    meta = drive(discover(issuer), http)
    try:
        tokens = drive(
            exchange_token(
                meta.token_endpoint,
                client_id=client_id,
                subject_token=subject.value,
                subject_token_type=JWT,
                scope=scope,
            ),
            http,
        )
    except OAuthError as exc:
        raise _refused(exc, issuer, subject) from None
    now = authenticator.clock()
    session = Session(
        api_url=api_url,
        access_token=tokens.access_token,
        refresh_token=None,
        expires_at=None if tokens.expires_in is None else now + tokens.expires_in,
        method=FEDERATED,
        kind=OAUTH,
        user_email="",
        user_id="",
        organization="",
        role="",
        scopes=tuple((tokens.scope or "").split()),
        mfa_authenticated=False,
        obtained_at=now,
        issuer=issuer,
        client_id=client_id,
        token_endpoint=meta.token_endpoint,
        revocation_endpoint=meta.revocation_endpoint,
    )
    if session.foreign_issuer is None:
        session = with_account(authenticator, session)
    return session


def _refused(exc: OAuthError, issuer: str, subject: SubjectToken) -> OAuthError:
    if exc.error in ("unsupported_grant_type", "unauthorized_client"):
        return exc.restated(
            f"{issuer} does not offer CI sign-in with token exchange (RFC 8693)",
            hint="sign in with an API token instead (KEEPTRUSTS_API_TOKEN)",
        )
    if exc.error in ("invalid_grant", "invalid_request", "invalid_scope"):
        return exc.restated(
            f"{issuer} refused the identity token from {clean(subject.source)}",
            hint="check the server's trust rule for this CI: issuer, audience (--audience) and "
            "claims such as repository and ref",
        )
    return exc
