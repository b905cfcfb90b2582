-- Failed sign-ins per (account, client IP) and per client IP, and the temporary locks they
-- lead to (issue #4). `key` is `a:<email>|<ip>` or `i:<ip>`; the email is whatever was typed,
-- known account or not, so a lock reveals nothing about which accounts exist.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
