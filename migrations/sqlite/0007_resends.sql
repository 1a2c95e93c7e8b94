-- `payout resend`: a closed period's statement queued again, to the partner's current
-- recipients that have no message of it yet. One row per resend asked for: who asked, when,
-- and what it queued. The statement (and so the close) must exist.
CREATE TABLE resends (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    period           TEXT NOT NULL,
    partner_id       TEXT NOT NULL,
    requested_by     TEXT NOT NULL CHECK (requested_by <> ''),
    requested_at_ms  BIGINT NOT NULL,
    queued           BIGINT NOT NULL CHECK (queued >= 0),    -- new outbox rows
    already_had      BIGINT NOT NULL CHECK (already_had >= 0), -- current recipients with a row
    recipients       TEXT NOT NULL,                          -- JSON array of the queued addresses
    FOREIGN KEY (period, partner_id) REFERENCES statements (period, partner_id)
);
CREATE INDEX resends_by_statement ON resends (period, partner_id);
