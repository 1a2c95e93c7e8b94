//! `run` and `preview` (SPEC §4, §6): the draft reports of a period, published whole, with the
//! fingerprint of what they were computed from; and the same figures from the input folder
//! alone, without a store. Changes no balance and sends nothing.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use super::compute::{compute, record_missing_partners};
use super::guard::Fingerprint;
use super::ingest::{IngestSummary, ingest};
use super::{
    LEDGER_LEASE, LEDGER_LEASE_WAIT, LINE_REPORT, Paths, failed_before_start, failpoint,
    load_master, with_run,
};
use crate::domain::period::Period;
use crate::domain::reasons::RejectReason;
use crate::earnings::{self, Detail};
use crate::ingest::MasterData;
use crate::ingest::revenue::{self, FileReader, RecordIndex, RowChecker};
use crate::reports;
use crate::store::{ExceptionRow, Store};

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
                    rejected.insert(file.source_file.clone(), detail.clone());
                    if computed_some {
                        continue 'attempt;
                    }
                    checker.index.discard();
                    summary.files_rejected += 1;
                    exceptions.push(file_rejection(&file.source_file, detail));
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

/// What a draft of `period` is computed from, now (see `guard::Fingerprint`).
pub(super) async fn draft_fingerprint(
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
