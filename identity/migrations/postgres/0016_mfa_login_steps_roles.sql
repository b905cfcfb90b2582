-- TOTP MFA (RFC 6238), the steps of a sign-in between the password and the session, and
-- custom per-tenant roles (issue #4).

-- One TOTP secret per user, sealed (AES-256-GCM) under the master key with the user id as AAD.
-- `confirmed_at` is NULL while an enrolment waits for its first valid code; `last_step` is the
-- time step of the last accepted code: a code is accepted only for a later step (no replay).
CREATE TABLE mfa_totp (
    user_id       TEXT PRIMARY KEY,
    secret_sealed BYTEA NOT NULL,
    master_key_id TEXT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Single-use recovery codes, stored as SHA-256 (the codes are 80 random bits).
CREATE TABLE mfa_recovery_codes (
    user_id   TEXT NOT NULL,
    code_hash BYTEA NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- A sign-in whose password was right but that needs another step (second factor, tenant
-- choice, forced enrolment). The form carries a random token; the row keeps its SHA-256 and
-- the SHA-256 of the browser's CSRF cookie it is bound to.
CREATE TABLE login_steps (
    token_hash      BYTEA PRIMARY KEY,
    csrf_hash       BYTEA NOT NULL,
    user_id         TEXT NOT NULL,
    account_key     TEXT NOT NULL,
    tenant_resolved BOOLEAN NOT NULL,
    tenant_id       TEXT,
    amr             TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

-- Custom roles per tenant and the scopes each allows.
CREATE TABLE tenant_roles (
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
