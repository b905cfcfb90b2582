-- Blobs that may exist with no object pointing at them: placed but not yet committed, or
-- replaced/deleted but not yet removed. Swept at start-up, so a crash leaks no storage.
CREATE TABLE blob_intents (
    tenant_id TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, blob_id)
);
