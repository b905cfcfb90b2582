-- Requests counted per key in fixed windows (e.g. password-reset requests per client IP),
-- apart from the failed sign-ins of login_failures: a request limit never locks a sign-in and
-- a successful sign-in never resets a request limit. `key` is `<what>:<value>`.
CREATE TABLE request_limits (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    requests     BIGINT NOT NULL
);
