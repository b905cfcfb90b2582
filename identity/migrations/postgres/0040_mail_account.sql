-- Outgoing mail. A message is stored before delivery is first tried and removed once the mail
-- server has taken it, so a failure is retried (with backoff) and never loses it. Its subject
-- and bodies, which may carry a one-time link, are sealed under the master key (AAD: the id).
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    content_sealed  BYTEA NOT NULL,
    master_key_id   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);

-- A tenant's own wording of a message kind (the built-in template otherwise).
CREATE TABLE mail_templates (
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

-- Single-use links sent by mail (password reset, email verification); only their SHA-256.
CREATE TABLE account_tokens (
    token_hash BYTEA PRIMARY KEY,
    kind       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    email      TEXT NOT NULL,
    tenant_id  TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, kind);

-- When the account's current email address was proven (NULL: not yet).
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
