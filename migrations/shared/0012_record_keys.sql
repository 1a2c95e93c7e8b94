-- Record keys made with a secret of the store (keyed SHA-256, `ingest::record_key`), so that
-- the duplicate check's keys cannot be collided on purpose by whoever writes the revenue files.
-- Segments stored before keep their xxh3 keys, marked scheme 1; their keys are made again from
-- the segment's text when the record index needs them.

CREATE TABLE record_key_secret (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    secret  TEXT NOT NULL            -- 64 hex digits, made by the first ingest
);

ALTER TABLE revenue_segments ADD COLUMN key_scheme BIGINT NOT NULL DEFAULT 1
    CHECK (key_scheme IN (1, 2));    -- 1: xxh3 (before 0012), 2: keyed SHA-256
