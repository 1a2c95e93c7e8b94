-- What `payout status` shows of the scheduler on a machine without the job files: each job's
-- command as the scheduler last loaded it, and the job files a `serve` could not load when it
-- started (replaced on each start of a `serve` on the same host and folder).

ALTER TABLE jobs_seen ADD COLUMN command TEXT
    CHECK (command IS NULL OR command IN ('run', 'close', 'send', 'invite', 'migrate'));

CREATE TABLE job_file_errors (
    host            TEXT NOT NULL,       -- the host name of the `serve` that read the folder
    jobs_dir        TEXT NOT NULL,       -- that folder, as an absolute path
    file            TEXT NOT NULL,
    field           TEXT NOT NULL,       -- the field at fault, `file` or `folder` for the whole
    problem         TEXT NOT NULL,
    recorded_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (host, jobs_dir, file)
);
