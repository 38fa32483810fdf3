"""Sample sessions for tests: ada's first-party session, with canary tokens that no output,
log or file outside the store may ever contain."""

from __future__ import annotations

import dataclasses

from kt_login.session import Session

ACCESS = "kta_CANARY-access-7f3a9c"
REFRESH = "ktr_CANARY-refresh-91b2e4"


def make_session(**changes: object) -> Session:
    base = Session(
        api_url="http://127.0.0.1:8765",
        access_token=ACCESS,
        refresh_token=REFRESH,
        expires_at=1_900_000_000.5,
        method="password",
        kind="keeptrusts",
        user_email="ada@example.com",
        user_id="usr_1",
        organization="Example",
        role="admin",
        scopes=("tokens:read", "tokens:write"),
        mfa_authenticated=True,
        session_id="ses_1",
        refresh_expires_at=1_900_086_400.0,
        obtained_at=1_899_999_100.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def make_big_oidc_session(size: int = 6000, **changes: object) -> Session:
    """An OIDC session the size of those with big access tokens (an Entra/Okta JWT carrying a
    few hundred group claims): `size` bytes of access token, the canary included."""
    filler = "".join(f"grp-{i:05d}." for i in range(size // 10 + 1))
    access = f"{ACCESS}.eyJncm91cHMiOiJ{filler}"[:size]
    base = make_session(
        access_token=access,
        method="browser",
        kind="oauth",
        issuer="https://login.example.com",
        client_id="kt-cli",
        token_endpoint="https://login.example.com/oauth/token",
        revocation_endpoint="https://login.example.com/oauth/revoke",
        jwks_uri="https://login.example.com/jwks",
        subject="00u1ada",
        auth_time=1_899_999_000.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
