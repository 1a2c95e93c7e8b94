//! The orchestration of `run` and `close` (SPEC §4): the only place that calls ingest, the pure
//! rules, the store and the report writers together. Every step is safe to repeat: a crash at
//! any point is finished by running the same command again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::domain::partner::UserRole;
use crate::domain::period::Period;
use crate::earnings::{self, Detail, PeriodComputation};
use crate::ingest::MasterData;
use crate::ingest::master::InputFile;
use crate::ingest::revenue::{self, FileOutcome, RecordIndex, RowChecker};
use crate::ingest::segment;
use crate::notify::Renderer;
use crate::notify::statement::StatementRecord;
use crate::notify::templates::Language;
use crate::progress;
use crate::reports;
use crate::store::{CloseOutcome, ClosePlan, OutboxMessage, Store, StoredFile};

/// The line-level report of a period.
const LINE_REPORT: &str = "earnings_lines.parquet";
/// The name of the lease that serialises every change of ledger state.
const LEDGER_LEASE: &str = "ledger";
/// How long a command waits for another instance's run or close to finish.
const LEDGER_LEASE_WAIT: Duration = Duration::from_secs(30 * 60);
/// A close recomputes at most this many times when other closes keep moving its basis.
const MAX_CLOSE_ATTEMPTS: u32 = 3;

/// Where a command reads and writes.
#[derive(Debug, Clone)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub reports_dir: PathBuf,
}

/// What ingest did, for the operator.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestSummary {
    pub files_ingested: u64,
    pub files_rejected: u64,
    pub files_skipped: u64,
    pub rows: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub retried_resolved: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Draft {
        partners: usize,
        exceptions: usize,
    },
    /// The period is closed: its final reports stand, only new revenue was ingested.
    AlreadyClosed,
    /// Nothing the draft depends on changed since the last draft: its reports stand.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseResult {
    Closed { statements: usize, emails: usize },
    AlreadyClosed,
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

/// Ingests new revenue files and retries kept rejections (SPEC §2). Each file is one
/// transaction; a crash loses at most the file in progress, which the next run ingests.
pub async fn ingest(
    store: &Store,
    master: &MasterData,
    data_dir: &Path,
    run_id: &str,
) -> anyhow::Result<(IngestSummary, Vec<InputFile>)> {
    let mut summary = IngestSummary::default();
    let last_closed = store.last_closed().await?;
    let known = store.ingested_file_hashes().await?;
    let files = revenue::list_revenue_files(data_dir)
        .with_context(|| format!("listing {}/revenue", data_dir.display()))?;
    let pending = store.pending_retries().await?;
    // The record index (24 bytes a line ever ingested) is only needed to check new rows.
    let index = if pending.is_empty() && files.iter().all(|f| known.contains(&f.sha256)) {
        RecordIndex::default()
    } else {
        store
            .record_index()
            .await
            .context("loading the record index")?
    };
    let mut checker = RowChecker::new(master, last_closed, index);

    if !pending.is_empty() {
        let (segments, resolutions) = revenue::retry_rows(&pending, &mut checker)?;
        store
            .store_retry(run_id, segments, &resolutions)
            .await
            .context("storing retried rows")?;
        checker.index.commit();
        summary.retried_resolved = resolutions
            .iter()
            .filter(|(_, r)| *r == revenue::RetryResolution::Resolved)
            .count() as u64;
    }

    let mut inputs = Vec::with_capacity(files.len());
    let bar = progress::bar(files.len() as u64, "revenue files");
    for file in &files {
        bar.inc(1);
        inputs.push(InputFile {
            name: file.source_file.clone(),
            sha256: file.sha256.clone(),
        });
        if known.contains(&file.sha256) {
            summary.files_skipped += 1;
            continue;
        }
        let started = std::time::Instant::now();
        let outcome = match revenue::ingest_file(file, &mut checker) {
            FileOutcome::Ingested(ingest) => {
                summary.files_ingested += 1;
                summary.rows += ingest.rows;
                summary.accepted += ingest.accepted;
                summary.rejected += ingest.rejections.len() as u64;
                summary.duplicates += ingest.duplicates;
                StoredFile::Ingested(ingest)
            }
            FileOutcome::Rejected(detail) => {
                tracing::warn!(file = %file.source_file, %detail, "revenue file rejected");
                summary.files_rejected += 1;
                StoredFile::Rejected(detail)
            }
        };
        let checked = started.elapsed();
        let stored = store
            .store_file(run_id, &file.source_file, &file.sha256, outcome)
            .await
            .with_context(|| format!("storing {}", file.source_file))?;
        tracing::debug!(file = %file.source_file, ?checked, stored = ?started.elapsed() - checked, "ingest timing");
        failpoint("ingest-after-file");
        if stored {
            checker.index.commit();
        } else {
            checker.index.discard();
        }
        tracing::info!(file = %file.source_file, "ingested");
    }
    Ok((summary, inputs))
}

/// Computes `period` from the store: its own lines, unbooked late lines, and the balances of
/// the last closed period, one segment at a time, writing the line report to `lines_path` as
/// it goes. Returns the ids of segments whose late lines it booked.
async fn compute(
    store: &Store,
    master: &MasterData,
    period: Period,
    detail: Detail,
    lines_path: &Path,
) -> anyhow::Result<(PeriodComputation, Vec<i64>)> {
    let stored = store.segments_for(period).await?;
    let mut computer = earnings::PeriodComputer::new(master, period, detail)?;
    let mut lines = LineReport::create(lines_path)?;
    let mut late_segments = Vec::new();
    let bar = progress::bar(stored.len() as u64, "revenue segments");
    let [mut fetching, mut decoding, mut adding, mut writing] = [Duration::ZERO; 4];
    for segment in stored {
        bar.inc(1);
        let started = std::time::Instant::now();
        let data = store.segment_data(segment.id).await?;
        fetching += started.elapsed();
        let started = std::time::Instant::now();
        let frame = segment::decode(&data)
            .with_context(|| format!("reading revenue segment {}", segment.id))?;
        drop(data);
        decoding += started.elapsed();
        if segment.late_unbooked {
            late_segments.push(segment.id);
        }
        let started = std::time::Instant::now();
        let batch = computer
            .add_segment(&frame, segment.late_unbooked)
            .with_context(|| format!("computing {period}"))?;
        adding += started.elapsed();
        let started = std::time::Instant::now();
        lines.write(&batch)?;
        writing += started.elapsed();
    }
    let started = std::time::Instant::now();
    lines.finish()?;
    writing += started.elapsed();
    tracing::debug!(?fetching, ?decoding, ?adding, ?writing, "compute timing");
    let balances = store.balances().await?;
    let computation = computer
        .finish(&balances)
        .with_context(|| format!("computing {period}"))?;
    Ok((computation, late_segments))
}

/// `earnings_lines.parquet`, written batch by batch.
struct LineReport {
    file: std::fs::File,
    writer: Option<polars::prelude::BatchedWriter<std::fs::File>>,
}

impl LineReport {
    fn create(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self {
            file: std::fs::File::create(path)?,
            writer: None,
        })
    }

    fn write(&mut self, batch: &polars::prelude::DataFrame) -> anyhow::Result<()> {
        if batch.height() == 0 {
            return Ok(());
        }
        if self.writer.is_none() {
            let schema = batch.schema();
            self.writer =
                Some(polars::prelude::ParquetWriter::new(self.file.try_clone()?).batched(schema)?);
        }
        if let Some(writer) = &mut self.writer {
            writer.write_batch(batch)?;
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self.writer {
            Some(writer) => {
                writer.finish()?;
            }
            None => {
                let mut empty = earnings::empty_lines()?;
                polars::prelude::ParquetWriter::new(self.file.try_clone()?).finish(&mut empty)?;
            }
        }
        self.file.sync_all()?;
        Ok(())
    }
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
            store.finish_run(&run_id, "succeeded", "").await?;
        }
        Err(e) => {
            // The failure is what the operator needs; a failure to record it is only logged.
            if let Err(record) = store.finish_run(&run_id, "failed", &format!("{e:#}")).await {
                tracing::error!(error = %record, "could not record the failed run");
            }
        }
    }
    result.map(|(value, _)| value)
}

/// `payout run --period P`: ingest, compute and write the draft reports. Changes no balance
/// and sends nothing (SPEC §4).
pub async fn run(
    store: &Store,
    paths: &Paths,
    period: Period,
) -> anyhow::Result<(RunOutcome, IngestSummary)> {
    let master = load_master(&paths.data_dir)?;
    let lease = store.acquire_lease(LEDGER_LEASE, LEDGER_LEASE_WAIT).await?;
    let result = with_run(store, "run", period, &master.files, async |run_id| {
        let (summary, inputs) = ingest(store, &master, &paths.data_dir, run_id).await?;
        let last_closed = store.last_closed().await?;
        if last_closed.is_some_and(|closed| period <= closed) {
            return Ok(((RunOutcome::AlreadyClosed, summary), inputs));
        }
        let period_text = period.to_string();
        // Nothing the draft depends on changed since the last one: its reports stand as they are.
        let mut fingerprint = format!(
            "{}|{period}|{}",
            env!("CARGO_PKG_VERSION"),
            store.ledger_version().await?
        );
        for file in &master.files {
            fingerprint.push_str(&format!("|{}={}", file.name, file.sha256));
        }
        let published = paths
            .reports_dir
            .join(&period_text)
            .join("payouts.csv")
            .exists();
        if published
            && store.last_draft_fingerprint(&period_text).await?.as_deref()
                == Some(fingerprint.as_str())
        {
            store.set_fingerprint(run_id, &fingerprint).await?;
            return Ok(((RunOutcome::Unchanged, summary), inputs));
        }
        reports::remove_stale_staging(&paths.reports_dir, &period_text)?;
        let staged =
            reports::staging_dir(&paths.reports_dir, &period_text, &format!("draft-{run_id}"));
        let (computation, _) = compute(
            store,
            &master,
            period,
            Detail::Payouts,
            &staged.join(LINE_REPORT),
        )
        .await?;
        let exceptions = store.open_exceptions().await?;
        reports::write_period_reports(&staged, &computation, &exceptions)
            .with_context(|| format!("writing reports to {}", staged.display()))?;
        failpoint("run-before-publish");
        reports::publish(&paths.reports_dir, &period_text, &staged)
            .context("publishing reports")?;
        store.set_fingerprint(run_id, &fingerprint).await?;
        let outcome = RunOutcome::Draft {
            partners: computation.payouts.len(),
            exceptions: exceptions.len() + computation.fx_gaps.len(),
        };
        Ok(((outcome, summary), inputs))
    })
    .await;
    lease.release().await?;
    result
}

/// Who receives a partner's statement: its active incentive admins and users, or
/// `admin_email` when it has none (SPEC §3).
pub fn statement_recipients(master: &MasterData, partner_id: &str) -> Vec<(String, String)> {
    let mut recipients: Vec<(String, String)> = master
        .users
        .get(partner_id)
        .into_iter()
        .flatten()
        .filter(|u| {
            u.active && matches!(u.role, UserRole::IncentiveAdmin | UserRole::IncentiveUser)
        })
        .map(|u| (u.email.clone(), u.name.clone()))
        .collect();
    // One message per address, however it is capitalised.
    recipients.sort_by_key(|(email, name)| (email.to_ascii_lowercase(), name.clone()));
    recipients.dedup_by(|a, b| a.0.eq_ignore_ascii_case(&b.0));
    if recipients.is_empty()
        && let Some(partner) = master.partners.get(partner_id)
    {
        recipients.push((partner.admin_email.clone(), partner.name.clone()));
    }
    recipients
}

/// `payout close --period P`: finalise P in one transaction and queue its statements (SPEC §4).
pub async fn close(store: &Store, paths: &Paths, period: Period) -> anyhow::Result<CloseResult> {
    let master = load_master(&paths.data_dir)?;
    let lease = store.acquire_lease(LEDGER_LEASE, LEDGER_LEASE_WAIT).await?;
    let result = close_locked(store, paths, &master, period).await;
    lease.release().await?;
    result
}

async fn close_locked(
    store: &Store,
    paths: &Paths,
    master: &MasterData,
    period: Period,
) -> anyhow::Result<CloseResult> {
    let period_text = period.to_string();
    if let Some(close_id) = store.close_id(period).await? {
        // Closed already: finish publishing the final reports if a crash interrupted it.
        let staged = reports::staging_dir(
            &paths.reports_dir,
            &period_text,
            &format!("close-{close_id}"),
        );
        reports::publish(&paths.reports_dir, &period_text, &staged)?;
        return Ok(CloseResult::AlreadyClosed);
    }
    if let Some(closed) = store.last_closed().await?
        && period < closed
    {
        bail!(
            "period {period} is before the last closed period {closed}: it can no longer be closed; its late revenue is booked as adjustments"
        );
    }
    reports::remove_stale_staging(&paths.reports_dir, &period_text)?;
    with_run(store, "close", period, &master.files, async |run_id| {
        let (_, inputs) = ingest(store, master, &paths.data_dir, run_id).await?;
        for _ in 0..MAX_CLOSE_ATTEMPTS {
            let basis = store.last_closed().await?;
            if let Some(open) = store.earlier_open_revenue(basis, period).await? {
                bail!("cannot close {period}: the earlier period {open} has revenue and is still open; close it first");
            }
            let close_id = uuid::Uuid::new_v4().to_string();
            let staged = reports::staging_dir(&paths.reports_dir, &period_text, &format!("close-{close_id}"));
            let (computation, late_segments) = compute(store, master, period, Detail::Statements, &staged.join(LINE_REPORT)).await?;
            if let Some(gap) = computation.fx_gaps.first() {
                bail!(
                    "cannot close {period}: {} ingested line(s) have no FX rate any more (first: {} line {}: {})",
                    computation.fx_gaps.len(),
                    gap.source_file,
                    gap.line,
                    gap.detail
                );
            }
            let statements: Vec<StatementRecord> = computation
                .payouts
                .iter()
                .map(|figures| {
                    let partner = master.partners.get(&figures.partner_id);
                    let language = Language::for_country(partner.map_or("", |p| p.country.as_str()));
                    let program_name = partner
                        .and_then(|p| master.programs.for_type(p.partner_type))
                        .map_or("", |p| p.name.as_str());
                    StatementRecord::from_figures(figures, period, program_name, language)
                })
                .collect();
            let messages: Vec<OutboxMessage> = computation
                .payouts
                .iter()
                .flat_map(|p| {
                    statement_recipients(master, &p.partner_id).into_iter().map(|(recipient, recipient_name)| OutboxMessage {
                        kind: "statement",
                        partner_id: p.partner_id.clone(),
                        scope: period_text.clone(),
                        recipient,
                        recipient_name,
                        // The statement itself (language included) is read from the store at send.
                        context: serde_json::json!({}),
                    })
                })
                .collect();
            let exceptions = store.open_exceptions().await?;
            reports::write_period_reports(&staged, &computation, &exceptions)
                .with_context(|| format!("writing reports to {}", staged.display()))?;
            Renderer::new()?.write_statements(&staged.join("statements"), &statements)?;
            let plan = ClosePlan {
                period,
                close_id: &close_id,
                run_id,
                basis,
                statements: &statements,
                booked_segments: &late_segments,
                messages: &messages,
            };
            failpoint("close-before-commit");
            match store.close_period(plan).await.with_context(|| format!("closing {period}"))? {
                CloseOutcome::Closed => {
                    failpoint("close-after-commit");
                    reports::publish(&paths.reports_dir, &period_text, &staged).context("publishing reports")?;
                    let result = CloseResult::Closed { statements: computation.payouts.len(), emails: messages.len() };
                    return Ok((result, inputs));
                }
                CloseOutcome::AlreadyClosed => {
                    std::fs::remove_dir_all(&staged)?;
                    return Ok((CloseResult::AlreadyClosed, inputs));
                }
                CloseOutcome::BasisChanged => {
                    std::fs::remove_dir_all(&staged)?;
                    tracing::warn!(%period, "another close moved the basis; computing again");
                }
            }
        }
        bail!("cannot close {period}: other closes kept changing the balances ({MAX_CLOSE_ATTEMPTS} attempts)")
    })
    .await
}
