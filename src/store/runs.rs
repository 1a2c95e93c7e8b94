//! Runs in the store: a run's start and end, the input files it read and the warnings it
//! found (SPEC §6). Each call is one statement or one transaction; nothing here decides what a
//! run does, and nothing here reads inputs or renders anything.

use super::{Arg, Store, StoreResult, now_ms};
use crate::domain::period::Period;
use crate::ingest::master::InputFile;
use crate::ingest::warning::Warning;

impl Store {
    pub async fn start_run(&self, command: &str, period: Option<Period>) -> StoreResult<String> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO runs (id, command, period, started_at_ms, outcome) VALUES ($1, $2, $3, $4, 'running')")
            .bind(id.clone())
            .bind(command.to_owned())
            .bind(period.map(|p| p.to_string()))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn record_inputs(&self, run_id: &str, inputs: &[InputFile]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let rows = inputs
            .iter()
            .map(|f| {
                vec![
                    Arg::Text(run_id.to_owned()),
                    Arg::Text(f.name.clone()),
                    Arg::Text(f.sha256.clone()),
                ]
            })
            .collect();
        Self::insert_rows(&mut tx, "run_inputs", &["run_id", "file", "sha256"], rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores the run's warnings (already bounded by `warning::MAX_WARNINGS`), in order.
    pub async fn record_warnings(&self, run_id: &str, warnings: &[Warning]) -> StoreResult<()> {
        if warnings.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let rows = warnings
            .iter()
            .enumerate()
            .map(|(seq, w)| {
                vec![
                    Arg::Text(run_id.to_owned()),
                    Arg::Int(seq as i64),
                    Arg::Text(w.file.clone()),
                    Arg::OptInt(w.line.map(|l| l as i64)),
                    Arg::Text(w.message.clone()),
                ]
            })
            .collect();
        Self::insert_rows(
            &mut tx,
            "run_warnings",
            &["run_id", "seq", "file", "line", "message"],
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn finish_run(&self, run_id: &str, outcome: &str, detail: &str) -> StoreResult<()> {
        sqlx::query("UPDATE runs SET finished_at_ms = $1, outcome = $2, detail = $3 WHERE id = $4")
            .bind(now_ms())
            .bind(outcome.to_owned())
            .bind(detail.to_owned())
            .bind(run_id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
