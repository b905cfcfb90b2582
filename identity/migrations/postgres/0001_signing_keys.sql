-- The signing key ring. A key is published (in the JWKS) from created_at, signs from
-- activate_at until its successor of the same alg activates, and stays published for the
-- grace period after that. The private key is AES-256-GCM ciphertext under the master key.
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    private_key_enc BYTEA NOT NULL,
    master_key_id   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    activate_at     BIGINT NOT NULL
);
CREATE INDEX signing_keys_alg_activate ON signing_keys (alg, activate_at);
