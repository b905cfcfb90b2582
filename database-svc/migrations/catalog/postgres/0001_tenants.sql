CREATE TABLE tenants (
    id TEXT PRIMARY KEY, backend TEXT NOT NULL, location TEXT NOT NULL,
    status TEXT NOT NULL, created_at BIGINT NOT NULL, deleted_at BIGINT,
    purge_after BIGINT
);
