-- The statuses the engine records, as closed sets (`domain::status`): a run's outcome, a
-- scheduled fire's status, an outbox message's status and kind. Existing rows are checked as
-- the constraints are added.

ALTER TABLE runs ADD CONSTRAINT runs_outcome_check
    CHECK (outcome IN ('running', 'succeeded', 'failed'));

ALTER TABLE job_fires ADD CONSTRAINT job_fires_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'skipped'));

ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'failed'));
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('statement', 'invitation', 'migration', 'reminder'));
