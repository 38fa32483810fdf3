"""The database schema: every table of the one SQLite file, created if missing at open.

- the first-party API: `organizations` (with their settings: `device_flow`), `users`,
  `mfa_tokens`, `api_tokens`;
- token families (families.py): `sessions` (one per sign-in), their `access_tokens` and
  `refresh_tokens`, and for the families OAuth issued, `oauth_grants` (client, scope, how the user
  authenticated, and `resource`: the API its access tokens are for, RFC 8707). OAuth's tokens
  work on `/v1/auth/*` like a password session's, on the API they are for only;
- the OAuth/OIDC authorization server (oauth/storage.py):
  - `oauth_codes`: authorization codes (hash only), single use; `session_id` is the token family
    the code was exchanged for, so a replayed code can revoke it;
  - `oauth_browser_sessions`: the AS's browser sign-in sessions (cookie secret stored as a hash);
  - `oauth_transactions`: one pending authorization request, from `GET /oauth/authorize` to the
    consent decision, bound to a browser session;
  - `oauth_signing_keys`: the ID-token signing key (oauth/id_tokens.py);
  - `oauth_device_codes`: RFC 8628 device authorizations: the device code and the user code are
    stored as hashes only; `status` goes pending → approved/denied in the browser, `used_at` and
    `session_id` are set when the device exchanges an approved code (single use);
  - `sso_attempts` (one federated sign-in in flight, by the hash of its `state`) and
    `sso_identities` (an upstream provider's (iss, sub) → the local user; never matched by email);
- RFC 8693 token exchange (exchanges.py, oauth/grants/token_exchange.py):
  - `trust_rules`: per organization, an external OIDC issuer whose JWTs (a CI job's identity)
    are exchanged for API tokens: audience, claim patterns, the API scopes and lifetime granted,
    and the rule's workload user (role `workload`, no password) the tokens are issued to;
  - `subject_token_jtis`: the `jti` of every subject token exchanged, until it expires (replay);
  - `exchanged_sessions`: a token family issued by a token exchange: its API scopes, and either
    the external issuer and subject (CI sign-in) or the session it was derived from and the
    actor (`act`, delegation). Revoking a family revokes the families derived from it.
"""

SCHEMA = """
-- device_flow: 0 when the organization turned device sign-in (RFC 8628) off for its users.
CREATE TABLE IF NOT EXISTS organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    device_flow INTEGER NOT NULL DEFAULT 1
);
-- totp_last_step: the RFC 6238 time step of the last TOTP code accepted (good once, §5.2).
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret TEXT,
    totp_last_step INTEGER
);
-- A session is one login: the family of every access and refresh token issued from it.
-- dpop_jkt: the RFC 7638 thumbprint of the DPoP key its tokens are bound to (RFC 9449 cnf.jkt;
-- every token of the family, refreshes included), NULL for bearer tokens.
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    mfa_authenticated INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked_at REAL,
    dpop_jkt TEXT
);
CREATE TABLE IF NOT EXISTS access_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    expires_at REAL NOT NULL,
    spent_at REAL
);
CREATE TABLE IF NOT EXISTS mfa_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    purpose TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,
    failed_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL,
    -- The token this one was created with (None: created by a session); revoked with it.
    parent_id TEXT REFERENCES api_tokens(id)
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens(user_id, created_at);
CREATE TABLE IF NOT EXISTS oauth_signing_keys (
    kid TEXT PRIMARY KEY,
    private_jwk TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    nonce TEXT,
    auth_time REAL NOT NULL,
    mfa INTEGER NOT NULL,
    code_challenge TEXT NOT NULL,
    code_challenge_method TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL,
    session_id TEXT REFERENCES sessions(id),
    resource TEXT
);
CREATE INDEX IF NOT EXISTS oauth_codes_nonce ON oauth_codes(client_id, nonce);
CREATE TABLE IF NOT EXISTS oauth_grants (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id),
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    auth_time REAL NOT NULL,
    mfa INTEGER NOT NULL,
    resource TEXT
);
CREATE TABLE IF NOT EXISTS oauth_browser_sessions (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id TEXT REFERENCES users(id),
    auth_time REAL,
    mfa INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_transactions (
    id TEXT PRIMARY KEY,
    browser_session_id TEXT NOT NULL REFERENCES oauth_browser_sessions(id),
    params TEXT NOT NULL,
    step TEXT NOT NULL,
    user_id TEXT REFERENCES users(id),
    password_at REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS oauth_device_codes (
    id TEXT PRIMARY KEY,
    device_code_hash TEXT NOT NULL UNIQUE,
    user_code_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    poll_interval REAL NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_poll_at REAL,
    status TEXT NOT NULL,
    user_id TEXT REFERENCES users(id),
    auth_time REAL,
    mfa INTEGER NOT NULL DEFAULT 0,
    decided_at REAL,
    used_at REAL,
    session_id TEXT REFERENCES sessions(id),
    resource TEXT
);
CREATE INDEX IF NOT EXISTS oauth_device_codes_user_code
    ON oauth_device_codes(user_code_hash, expires_at);
CREATE TABLE IF NOT EXISTS sso_identities (
    iss TEXT NOT NULL,
    sub TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at REAL NOT NULL,
    PRIMARY KEY (iss, sub)
);
CREATE TABLE IF NOT EXISTS sso_attempts (
    state_hash TEXT PRIMARY KEY,
    txn_id TEXT NOT NULL,
    browser_session_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE TABLE IF NOT EXISTS trust_rules (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL UNIQUE,
    issuer TEXT NOT NULL,
    audience TEXT NOT NULL,
    -- JSON object: claim name -> fnmatch pattern, e.g. {"repository": "acme/app"}
    claims TEXT NOT NULL,
    scopes TEXT NOT NULL,
    lifetime INTEGER NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trust_rules_issuer ON trust_rules(issuer);
CREATE TABLE IF NOT EXISTS subject_token_jtis (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE TABLE IF NOT EXISTS exchanged_sessions (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id),
    scopes TEXT NOT NULL,
    -- CI sign-in: the external issuer and subject (the family's user is the rule's workload)
    issuer TEXT,
    subject TEXT,
    -- delegation: the family the subject token belonged to, and the actor (act.sub)
    parent_session_id TEXT REFERENCES sessions(id),
    actor TEXT
);
CREATE INDEX IF NOT EXISTS exchanged_sessions_parent ON exchanged_sessions(parent_session_id);
"""
# Columns added since a database file may have been created (CREATE IF NOT EXISTS keeps an
# existing table as it was): (table, column, declaration).
ADDED_COLUMNS = (
    ("api_tokens", "parent_id", "TEXT REFERENCES api_tokens(id)"),
    ("users", "totp_last_step", "INTEGER"),
    ("sessions", "dpop_jkt", "TEXT"),
    ("organizations", "device_flow", "INTEGER NOT NULL DEFAULT 1"),
    # RFC 8707: the resource (the API) a code, a device code and the grant they buy are for,
    # the audience of the grant's access tokens (NULL in rows from before: this server's API).
    ("oauth_codes", "resource", "TEXT"),
    ("oauth_device_codes", "resource", "TEXT"),
    ("oauth_grants", "resource", "TEXT"),
)
