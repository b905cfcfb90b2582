-- Users (the minimal set the authorization code flow needs; issue #4 adds tenants, memberships,
-- lockout and MFA), browser sessions, authorization codes and refresh token families.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    tenant_id     TEXT,
    roles         TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- A browser session; the cookie holds a random token, the row only its SHA-256.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    amr        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Single-use, short-lived codes, stored as SHA-256. What a code issued is remembered so that
-- a replayed code revokes it.
CREATE TABLE authorization_codes (
    code_hash             BYTEA PRIMARY KEY,
    client_id             TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    session_id            TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    nonce                 TEXT,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    auth_time             BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    used_at               BIGINT,
    issued_family_id      TEXT,
    issued_access_jti     TEXT,
    issued_access_exp     BIGINT
);

-- A refresh token family: one grant's chain of rotated refresh tokens. `generation` is the
-- generation of the only valid token (the head); it only ever grows.
CREATE TABLE refresh_families (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    session_id TEXT NOT NULL,
    scope      TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash    BYTEA PRIMARY KEY,
    family_id     TEXT NOT NULL,
    generation    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    superseded_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
