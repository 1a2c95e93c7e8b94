-- What a run read past without using it (master-data rows of partners not in partners.csv,
-- entries of revenue/ that are not revenue files), listed by `payout status`. No money here.
CREATE TABLE run_warnings (
    run_id   TEXT NOT NULL REFERENCES runs (id),
    seq      BIGINT NOT NULL,               -- order in which the run found them
    file     TEXT NOT NULL,                 -- relative to the data directory
    line     BIGINT,                        -- physical line, when about a row
    message  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
