-- Sign-in through a tenant's external providers: each provider's sign-in settings, the
-- upstream identities linked to users (the upstream iss + sub, unique per tenant; never the
-- email alone) and the sign-ins under way (single-use, short-lived, bound to the browser).
ALTER TABLE external_providers ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

CREATE TABLE federated_identities (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    provider_id  TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    email        TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    UNIQUE (tenant_id, issuer, subject)
);
CREATE INDEX federated_identities_user ON federated_identities (user_id, tenant_id);

-- kind 'authorize': on the way to the provider (nonce, PKCE verifier); kind 'link': back from
-- it, waiting for the existing account's password (the upstream identity it would link).
CREATE TABLE federation_pending (
    token_hash    BYTEA PRIMARY KEY,
    binding_hash  BYTEA NOT NULL,
    kind          TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    provider_id   TEXT NOT NULL,
    request       TEXT NOT NULL,
    nonce         TEXT,
    pkce_verifier TEXT,
    user_id       TEXT,
    identity      TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX federation_pending_expiry ON federation_pending (expires_at);
