-- Buckets and the objects in them. Keys sort bytewise (listing order and continuation tokens
-- depend on it). An object row points at an immutable blob: overwrites swap the pointer.
CREATE TABLE buckets (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE objects (
    tenant_id TEXT NOT NULL,
    bucket TEXT NOT NULL,
    object_key TEXT COLLATE "C" NOT NULL,
    blob_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, bucket, object_key),
    FOREIGN KEY (tenant_id, bucket) REFERENCES buckets (tenant_id, name)
);
