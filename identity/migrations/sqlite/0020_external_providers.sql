-- External OIDC providers per tenant (issue #8). The client secret is sealed (AES-256-GCM)
-- under the tenant's vault data key, bound (AAD) to tenant and provider id; never returned.
CREATE TABLE external_providers (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret BLOB,
    scopes        TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (tenant_id, issuer)
);
