-- The dashboard's activity charts (issue #8): tokens issued per tenant and hour ('' = tokens
-- without a tenant), upserted in batches from an in-memory counter (src/stats.rs), and an index
-- for counting a tenant's sign-ins per hour straight from the security-event log.
CREATE TABLE token_issuance (
    tenant_id TEXT NOT NULL,
    hour      BIGINT NOT NULL,
    issued    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, hour)
);
CREATE INDEX security_events_activity ON security_events (tenant_id, type, at, outcome);
