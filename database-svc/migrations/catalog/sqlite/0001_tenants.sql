CREATE TABLE tenants (
    id TEXT PRIMARY KEY, backend TEXT NOT NULL, location TEXT NOT NULL,
    status TEXT NOT NULL, created_at INTEGER NOT NULL, deleted_at INTEGER,
    purge_after INTEGER
);
