"""OAuth scopes and the authentication context (acr/amr) values the AS issues.

The OAuth scopes say what the ID token and userinfo reveal and whether a refresh token is issued
(`offline_access`); the access token's reach on `/v1/auth/*` is its user's role scopes, as for a
password session.
"""

from __future__ import annotations

OPENID = "openid"
PROFILE = "profile"
EMAIL = "email"
OFFLINE_ACCESS = "offline_access"

OIDC_SCOPES: tuple[str, ...] = (OPENID, PROFILE, EMAIL, OFFLINE_ACCESS)

DESCRIPTIONS: dict[str, str] = {
    OPENID: "Sign you in with your Keeptrusts account",
    PROFILE: "See your name",
    EMAIL: "See your email address",
    OFFLINE_ACCESS: "Stay signed in (refresh tokens) until you sign out",
}

ACR_PASSWORD = "urn:keeptrusts:acr:pwd"  # noqa: S105 - an acr name, not a secret
ACR_MFA = "urn:keeptrusts:acr:mfa"
ACR_VALUES: tuple[str, ...] = (ACR_PASSWORD, ACR_MFA)


def acr(mfa: bool) -> str:
    return ACR_MFA if mfa else ACR_PASSWORD


def amr(mfa: bool) -> list[str]:
    return ["pwd", "otp"] if mfa else ["pwd"]


def as_list(scope: str | None) -> list[str]:
    return scope.split() if scope else []
