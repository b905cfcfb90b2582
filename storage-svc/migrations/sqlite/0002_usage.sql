-- Per-tenant usage. reserved_* count uploads in flight (reserve-then-commit quota checks).
CREATE TABLE tenant_usage (
    tenant_id TEXT PRIMARY KEY,
    bytes BIGINT NOT NULL DEFAULT 0,
    objects BIGINT NOT NULL DEFAULT 0,
    reserved_bytes BIGINT NOT NULL DEFAULT 0,
    reserved_objects BIGINT NOT NULL DEFAULT 0
);
