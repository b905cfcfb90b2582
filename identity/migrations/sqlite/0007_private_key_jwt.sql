-- private_key_jwt (RFC 7523 §2.2): a client's public keys (a JWK Set, JSON), and the ids of
-- the client assertions already used (replay protection), kept until they expire.
ALTER TABLE clients ADD COLUMN jwks TEXT;
CREATE TABLE client_assertions (
    id         TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
