-- The security-event log (issue #4): append-only, hash-chained per tenant. `tenant_id` is ''
-- for platform events; `seq` numbers a tenant's chain from 1; `hash` is the hex SHA-256 of
-- `prev_hash` + "\n" + the event's canonical JSON (see src/events.rs).
CREATE TABLE security_events (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    type       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    details    TEXT NOT NULL,
    trace_id   TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    UNIQUE (tenant_id, seq)
);
CREATE INDEX security_events_at ON security_events (at);
