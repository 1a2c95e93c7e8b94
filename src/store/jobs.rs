//! Job fires of the scheduler. A fire is claimed by inserting its (job, scheduled time) row;
//! the claim transaction first updates the job's `jobs_seen` row, which serialises claimers of
//! one job on both backends (row lock on PostgreSQL, the write lock on SQLite), so "is another
//! fire of this job still running?" is answered without a race. Times come from the
//! scheduler's clock, never from the store's.

use sqlx::Row;

use super::{Store, StoreResult};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFireSummary {
    pub last_fire_ms: Option<i64>,
    pub fires: i64,
}

impl Store {
    /// Records that `job` is known, returning when it was first seen.
    pub async fn job_first_seen(&self, job: &str, now_ms: i64) -> StoreResult<i64> {
        sqlx::query("INSERT INTO jobs_seen (job, first_seen_at_ms, last_claim_at_ms) VALUES ($1, $2, $2) ON CONFLICT (job) DO NOTHING")
            .bind(job.to_owned())
            .bind(now_ms)
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
        scheduled_at_ms: i64,
        instance: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> StoreResult<FireClaim> {
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

    /// Fires whose runner stopped renewing (a dead instance): (job, scheduled time).
    pub async fn abandoned_fires(&self, now_ms: i64) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT job, scheduled_at_ms FROM job_fires WHERE status = 'running' AND lease_expires_at_ms < $1 ORDER BY scheduled_at_ms")
            .bind(now_ms)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Takes over an abandoned fire; true when this instance got it.
    pub async fn take_over_fire(
        &self,
        job: &str,
        scheduled_at_ms: i64,
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
        .bind(scheduled_at_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    pub async fn renew_fire(
        &self,
        job: &str,
        scheduled_at_ms: i64,
        instance: &str,
        lease_expires_at_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE job_fires SET lease_expires_at_ms = $1 WHERE job = $2 AND scheduled_at_ms = $3 AND instance = $4 AND status = 'running'")
            .bind(lease_expires_at_ms)
            .bind(job.to_owned())
            .bind(scheduled_at_ms)
            .bind(instance.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn finish_fire(
        &self,
        job: &str,
        scheduled_at_ms: i64,
        instance: &str,
        status: &str,
        detail: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE job_fires SET status = $1, detail = $2, finished_at_ms = $3 \
             WHERE job = $4 AND scheduled_at_ms = $5 AND instance = $6 AND status = 'running'",
        )
        .bind(status.to_owned())
        .bind(detail.to_owned())
        .bind(now_ms)
        .bind(job.to_owned())
        .bind(scheduled_at_ms)
        .bind(instance.to_owned())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn job_fire_summary(&self, job: &str) -> StoreResult<JobFireSummary> {
        let row =
            sqlx::query("SELECT MAX(scheduled_at_ms), COUNT(*) FROM job_fires WHERE job = $1")
                .bind(job.to_owned())
                .fetch_one(self.pool())
                .await?;
        Ok(JobFireSummary {
            last_fire_ms: row.try_get(0)?,
            fires: row.try_get(1)?,
        })
    }

    /// Every recorded fire of `job`: (scheduled time, status), in order.
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
