"""The demo data kt-devserver seeds into a fresh database (the README quotes these facts).

- Organization "Acme".
- alice@example.com / alice-password: "Alice Admin", role admin, no MFA.
- bob@example.com / bob-password: "Bob Member", role member, TOTP MFA with the fixed base32 secret
  JBSWY3DPEHPK3PXP. Any authenticator app, `kt-devserver totp bob@example.com` or
  `kt_devserver.totp.code(BOB_TOTP_SECRET)` gives the current code. (Plain `pyotp.TOTP(...)` in
  pyotp 2.10+ refuses this 80-bit secret; see kt_devserver/totp.py.)

These credentials are public on purpose: never expose a dev server with them (see `--public`).
Seeding is idempotent: users that already exist are left alone.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from kt_devserver import passwords
from kt_devserver.db import Database

ORGANIZATION_NAME = "Acme"

ALICE_EMAIL = "alice@example.com"
ALICE_PASSWORD = "alice-password"  # noqa: S105 - public demo credential
ALICE_NAME = "Alice Admin"
ALICE_ROLE = "admin"

BOB_EMAIL = "bob@example.com"
BOB_PASSWORD = "bob-password"  # noqa: S105 - public demo credential
BOB_NAME = "Bob Member"
BOB_ROLE = "member"
BOB_TOTP_SECRET = "JBSWY3DPEHPK3PXP"  # noqa: S105 - public demo credential


@dataclass(frozen=True)
class DemoUser:
    email: str
    password: str
    name: str
    role: str
    totp_secret: str | None


DEMO_USERS = (
    DemoUser(ALICE_EMAIL, ALICE_PASSWORD, ALICE_NAME, ALICE_ROLE, None),
    DemoUser(BOB_EMAIL, BOB_PASSWORD, BOB_NAME, BOB_ROLE, BOB_TOTP_SECRET),
)


def seed(db: Database) -> None:
    """Create the demo organization and users unless they already exist."""
    org = db.get_or_create_organization(ORGANIZATION_NAME)
    for user in DEMO_USERS:
        if db.find_user_by_email(user.email) is not None:
            continue
        try:
            db.create_user(
                org_id=org.id,
                email=user.email,
                name=user.name,
                role=user.role,
                password_hash=passwords.hash_password(user.password),
                totp_secret=user.totp_secret,
            )
        except sqlite3.IntegrityError:
            pass  # another process (e.g. `kt-devserver totp`) seeded the same user just now
