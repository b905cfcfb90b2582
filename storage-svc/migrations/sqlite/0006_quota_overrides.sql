-- Per-tenant quota overrides set by a platform administrator; NULL means the service's
-- configured default. They sit on the usage row so that every quota check reads the limit in
-- the same statement (and under the same lock) that changes the usage.
ALTER TABLE tenant_usage ADD COLUMN quota_bytes BIGINT;
ALTER TABLE tenant_usage ADD COLUMN quota_objects BIGINT;
