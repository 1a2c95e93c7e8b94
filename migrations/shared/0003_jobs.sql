-- Scheduled jobs: every fire is recorded under its (job, scheduled time), which is what makes
-- it run once across restarts and instances. Times are scheduled instants in UTC milliseconds.

CREATE TABLE jobs_seen (
    job                TEXT PRIMARY KEY,
    first_seen_at_ms   BIGINT NOT NULL,      -- fires before this were never missed
    last_claim_at_ms   BIGINT NOT NULL
);

CREATE TABLE job_fires (
    job                  TEXT NOT NULL,
    scheduled_at_ms      BIGINT NOT NULL,
    instance             TEXT NOT NULL,
    status               TEXT NOT NULL,      -- running | succeeded | failed | skipped
    started_at_ms        BIGINT NOT NULL,
    finished_at_ms       BIGINT,
    lease_expires_at_ms  BIGINT NOT NULL,
    attempts             BIGINT NOT NULL,
    detail               TEXT,
    PRIMARY KEY (job, scheduled_at_ms)
);
CREATE INDEX job_fires_running ON job_fires (status, lease_expires_at_ms);
