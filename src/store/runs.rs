//! Runs in the store: a run's start and end, the input files it read and the warnings it
//! found (SPEC §6). Each call is one statement or one transaction; nothing here decides what a
//! run does, and nothing here reads inputs or renders anything.

use sqlx::Row;

use super::insert::InsertInto;
use super::{Store, StoreResult, parse_period_opt};
use crate::domain::master::InputFile;
use crate::domain::period::Period;
use crate::domain::status::RunOutcome;
use crate::domain::warning::Warning;

const RUN_INPUTS: InsertInto = InsertInto {
    table: "run_inputs",
    columns: &["run_id", "file", "sha256"],
    suffix: "",
};

const RUN_WARNINGS: InsertInto = InsertInto {
    table: "run_warnings",
    columns: &["run_id", "seq", "file", "line", "message"],
    suffix: "",
};

impl Store {
    pub async fn start_run(&self, command: &str, period: Option<Period>) -> StoreResult<String> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO runs (id, command, period, started_at_ms, outcome) VALUES ($1, $2, $3, $4, 'running')")
            .bind(id.clone())
            .bind(command.to_owned())
            .bind(period.map(|p| p.to_string()))
            .bind(self.now_ms())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn record_inputs(&self, run_id: &str, inputs: &[InputFile]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        RUN_INPUTS
            .execute(&mut tx, inputs, |mut row, file| {
                row.push_bind(run_id.to_owned())
                    .push_bind(file.name.clone())
                    .push_bind(file.sha256.clone());
            })
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores the run's warnings (already bounded by `warning::MAX_WARNINGS`), in order.
    pub async fn record_warnings(&self, run_id: &str, warnings: &[Warning]) -> StoreResult<()> {
        if warnings.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        RUN_WARNINGS
            .execute(
                &mut tx,
                warnings.iter().enumerate(),
                |mut row, (seq, warning)| {
                    row.push_bind(run_id.to_owned())
                        .push_bind(seq as i64)
                        .push_bind(warning.file.clone())
                        .push_bind(warning.line.map(|l| l as i64))
                        .push_bind(warning.message.clone());
                },
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records how the run ended.
    pub async fn finish_run(
        &self,
        run_id: &str,
        outcome: RunOutcome,
        detail: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE runs SET finished_at_ms = $1, outcome = $2, detail = $3 WHERE id = $4")
            .bind(self.now_ms())
            .bind(outcome.as_str())
            .bind(detail.to_owned())
            .bind(run_id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The period of the latest successful `run` or `close`.
    pub async fn latest_run_period(&self) -> StoreResult<Option<Period>> {
        let row = sqlx::query(
            "SELECT period FROM runs WHERE command IN ('run', 'close') AND outcome = 'succeeded' AND period IS NOT NULL \
             ORDER BY started_at_ms DESC, id LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        parse_period_opt(row.map(|r| r.try_get(0)).transpose()?)
    }
}
