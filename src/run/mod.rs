//! The orchestration of `run`, `preview` and `close` (SPEC §4): the only place that calls
//! ingest, the pure rules, the store and the report writers together. Every step is safe to
//! repeat: a crash at any point is finished by running the same command again. Only the
//! command layer (`commands`, `resend`) imports it; the rules it calls never see the store.
//!
//! - `ingest`: the one loop that reads and checks revenue files, and the sink that stores
//!   them, one transaction a file;
//! - `compute`: a period computed from the store, segment by segment, with the line report;
//! - `draft`: `run`, the draft reports and their fingerprint;
//! - `preview`: the draft from the input folder alone, through the same ingest loop;
//! - `close`: `close` and the statement recipients;
//! - `guard`: the pure refusals of `close` (not ended, draft changed, missing partners);
//! - `review`: the review pack of a report folder (`changes.csv`, `manifest.json`).

mod close;
mod compute;
mod draft;
pub mod guard;
mod ingest;
mod preview;
mod review;

pub use close::{CloseResult, close, statement_recipients};
pub use draft::{RunOutcome, run};
pub use ingest::{IngestSummary, ingest};
pub use preview::preview;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::domain::period::Period;
use crate::domain::status;
use crate::earnings;
use crate::ingest::MasterData;
use crate::ingest::master::InputFile;
use crate::store::Store;

/// The line-level report of a period.
const LINE_REPORT: &str = "earnings_lines.parquet";
/// The name of the lease that serialises every change of ledger state.
const LEDGER_LEASE: &str = "ledger";
/// How long a command waits for another instance's run or close to finish.
const LEDGER_LEASE_WAIT: Duration = Duration::from_secs(30 * 60);

/// Where a command reads and writes.
#[derive(Debug, Clone)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub reports_dir: PathBuf,
    /// Start every CSV report with a UTF-8 byte-order mark (`--csv-bom`; default off).
    pub csv_bom: bool,
    /// Who issues the statements a close renders (`[issuer]` of `payout.toml`).
    pub issuer: crate::domain::statement::Issuer,
}

/// Test hook: with `PAYOUT_FAILPOINT=<name>` the process dies at that point as under `kill -9`
/// (no destructor, no rollback), so tests can prove that re-running finishes the work.
fn failpoint(name: &str) {
    if std::env::var("PAYOUT_FAILPOINT").is_ok_and(|point| point == name) {
        std::process::abort();
    }
}

fn load_master(data_dir: &Path) -> anyhow::Result<MasterData> {
    let master = MasterData::load(data_dir)
        .with_context(|| format!("reading master data in {}", data_dir.display()))?;
    earnings::check_configuration(&master).context("checking programs.toml")?;
    Ok(master)
}

async fn with_run<T>(
    store: &Store,
    command: &str,
    period: Period,
    inputs_master: &[InputFile],
    work: impl AsyncFnOnce(&str) -> anyhow::Result<(T, Vec<InputFile>)>,
) -> anyhow::Result<T> {
    let run_id = store.start_run(command, Some(period)).await?;
    let result = work(&run_id).await;
    match &result {
        Ok((_, revenue_inputs)) => {
            let mut inputs = inputs_master.to_vec();
            inputs.extend(revenue_inputs.iter().cloned());
            store.record_inputs(&run_id, &inputs).await?;
            store
                .finish_run(&run_id, status::RunOutcome::Succeeded, "")
                .await?;
        }
        Err(e) => {
            // The failure is what the operator needs; a failure to record it is only logged.
            if let Err(record) = store
                .finish_run(&run_id, status::RunOutcome::Failed, &format!("{e:#}"))
                .await
            {
                tracing::error!(error = %record, "could not record the failed run");
            }
        }
    }
    result.map(|(value, _)| value)
}

/// Records a run that failed before it could start (master data unreadable or inconsistent),
/// with its one-line reason, so that `status` shows it; returns the failure.
async fn failed_before_start(
    store: &Store,
    command: &str,
    period: Period,
    failure: anyhow::Error,
) -> anyhow::Error {
    let detail = format!("{failure:#}").replace('\n', " ");
    let recorded = async {
        let run_id = store.start_run(command, Some(period)).await?;
        store
            .finish_run(&run_id, status::RunOutcome::Failed, &detail)
            .await
    };
    // The failure is what the operator needs; a failure to record it is only logged.
    if let Err(record) = recorded.await {
        tracing::error!(error = %record, "could not record the failed run");
    }
    failure
}
