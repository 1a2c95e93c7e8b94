-- The statuses the engine records, as closed sets (`domain::status`): a run's outcome, a
-- scheduled fire's status, an outbox message's status and kind. SQLite cannot add a CHECK to
-- a table, so `runs`, `job_fires` and `outbox` are built again with their constraints, keeping
-- every row, column, default, index, key and AUTOINCREMENT counter. `run_inputs` and
-- `run_warnings` reference `runs`, so they are built again too: each new table references the
-- new `runs_new`, the old tables are dropped children first (no foreign key is broken at any
-- point), and renaming `runs_new` to `runs` renames those references with it.

CREATE TABLE runs_new (
    id             TEXT PRIMARY KEY,
    command        TEXT NOT NULL,
    period         TEXT,
    started_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT,
    outcome        TEXT NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed')),
    detail         TEXT,
    fingerprint    TEXT
);
INSERT INTO runs_new (id, command, period, started_at_ms, finished_at_ms, outcome, detail, fingerprint)
    SELECT id, command, period, started_at_ms, finished_at_ms, outcome, detail, fingerprint FROM runs;

CREATE TABLE run_inputs_new (
    run_id  TEXT NOT NULL REFERENCES runs_new (id),
    file    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    PRIMARY KEY (run_id, file)
);
INSERT INTO run_inputs_new (run_id, file, sha256) SELECT run_id, file, sha256 FROM run_inputs;

CREATE TABLE run_warnings_new (
    run_id   TEXT NOT NULL REFERENCES runs_new (id),
    seq      BIGINT NOT NULL,               -- order in which the run found them
    file     TEXT NOT NULL,                 -- relative to the data directory
    line     BIGINT,                        -- physical line, when about a row
    message  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
INSERT INTO run_warnings_new (run_id, seq, file, line, message)
    SELECT run_id, seq, file, line, message FROM run_warnings;

DROP TABLE run_warnings;
DROP TABLE run_inputs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
ALTER TABLE run_inputs_new RENAME TO run_inputs;
ALTER TABLE run_warnings_new RENAME TO run_warnings;

CREATE TABLE job_fires_new (
    job                  TEXT NOT NULL,
    scheduled_at_ms      BIGINT NOT NULL,
    instance             TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    started_at_ms        BIGINT NOT NULL,
    finished_at_ms       BIGINT,
    lease_expires_at_ms  BIGINT NOT NULL,
    attempts             BIGINT NOT NULL,
    detail               TEXT,
    PRIMARY KEY (job, scheduled_at_ms)
);
INSERT INTO job_fires_new (job, scheduled_at_ms, instance, status, started_at_ms, finished_at_ms,
                           lease_expires_at_ms, attempts, detail)
    SELECT job, scheduled_at_ms, instance, status, started_at_ms, finished_at_ms,
           lease_expires_at_ms, attempts, detail FROM job_fires;
DROP TABLE job_fires;
ALTER TABLE job_fires_new RENAME TO job_fires;
CREATE INDEX job_fires_running ON job_fires (status, lease_expires_at_ms);

CREATE TABLE outbox_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN ('statement', 'invitation', 'migration', 'reminder')),
    partner_id    TEXT NOT NULL,
    scope         TEXT NOT NULL,              -- period, program or wave
    recipient     TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    context       TEXT NOT NULL DEFAULT '{}',
    next_attempt_at_ms BIGINT NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    claim_expires_at_ms BIGINT,
    last_error    TEXT,
    sent_at_ms    BIGINT,
    UNIQUE (kind, partner_id, scope, recipient)
);
INSERT INTO outbox_new (id, kind, partner_id, scope, recipient, recipient_name, message_id, status,
                        attempts, created_at_ms, context, next_attempt_at_ms, claimed_by,
                        claim_expires_at_ms, last_error, sent_at_ms)
    SELECT id, kind, partner_id, scope, recipient, recipient_name, message_id, status,
           attempts, created_at_ms, context, next_attempt_at_ms, claimed_by,
           claim_expires_at_ms, last_error, sent_at_ms FROM outbox;
-- Ids go on from where the old table's counter was, as if nothing had happened.
DELETE FROM sqlite_sequence WHERE name = 'outbox_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_new', seq FROM sqlite_sequence WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_deliverable ON outbox (status, next_attempt_at_ms);
