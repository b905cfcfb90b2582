-- The browsers an account has signed in from: the SHA-256 of the long-lived device cookie
-- (never the cookie itself). A sign-in from a browser not listed here, by an account that has
-- signed in before, sends the new-sign-in notice.
CREATE TABLE known_devices (
    user_id      TEXT NOT NULL,
    device_hash  BYTEA NOT NULL,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_hash)
);
CREATE INDEX known_devices_seen ON known_devices (last_seen);
