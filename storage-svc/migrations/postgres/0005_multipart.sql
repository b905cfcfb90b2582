-- Multipart uploads: parts are blobs of their own, counted in the tenant's usage as soon as
-- they are stored, and concatenated into one new blob when the upload completes.
CREATE TABLE multipart_uploads (
    tenant_id TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    bucket TEXT NOT NULL,
    object_key TEXT COLLATE "C" NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, upload_id),
    FOREIGN KEY (tenant_id, bucket) REFERENCES buckets (tenant_id, name)
);

CREATE TABLE multipart_parts (
    tenant_id TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    part_number BIGINT NOT NULL,
    blob_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    PRIMARY KEY (tenant_id, upload_id, part_number)
);
