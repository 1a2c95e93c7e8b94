//! Job fires of the scheduler. A fire is claimed by inserting its (job, scheduled time) row;
//! the claim transaction first updates the job's `jobs_seen` row, which serialises claimers of
//! one job on both backends (row lock on PostgreSQL, the write lock on SQLite), so "is another
//! fire of this job still running?" is answered without a race. Times come from the
//! scheduler's clock, never from the store's.
//!
//! A fire is keyed by its nominal scheduled second (`FireKey`), never by the instant of the
//! tick that found it: instances whose clocks tick at different fractions of a second must
//! claim the same row. The store also keeps what `payout status` shows of the scheduler on a
//! machine without the job files: each job's command and the job files a `serve` could not load.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::domain::status::FireStatus;

/// Milliseconds in the scheduled second a fire is keyed by.
const MS_PER_SECOND: i64 = 1_000;

/// The key of a fire of a job: its scheduled time in UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FireKey(i64);

impl FireKey {
    /// The key of a new claim: the nominal scheduled second of `scheduled_at`, its sub-second
    /// part dropped (12:00:03.004 and 12:00:03.950 are the same fire).
    pub fn nominal(scheduled_at: DateTime<Utc>) -> Self {
        Self(
            scheduled_at
                .timestamp_millis()
                .div_euclid(MS_PER_SECOND)
                .saturating_mul(MS_PER_SECOND),
        )
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// The scheduled instant; `None` only for a stored value beyond chrono's range.
    pub fn instant(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.0)
    }
}

/// What the store knows of one job, with or without its file at hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRecord {
    /// The command as the scheduler last recorded it (`None` for jobs seen before it did).
    pub command: Option<String>,
    pub fires: i64,
    pub last_fire_ms: Option<i64>,
    /// The latest fire's status and detail.
    pub last_status: Option<FireStatus>,
    pub last_detail: Option<String>,
}

/// A job file that a `serve` could not load, as it recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedJobFileError {
    pub host: String,
    pub file: String,
    pub field: String,
    pub problem: String,
    pub recorded_at_ms: i64,
}

/// What a claim decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireClaim {
    /// This instance runs the fire.
    Run,
    /// Another instance already claimed this fire.
    Taken,
    /// Recorded as skipped: an earlier fire of the job is still running.
    SkippedBusy,
}

impl Store {
    /// Records that `job` (running `command`) is known, returning when it was first seen.
    pub async fn job_first_seen(&self, job: &str, command: &str, now_ms: i64) -> StoreResult<i64> {
        sqlx::query(
            "INSERT INTO jobs_seen (job, first_seen_at_ms, last_claim_at_ms, command) VALUES ($1, $2, $2, $3) \
             ON CONFLICT (job) DO UPDATE SET command = excluded.command",
        )
        .bind(job.to_owned())
        .bind(now_ms)
        .bind(command.to_owned())
        .execute(self.pool())
        .await?;
        let row = sqlx::query("SELECT first_seen_at_ms FROM jobs_seen WHERE job = $1")
            .bind(job.to_owned())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Claims the fire (job, scheduled time) for `instance`.
    pub async fn claim_fire(
        &self,
        job: &str,
        fire: FireKey,
        instance: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> StoreResult<FireClaim> {
        let scheduled_at_ms = fire.millis();
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE jobs_seen SET last_claim_at_ms = $1 WHERE job = $2")
            .bind(now_ms)
            .bind(job.to_owned())
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO job_fires (job, scheduled_at_ms, instance, status, started_at_ms, lease_expires_at_ms, attempts) \
             VALUES ($1, $2, $3, 'running', $4, $5, 1) ON CONFLICT (job, scheduled_at_ms) DO NOTHING",
        )
        .bind(job.to_owned())
        .bind(scheduled_at_ms)
        .bind(instance.to_owned())
        .bind(now_ms)
        .bind(now_ms + lease_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(FireClaim::Taken);
        }
        let busy = sqlx::query(
            "SELECT 1 FROM job_fires WHERE job = $1 AND scheduled_at_ms <> $2 AND status = 'running' AND lease_expires_at_ms >= $3",
        )
        .bind(job.to_owned())
        .bind(scheduled_at_ms)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if busy {
            sqlx::query(
                "UPDATE job_fires SET status = 'skipped', finished_at_ms = $1, detail = 'an earlier fire of this job was still running' \
                 WHERE job = $2 AND scheduled_at_ms = $3",
            )
            .bind(now_ms)
            .bind(job.to_owned())
            .bind(scheduled_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(if busy {
            FireClaim::SkippedBusy
        } else {
            FireClaim::Run
        })
    }

    /// Fires whose runner stopped renewing (a dead instance): (job, key as stored).
    pub async fn abandoned_fires(&self, now_ms: i64) -> StoreResult<Vec<(String, FireKey)>> {
        let rows = sqlx::query("SELECT job, scheduled_at_ms FROM job_fires WHERE status = 'running' AND lease_expires_at_ms < $1 ORDER BY scheduled_at_ms")
            .bind(now_ms)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, FireKey(r.try_get(1)?))))
            .collect()
    }

    /// Takes over an abandoned fire; true when this instance got it.
    pub async fn take_over_fire(
        &self,
        job: &str,
        fire: FireKey,
        instance: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> StoreResult<bool> {
        let taken = sqlx::query(
            "UPDATE job_fires SET instance = $1, lease_expires_at_ms = $2, attempts = attempts + 1 \
             WHERE job = $3 AND scheduled_at_ms = $4 AND status = 'running' AND lease_expires_at_ms < $5",
        )
        .bind(instance.to_owned())
        .bind(now_ms + lease_ms)
        .bind(job.to_owned())
        .bind(fire.millis())
        .bind(now_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    pub async fn renew_fire(
        &self,
        job: &str,
        fire: FireKey,
        instance: &str,
        lease_expires_at_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE job_fires SET lease_expires_at_ms = $1 WHERE job = $2 AND scheduled_at_ms = $3 AND instance = $4 AND status = 'running'")
            .bind(lease_expires_at_ms)
            .bind(job.to_owned())
            .bind(fire.millis())
            .bind(instance.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn finish_fire(
        &self,
        job: &str,
        fire: FireKey,
        instance: &str,
        status: FireStatus,
        detail: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE job_fires SET status = $1, detail = $2, finished_at_ms = $3 \
             WHERE job = $4 AND scheduled_at_ms = $5 AND instance = $6 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(detail.to_owned())
        .bind(now_ms)
        .bind(job.to_owned())
        .bind(fire.millis())
        .bind(instance.to_owned())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every job the store knows (seen by a scheduler or with recorded fires), by name: its
    /// recorded command, how many fires are recorded and the latest one's outcome.
    pub async fn job_records(&self) -> StoreResult<BTreeMap<String, JobRecord>> {
        let mut jobs: BTreeMap<String, JobRecord> = BTreeMap::new();
        for row in sqlx::query("SELECT job, command FROM jobs_seen")
            .fetch_all(self.pool())
            .await?
        {
            jobs.entry(row.try_get(0)?).or_default().command = row.try_get(1)?;
        }
        let latest = sqlx::query(
            "SELECT f.job, counts.fires, f.scheduled_at_ms, f.status, f.detail FROM job_fires f \
             JOIN (SELECT job, COUNT(*) AS fires, MAX(scheduled_at_ms) AS last_ms FROM job_fires GROUP BY job) counts \
             ON f.job = counts.job AND f.scheduled_at_ms = counts.last_ms",
        )
        .fetch_all(self.pool())
        .await?;
        for row in latest {
            let record = jobs.entry(row.try_get(0)?).or_default();
            record.fires = row.try_get(1)?;
            record.last_fire_ms = Some(row.try_get(2)?);
            let status: String = row.try_get(3)?;
            record.last_status = Some(
                FireStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("fire status `{status}`")))?,
            );
            record.last_detail = row
                .try_get::<Option<String>, _>(4)?
                .filter(|d| !d.is_empty());
        }
        Ok(jobs)
    }

    /// Replaces what a `serve` on this host reading `jobs_dir` recorded of job files it could
    /// not load with `errors` (file, field, problem), in one transaction.
    pub async fn record_job_file_errors(
        &self,
        jobs_dir: &str,
        errors: &[(String, String, String)],
        now_ms: i64,
    ) -> StoreResult<()> {
        let host = super::lease::host_name();
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM job_file_errors WHERE host = $1 AND jobs_dir = $2")
            .bind(host.clone())
            .bind(jobs_dir.to_owned())
            .execute(&mut *tx)
            .await?;
        for (file, field, problem) in errors {
            sqlx::query(
                "INSERT INTO job_file_errors (host, jobs_dir, file, field, problem, recorded_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (host, jobs_dir, file) DO UPDATE SET field = excluded.field, problem = excluded.problem, recorded_at_ms = excluded.recorded_at_ms",
            )
            .bind(host.clone())
            .bind(jobs_dir.to_owned())
            .bind(file.clone())
            .bind(field.clone())
            .bind(problem.clone())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Job files that `serve` instances could not load when they last started.
    pub async fn recorded_job_file_errors(&self) -> StoreResult<Vec<RecordedJobFileError>> {
        let rows = sqlx::query(
            "SELECT host, file, field, problem, recorded_at_ms FROM job_file_errors ORDER BY file, host",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecordedJobFileError {
                    host: r.try_get(0)?,
                    file: r.try_get(1)?,
                    field: r.try_get(2)?,
                    problem: r.try_get(3)?,
                    recorded_at_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Every recorded fire of `job`: (scheduled time, status as stored), in order.
    pub async fn job_fires(&self, job: &str) -> StoreResult<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT scheduled_at_ms, status FROM job_fires WHERE job = $1 ORDER BY scheduled_at_ms",
        )
        .bind(job.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}
