//! The orchestration of `run` and `close` (SPEC §4): the only place that calls ingest, the pure
//! rules, the store and the report writers together. Every step is safe to repeat: a crash at
//! any point is finished by running the same command again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use polars::prelude::DataFrame;
use rayon::prelude::*;
use tokio::task::JoinHandle;

use crate::close_guard::{self, Fingerprint, Today};
use crate::domain::money::format_minor;
use crate::domain::partner::UserRole;
use crate::domain::period::Period;
use crate::domain::reasons::RejectReason;
use crate::earnings::{self, Detail, MissingPartner, PeriodComputation};
use crate::ingest::MasterData;
use crate::ingest::master::InputFile;
use crate::ingest::segment;
use crate::ingest::warning::Warnings;
use crate::ingest::{self as revenue, FileReader, RecordIndex, RowChecker};
use crate::notify::Renderer;
use crate::notify::statement::StatementRecord;
use crate::notify::templates::Language;
use crate::progress;
use crate::reports;
use crate::store::{
    CloseOutcome, ClosePlan, ExceptionRow, FileWriter, MISSING_PARTNER_SOURCE, OutboxMessage,
    Store, StoreResult,
};

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
    /// What the run read past: master-data rows of unknown partners, skipped `revenue/`
    /// entries. Stored with the run and listed by `status`.
    pub warnings: Warnings,
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
    let (files, skipped) = revenue::list_revenue_files(data_dir)
        .with_context(|| format!("listing {}/revenue", data_dir.display()))?;
    summary.warnings.extend(&master.warnings);
    summary.warnings.extend(&skipped);
    store
        .record_warnings(run_id, &summary.warnings.listed())
        .await
        .context("recording the run's warnings")?;
    let pending = store.pending_retries().await?;
    // The record index (24 bytes a line ever ingested) is only needed to check new rows.
    let index = if pending.is_empty() && files.iter().all(|f| known.contains(&f.sha256)) {
        RecordIndex::default()
    } else {
        let started = std::time::Instant::now();
        let index = store
            .record_index()
            .await
            .context("loading the record index")?;
        tracing::debug!(keys = index.len(), took = ?started.elapsed(), "record index loaded");
        index
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
        match ingest_file(store, run_id, file, &mut checker).await? {
            FileResult::Stored(ingest) => {
                failpoint("ingest-after-file");
                checker.index.commit();
                summary.files_ingested += 1;
                summary.rows += ingest.rows;
                summary.accepted += ingest.accepted;
                summary.rejected += ingest.rejected;
                summary.duplicates += ingest.duplicates;
            }
            FileResult::AlreadyStored => {
                checker.index.discard();
                summary.files_skipped += 1;
            }
            FileResult::Rejected(detail) => {
                checker.index.discard();
                tracing::warn!(file = %file.source_file, %detail, "revenue file rejected");
                failpoint("ingest-after-file");
                summary.files_rejected += 1;
            }
        }
        tracing::info!(file = %file.source_file, "ingested");
    }
    Ok((summary, inputs))
}

/// `payout preview --period P --out DIR`: the period's payouts from the input folder alone, as
/// if the store were empty (every file read afresh, no closed period, no balances). The same
/// checks and computation as `run`, minus the store and the line report; reading the next
/// block overlaps computing the last. Returns the number of payout rows and what was read.
pub fn preview(
    data_dir: &Path,
    period: Period,
    out: &Path,
) -> anyhow::Result<(usize, IngestSummary)> {
    let master = load_master(data_dir)?;
    let (files, skipped) = revenue::list_revenue_files_unhashed(data_dir)
        .with_context(|| format!("listing {}/revenue", data_dir.display()))?;
    // Files rejected whole, with why. A file rejected after some of its lines were computed
    // starts the computation again without it: nothing of a rejected file may count.
    let mut rejected: HashMap<String, String> = HashMap::new();
    let (computer, exceptions, summary) = 'attempt: loop {
        let mut checker = RowChecker::new(&master, None, RecordIndex::default());
        let mut computer =
            earnings::PeriodComputer::new(&master, period, Detail::Payouts)?.without_line_report();
        let mut summary = IngestSummary::default();
        summary.warnings.extend(&master.warnings);
        summary.warnings.extend(&skipped);
        let mut exceptions = Vec::new();
        for file in &files {
            if let Some(detail) = rejected.get(&file.source_file) {
                summary.files_rejected += 1;
                exceptions.push(file_rejection(&file.source_file, detail.clone()));
                continue;
            }
            let mut computed_some = false;
            let mut rejected_rows = Vec::new();
            // A computation error fails the preview (as it fails `run`); it is not the file's.
            let mut failed: Option<earnings::ComputeError> = None;
            let outcome = FileReader::open(file).and_then(|mut reader| {
                let mut last: Option<revenue::Batch> = None;
                loop {
                    let (next, part) = rayon::join(
                        || reader.next_batch(&mut checker),
                        || last.map(|batch| computer.compute_segment(&batch.frame, false)),
                    );
                    let next = next.map(|step| {
                        step.map(|step| {
                            rejected_rows.extend(step.rejections);
                            step.lines
                        })
                    });
                    match part {
                        Some(Ok(part)) => {
                            computer.merge(part);
                            computed_some = true;
                        }
                        Some(Err(e)) => {
                            failed = Some(e);
                            return Ok(reader.finish());
                        }
                        None => {}
                    }
                    match next? {
                        Some(lines) => last = lines,
                        None => return Ok(reader.finish()),
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e).with_context(|| format!("computing {period}"));
            }
            match outcome {
                Ok(ingest) => {
                    checker.index.commit();
                    summary.files_ingested += 1;
                    summary.rows += ingest.rows;
                    summary.accepted += ingest.accepted;
                    summary.rejected += ingest.rejected;
                    summary.duplicates += ingest.duplicates;
                    rejected_rows.extend(ingest.rejections);
                    exceptions.extend(rejected_rows.into_iter().map(|r| ExceptionRow {
                        source_file: r.source_file,
                        line: r.line,
                        record_id: r.record_id,
                        reason: r.reason.code().to_owned(),
                        detail: r.detail,
                        raw: r.raw,
                    }));
                }
                Err(detail) => {
                    rejected.insert(file.source_file.clone(), detail.to_string());
                    if computed_some {
                        continue 'attempt;
                    }
                    checker.index.discard();
                    summary.files_rejected += 1;
                    exceptions.push(file_rejection(&file.source_file, detail.to_string()));
                }
            }
        }
        break (computer, exceptions, summary);
    };
    let computation = computer
        .finish(&HashMap::new())
        .with_context(|| format!("computing {period}"))?;
    reports::write_period_reports(out, &computation, &exceptions)
        .with_context(|| format!("writing reports to {}", out.display()))?;
    Ok((computation.payouts.len(), summary))
}

/// The exception row of a file rejected whole.
fn file_rejection(source_file: &str, detail: String) -> ExceptionRow {
    ExceptionRow {
        source_file: source_file.to_owned(),
        line: None,
        record_id: String::new(),
        reason: RejectReason::FileRejected.code().to_owned(),
        detail,
        raw: String::new(),
    }
}

/// A file writer, idle or storing a segment in a task of its own.
enum Writing {
    Idle(FileWriter),
    Busy(JoinHandle<StoreResult<FileWriter>>),
}

impl Writing {
    /// The writer, once its segment (if any) is stored.
    async fn idle(self) -> anyhow::Result<FileWriter> {
        Ok(match self {
            Writing::Idle(writer) => writer,
            Writing::Busy(task) => task.await.context("the task storing a segment failed")??,
        })
    }
}

/// What became of one revenue file.
enum FileResult {
    Stored(FileCounts),
    /// Another instance stored it meanwhile.
    AlreadyStored,
    /// Rejected whole (SPEC §7.2); nothing of it is stored but the rejection.
    Rejected(String),
}

struct FileCounts {
    rows: u64,
    accepted: u64,
    rejected: u64,
    duplicates: u64,
}

/// Reads, checks and stores one revenue file, each segment stored as soon as it is made (so
/// memory is bounded by a block, not the file), in one transaction: a crash stores nothing of
/// the file, and the next run ingests it again.
async fn ingest_file(
    store: &Store,
    run_id: &str,
    file: &revenue::RevenueFile,
    checker: &mut RowChecker<'_>,
) -> anyhow::Result<FileResult> {
    let storing = || format!("storing {}", file.source_file);
    let Some(writer) = store
        .begin_file(run_id, &file.source_file, &file.sha256)
        .await
        .with_context(storing)?
    else {
        return Ok(FileResult::AlreadyStored);
    };
    let mut reader = match FileReader::open(file) {
        Ok(reader) => reader,
        Err(detail) => {
            writer
                .reject(&file.source_file, detail.to_string())
                .await
                .with_context(storing)?;
            return Ok(FileResult::Rejected(detail.to_string()));
        }
    };
    // Each segment is stored by a task of its own while the next one is read, checked and
    // encoded; the writer passes from task to task, so segments go in in order.
    let (mut checking, mut storing_time) = (Duration::ZERO, Duration::ZERO);
    let mut state = Writing::Idle(writer);
    let writer = loop {
        let started = std::time::Instant::now();
        let next = match reader.next_batch(checker) {
            Ok(Some(step)) => {
                let segment =
                    match step.lines {
                        Some(batch) => Some(batch.encode().with_context(|| {
                            format!("encoding a segment of {}", file.source_file)
                        })?),
                        None => None,
                    };
                Ok(Some((segment, step.rejections)))
            }
            Ok(None) => Ok(None),
            Err(detail) => Err(detail),
        };
        checking += started.elapsed();
        let started = std::time::Instant::now();
        let mut writer = state.idle().await.with_context(storing)?;
        storing_time += started.elapsed();
        match next {
            Ok(Some((segment, rejections))) => {
                state = Writing::Busy(tokio::spawn(async move {
                    if !rejections.is_empty() {
                        writer.add_rejections(rejections).await?;
                    }
                    if let Some(segment) = segment {
                        writer.add_segment(segment).await?;
                    }
                    Ok(writer)
                }));
            }
            Ok(None) => break writer,
            Err(detail) => {
                // Segments of the file went into this transaction: drop them all, then
                // record the rejection alone.
                writer.abandon().await.with_context(storing)?;
                checker.index.discard();
                return match store
                    .begin_file(run_id, &file.source_file, &file.sha256)
                    .await
                    .with_context(storing)?
                {
                    Some(writer) => {
                        writer
                            .reject(&file.source_file, detail.to_string())
                            .await
                            .with_context(storing)?;
                        Ok(FileResult::Rejected(detail.to_string()))
                    }
                    None => Ok(FileResult::AlreadyStored),
                };
            }
        }
    };
    let ingest = reader.finish();
    let counts = FileCounts {
        rows: ingest.rows,
        accepted: ingest.accepted,
        rejected: ingest.rejected,
        duplicates: ingest.duplicates,
    };
    let started = std::time::Instant::now();
    writer.finish(ingest).await.with_context(storing)?;
    storing_time += started.elapsed();
    tracing::debug!(file = %file.source_file, ?checking, storing = ?storing_time, "ingested");
    Ok(FileResult::Stored(counts))
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
    let late_segments = stored
        .iter()
        .filter(|s| s.late_unbooked)
        .map(|s| s.id)
        .collect();
    let bar = progress::bar(stored.len() as u64, "revenue segments");
    // A segment per core at a time; the line report of one round is written while the next
    // round computes, and rounds merge in segment order, so the result is the same as one by one.
    let mut written: Vec<DataFrame> = Vec::new();
    let (mut writing, mut computing) = (Duration::ZERO, Duration::ZERO);
    for round in stored.chunks(rayon::current_num_threads().max(1)) {
        let mut data = Vec::with_capacity(round.len());
        for segment in round {
            data.push(store.segment_data(segment.id).await?);
        }
        let (write, parts) = rayon::join(
            || {
                let started = std::time::Instant::now();
                let result = written.iter().try_for_each(|batch| lines.write(batch));
                (result, started.elapsed())
            },
            || {
                let started = std::time::Instant::now();
                let result = round
                    .par_iter()
                    .zip(data)
                    .map(|(segment, data)| {
                        let frame = segment::decode(&data)
                            .with_context(|| format!("reading revenue segment {}", segment.id))?;
                        computer
                            .compute_segment(&frame, segment.late_unbooked)
                            .with_context(|| format!("computing {period}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>();
                (result, started.elapsed())
            },
        );
        let ((write, write_time), (parts, compute_time)) = (write, parts);
        writing += write_time;
        computing += compute_time;
        write?;
        written = parts?
            .into_iter()
            .map(|part| computer.merge(part))
            .collect();
        bar.inc(round.len() as u64);
    }
    let started = std::time::Instant::now();
    for batch in &written {
        lines.write(batch)?;
    }
    lines.finish()?;
    writing += started.elapsed();
    tracing::debug!(?writing, ?computing, "computed");
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
            // Snappy: what every Parquet reader has, and cheap to write at ten million lines.
            self.writer = Some(
                polars::prelude::ParquetWriter::new(self.file.try_clone()?)
                    .with_compression(polars::prelude::ParquetCompression::Snappy)
                    .with_statistics(polars::prelude::StatisticsOptions::empty())
                    .batched(schema)?,
            );
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
        store.finish_run(&run_id, "failed", &detail).await
    };
    // The failure is what the operator needs; a failure to record it is only logged.
    if let Err(record) = recorded.await {
        tracing::error!(error = %record, "could not record the failed run");
    }
    failure
}

/// What a draft of `period` is computed from, now (see `close_guard::Fingerprint`).
async fn draft_fingerprint(
    store: &Store,
    master: &MasterData,
    period: Period,
) -> anyhow::Result<Fingerprint> {
    Ok(Fingerprint::new(
        period,
        store.ledger_version().await?,
        &master.files,
    ))
}

/// Refuses a close whose figures would differ from the latest draft of the period; a period
/// never drafted closes as it is (SPEC §6 allows `close` without a `run`).
async fn ensure_matches_draft(
    store: &Store,
    master: &MasterData,
    period: Period,
    revenue: &[InputFile],
) -> anyhow::Result<()> {
    let Some(draft) = store.last_draft(&period.to_string()).await? else {
        return Ok(());
    };
    let reviewed = Fingerprint::parse(&draft.fingerprint).with_context(|| {
        format!(
            "the fingerprint of draft run {} cannot be read",
            draft.run_id
        )
    })?;
    let current = draft_fingerprint(store, master, period).await?;
    if reviewed == current {
        return Ok(());
    }
    let comparison = close_guard::DraftComparison {
        draft: &reviewed,
        current: &current,
        draft_inputs: &store.run_inputs(&draft.run_id).await?,
        current_revenue: revenue,
        retried_rows: store.retried_rows_since(&draft).await?,
    };
    Ok(close_guard::ensure_matches_draft(period, &comparison)?)
}

/// Lists the partners missing from partners.csv that still have money in the store as open
/// `PARTNER_MISSING` exceptions (replacing the previous list; nothing is written when it is
/// the same).
async fn record_missing_partners(
    store: &Store,
    master: &MasterData,
    run_id: &str,
    computation: &PeriodComputation,
) -> anyhow::Result<()> {
    let partners_sha256 = master
        .files
        .iter()
        .find(|f| f.name == MISSING_PARTNER_SOURCE)
        .map_or("", |f| f.sha256.as_str());
    let missing: Vec<(String, String)> = computation
        .missing_partners
        .iter()
        .map(|m| (m.partner_id.clone(), missing_partner_detail(m)))
        .collect();
    for (partner_id, detail) in &missing {
        tracing::warn!(partner_id, detail, "partner missing from partners.csv");
    }
    store
        .sync_missing_partners(run_id, partners_sha256, &missing)
        .await
        .context("recording partners missing from partners.csv")?;
    Ok(())
}

/// The `detail` of a `PARTNER_MISSING` exception: what the store keeps, with the currency.
fn missing_partner_detail(missing: &MissingPartner) -> String {
    let mut kept = Vec::new();
    if let Some(stored) = &missing.balance {
        let money = |amount: rust_decimal::Decimal| match stored.currency.minor_units() {
            Ok(minor) => format_minor(amount, minor),
            // Only words in a detail: the exact amount as stored.
            Err(_) => amount.to_string(),
        };
        kept.push(format!(
            "held {} {currency}, carried {} {currency}",
            money(stored.balances.held),
            money(stored.balances.carried),
            currency = stored.currency.code(),
        ));
    }
    let lines = missing.lines.own + missing.lines.late;
    if lines > 0 {
        kept.push(format!(
            "{lines} revenue line(s) not booked ({} of the period, {} late)",
            missing.lines.own, missing.lines.late
        ));
    }
    format!(
        "partner {} is not in partners.csv; kept in the store, untouched by close, until it is back: {}",
        missing.partner_id,
        kept.join("; ")
    )
}

/// `payout run --period P`: ingest, compute and write the draft reports. Changes no balance
/// and sends nothing (SPEC §4).
pub async fn run(
    store: &Store,
    paths: &Paths,
    period: Period,
) -> anyhow::Result<(RunOutcome, IngestSummary)> {
    let master = match load_master(&paths.data_dir) {
        Ok(master) => master,
        Err(e) => return Err(failed_before_start(store, "run", period, e).await),
    };
    let lease = store.acquire_lease(LEDGER_LEASE, LEDGER_LEASE_WAIT).await?;
    let result = with_run(store, "run", period, &master.files, async |run_id| {
        let (summary, inputs) = ingest(store, &master, &paths.data_dir, run_id).await?;
        let last_closed = store.last_closed().await?;
        if last_closed.is_some_and(|closed| period <= closed) {
            return Ok(((RunOutcome::AlreadyClosed, summary), inputs));
        }
        let period_text = period.to_string();
        // Nothing the draft depends on changed since the last one: its reports stand as they are.
        let fingerprint = draft_fingerprint(store, &master, period).await?;
        let published = paths
            .reports_dir
            .join(&period_text)
            .join("payouts.csv")
            .exists();
        if published
            && store.last_draft_fingerprint(&period_text).await?.as_deref()
                == Some(fingerprint.text().as_str())
        {
            store.set_fingerprint(run_id, &fingerprint.text()).await?;
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
        record_missing_partners(store, &master, run_id, &computation).await?;
        let exceptions = store.open_exceptions().await?;
        reports::write_period_reports(&staged, &computation, &exceptions)
            .with_context(|| format!("writing reports to {}", staged.display()))?;
        failpoint("run-before-publish");
        reports::publish(&paths.reports_dir, &period_text, &staged)
            .context("publishing reports")?;
        store.set_fingerprint(run_id, &fingerprint.text()).await?;
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
/// Refused, with nothing changed, while P has not ended on `today` (a closed period stays a
/// no-op, SPEC §7.14).
pub async fn close(
    store: &Store,
    paths: &Paths,
    period: Period,
    today: Today,
) -> anyhow::Result<CloseResult> {
    if store.close_id(period).await?.is_none() {
        close_guard::ensure_ended(period, &today)?;
    }
    let master = match load_master(&paths.data_dir) {
        Ok(master) => master,
        Err(e) => return Err(failed_before_start(store, "close", period, e).await),
    };
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
            ensure_matches_draft(store, master, period, &inputs).await?;
            let close_id = uuid::Uuid::new_v4().to_string();
            let staged = reports::staging_dir(&paths.reports_dir, &period_text, &format!("close-{close_id}"));
            let (computation, late_segments) = compute(store, master, period, Detail::Statements, &staged.join(LINE_REPORT)).await?;
            record_missing_partners(store, master, run_id, &computation).await?;
            close_guard::ensure_no_missing_lines(period, &computation.missing_partners)?;
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
