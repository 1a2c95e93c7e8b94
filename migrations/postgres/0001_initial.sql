-- payout state (PostgreSQL). Money is TEXT decimal, never REAL. Revenue lines live in Parquet
-- segments, one blob per chunk of lines, never one SQL row per line.

CREATE TABLE revenue_files (
    sha256          TEXT PRIMARY KEY,
    source_file     TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    ingested_at_ms  BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('ingested', 'rejected')),
    rows_total      BIGINT NOT NULL,
    rows_accepted   BIGINT NOT NULL,
    rows_rejected   BIGINT NOT NULL,
    rows_duplicate  BIGINT NOT NULL
);

CREATE TABLE revenue_segments (
    id             BIGSERIAL PRIMARY KEY,
    origin         TEXT NOT NULL,             -- sha256 of the file, or 'retry:<run id>'
    rows           BIGINT NOT NULL,
    late_rows      BIGINT NOT NULL,
    booked_period  TEXT,                      -- closed period its late lines were booked into
    data           BYTEA NOT NULL,             -- Parquet (zstd)
    record_keys    BYTEA NOT NULL              -- 24 bytes a line: id hash, content hash
);

CREATE TABLE segment_months (
    segment_id     BIGINT NOT NULL REFERENCES revenue_segments (id),
    billing_month  TEXT NOT NULL,
    late           BIGINT NOT NULL,
    rows           BIGINT NOT NULL,
    PRIMARY KEY (segment_id, billing_month, late)
);
CREATE INDEX segment_months_by_month ON segment_months (billing_month, late);

CREATE TABLE rejections (
    id              BIGSERIAL PRIMARY KEY,
    source_file     TEXT NOT NULL,
    file_sha256     TEXT NOT NULL,
    line            BIGINT,
    record_id       TEXT NOT NULL,
    reason          TEXT NOT NULL,
    detail          TEXT NOT NULL,
    raw             TEXT NOT NULL,
    fields          TEXT,                     -- JSON array of the seven fields, for retries
    status          TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    run_id          TEXT NOT NULL,
    resolved_run_id TEXT
);
CREATE INDEX rejections_open ON rejections (status, reason);

CREATE TABLE runs (
    id             TEXT PRIMARY KEY,
    command        TEXT NOT NULL,
    period         TEXT,
    started_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT,
    outcome        TEXT NOT NULL,             -- running | succeeded | failed
    detail         TEXT
);

CREATE TABLE run_inputs (
    run_id  TEXT NOT NULL REFERENCES runs (id),
    file    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    PRIMARY KEY (run_id, file)
);

CREATE TABLE period_closes (
    period          TEXT PRIMARY KEY,
    close_id        TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    closed_at_ms    BIGINT NOT NULL,
    basis_period    TEXT                      -- last closed period before this one
);

CREATE TABLE statements (
    period        TEXT NOT NULL,
    partner_id    TEXT NOT NULL,
    partner_name  TEXT NOT NULL,
    program_id    TEXT NOT NULL,
    currency      TEXT NOT NULL,
    earned        TEXT NOT NULL,
    adjustments   TEXT NOT NULL,
    released      TEXT NOT NULL,
    carried_in    TEXT NOT NULL,
    payable       TEXT NOT NULL,
    carried       TEXT NOT NULL,
    held          TEXT NOT NULL,
    status        TEXT NOT NULL,
    hold_reasons  TEXT NOT NULL,
    PRIMARY KEY (period, partner_id)
);

CREATE TABLE statement_lines (
    period            TEXT NOT NULL,
    partner_id        TEXT NOT NULL,
    position          BIGINT NOT NULL,
    booking           TEXT NOT NULL,
    product_category  TEXT NOT NULL,
    line_currency     TEXT NOT NULL,
    rate              TEXT,
    lines             BIGINT NOT NULL,
    revenue           TEXT NOT NULL,
    earning           TEXT NOT NULL,
    PRIMARY KEY (period, partner_id, position)
);

CREATE TABLE balances (
    partner_id  TEXT PRIMARY KEY,
    currency    TEXT NOT NULL,
    held        TEXT NOT NULL,
    carried     TEXT NOT NULL,
    period      TEXT NOT NULL                 -- the closed period that left them
);

CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT NOT NULL,              -- statement | invitation | migration | reminder
    partner_id    TEXT NOT NULL,
    scope         TEXT NOT NULL,              -- period, program or wave
    recipient     TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    status        TEXT NOT NULL,              -- queued | sent | failed
    attempts      BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (kind, partner_id, scope, recipient)
);

CREATE TABLE leases (
    name           TEXT PRIMARY KEY,
    holder         TEXT NOT NULL,
    host           TEXT NOT NULL,
    pid            BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);
