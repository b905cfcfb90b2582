-- The secrets vault (issue #4): envelope encryption. Each tenant has a random 256-bit data key,
-- stored only sealed (AES-256-GCM) under the master key; secret values are sealed under the
-- tenant's data key, bound (AAD) to tenant, name and version.
CREATE TABLE tenant_data_keys (
    tenant_id     TEXT PRIMARY KEY,
    wrapped_key   BYTEA NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE tenant_secrets (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (tenant_id, name, version)
);
