-- The finance review pack (issue 15). Each published report folder (a draft, or a close's
-- final reports) records what it was compared with and how many partners changed; each draft
-- keeps its partners' payouts.csv cells, own lines and master data, so that the next draft of
-- the period can list what changed and why even when the earlier folder is gone; a close
-- records who approved it, when, and the fingerprint of the draft approved. No money is
-- computed from these tables: the cells are the report's text.

CREATE TABLE report_snapshots (
    run_id            TEXT PRIMARY KEY REFERENCES runs (id),
    period            TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('draft', 'final')),
    created_at_ms     BIGINT NOT NULL,
    compared_with     TEXT,              -- run id of the draft compared with; null: none
    changed_partners  BIGINT NOT NULL,
    changed_values    BIGINT NOT NULL
);
CREATE INDEX report_snapshots_by_period ON report_snapshots (period, created_at_ms);

CREATE TABLE draft_partners (
    run_id        TEXT NOT NULL REFERENCES runs (id),
    partner_id    TEXT NOT NULL,
    partner_name  TEXT NOT NULL,
    payout_cells  TEXT,                  -- JSON array of the payouts.csv cells; null: no row
    own_lines     BIGINT NOT NULL,
    master_facts  TEXT NOT NULL,         -- JSON object, field -> value
    PRIMARY KEY (run_id, partner_id)
);

CREATE TABLE close_approvals (
    period             TEXT PRIMARY KEY REFERENCES period_closes (period),
    close_id           TEXT NOT NULL,
    approved_by        TEXT NOT NULL,
    approved_at_ms     BIGINT NOT NULL,
    draft_run_id       TEXT NOT NULL,
    draft_fingerprint  TEXT NOT NULL
);
