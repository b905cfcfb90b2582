-- Retention (issue #4): when old events of a tenant's chain are purged, the last purged link
-- stays here, so the chain still verifies from its first remaining event.
CREATE TABLE security_event_anchors (
    tenant_id  TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    purged_at  BIGINT NOT NULL
);
