-- The tenant that created an identity (a tenant admin's "create user", or a registration):
-- besides the identity itself and platform administrators, only that tenant may change what is
-- global about it (password, MFA, name, disabled). NULL: created by the platform.
ALTER TABLE users ADD COLUMN home_tenant_id TEXT;

-- A tenant's invitation of an existing account: the membership exists only once the invitee,
-- signed in, accepts it. Until then the inviter learns nothing about the account.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    email       TEXT NOT NULL,
    roles       TEXT NOT NULL,
    invited_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, email)
);
CREATE INDEX invitations_email ON invitations (email);
