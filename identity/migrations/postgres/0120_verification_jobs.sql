-- Security-event chain verifications run as background jobs: the row is the job, so every
-- replica sees its progress. `tenant_id` '' is the platform's chain. At most one job per chain
-- runs at a time (the partial unique index); the replica running it (`holder`) refreshes
-- `heartbeat_at` while it walks, and a running job whose heartbeat stopped is abandoned.
CREATE TABLE verification_jobs (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    holder        TEXT NOT NULL,
    state         TEXT NOT NULL,
    checked       BIGINT NOT NULL,
    total         BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL,
    finished_at   BIGINT,
    result        TEXT,
    error         TEXT
);
CREATE UNIQUE INDEX verification_jobs_one_running ON verification_jobs (tenant_id) WHERE state = 'running';
CREATE INDEX verification_jobs_chain ON verification_jobs (tenant_id, started_at);
