-- Passkeys (WebAuthn credentials) and the ceremonies that register and use them.

-- A user's passkeys, each registered for the tenant of the session that registered it (NULL:
-- the platform identity); a credential id is registered once. `passkey` is webauthn-rs's
-- credential (public key, signature counter, backup flags) as JSON; `counter`, `backup_*`
-- mirror it for lists. `user_handle` is the random id the authenticator keeps for the
-- account (one per user and tenant), given back at a discoverable sign-in.
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT,
    user_id         TEXT NOT NULL,
    credential_id   BYTEA NOT NULL UNIQUE,
    user_handle     TEXT NOT NULL,
    name            TEXT NOT NULL,
    passkey         TEXT NOT NULL,
    counter         BIGINT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backup_state    BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id, tenant_id);

-- A ceremony between its options and the browser's answer: the random token the page holds
-- (its SHA-256 here), what it is bound to (SHA-256 of the session, CSRF cookie or sign-in
-- step that started it), and webauthn-rs's state (the challenge) as JSON. Single use.
CREATE TABLE passkey_ceremonies (
    token_hash BYTEA PRIMARY KEY,
    kind       TEXT NOT NULL,
    binding    BYTEA NOT NULL,
    user_id    TEXT,
    tenant_id  TEXT,
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
