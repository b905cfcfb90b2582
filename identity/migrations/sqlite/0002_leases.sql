-- Database leases: at most one replica holds a named lease (e.g. key rotation) until it expires.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
