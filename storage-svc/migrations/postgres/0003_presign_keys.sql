-- Per-tenant presigning keys, sealed with AES-256-GCM under the service's master key.
CREATE TABLE presign_keys (
    tenant_id TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
