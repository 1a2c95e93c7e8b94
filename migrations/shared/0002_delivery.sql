-- Statements keep what their documents need to be rendered again anywhere (send may run on
-- another host than close); the outbox gets delivery state and claims for concurrent senders.

ALTER TABLE statements ADD COLUMN program_name TEXT NOT NULL DEFAULT '';
ALTER TABLE statements ADD COLUMN language TEXT NOT NULL DEFAULT 'en';

ALTER TABLE outbox ADD COLUMN context TEXT NOT NULL DEFAULT '{}';
ALTER TABLE outbox ADD COLUMN next_attempt_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claim_expires_at_ms BIGINT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN sent_at_ms BIGINT;
CREATE INDEX outbox_deliverable ON outbox (status, next_attempt_at_ms);

-- Progress of legacy-portal partners through their migration wave.
CREATE TABLE migration_progress (
    partner_id         TEXT PRIMARY KEY,
    wave               TEXT NOT NULL,
    notified_at_ms     BIGINT,
    reminders          BIGINT NOT NULL DEFAULT 0,
    last_notified_on   TEXT,
    completed_on       TEXT
);
