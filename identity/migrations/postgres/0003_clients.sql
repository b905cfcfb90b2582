-- OAuth clients. List-valued columns hold JSON arrays of strings. A confidential client's
-- secret is stored only as its SHA-256 hash (secrets are 256 random bits: no slow hash needed).
CREATE TABLE clients (
    id                         TEXT PRIMARY KEY,
    client_id                  TEXT NOT NULL UNIQUE,
    tenant_id                  TEXT,
    name                       TEXT NOT NULL,
    confidential               BOOLEAN NOT NULL,
    secret_hash                BYTEA,
    grant_types                TEXT NOT NULL,
    scopes                     TEXT NOT NULL,
    redirect_uris              TEXT NOT NULL,
    access_token_lifetime_secs BIGINT,
    signing_alg                TEXT NOT NULL,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);
