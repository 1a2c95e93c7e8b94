//! `payout preview` (SPEC §6): a period's payouts from the input folder alone, as if the store
//! were empty. The files go through the same ingest loop as `run` (`ingest::read_files`), with
//! a sink that computes each block instead of storing it. Never opens a store, never writes
//! outside `--out`.

use std::collections::HashMap;
use std::path::Path;
use std::pin::pin;
use std::task::{Context as PollContext, Poll, Waker};

use anyhow::Context;

use super::ingest::{Begin, FileSink, IngestSummary, Ingested, Rejected, read_files};
use super::load_master;
use crate::domain::exception::{ExceptionRow, RowFields};
use crate::domain::period::Period;
use crate::domain::reasons::RejectReason;
use crate::earnings::{Detail, PeriodComputer};
use crate::ingest::read::{FileIngest, Rejection, Step};
use crate::ingest::{self, Batch, RecordIndex, RevenueFile, RowChecker};
use crate::reports;

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
    let (files, skipped) = ingest::list_revenue_files_unhashed(data_dir)
        .with_context(|| format!("listing {}/revenue", data_dir.display()))?;
    // Files rejected whole, with why. A file rejected after some of its lines were computed
    // starts the computation again without it: nothing of a rejected file may count.
    let mut rejected: HashMap<String, String> = HashMap::new();
    let (computer, exceptions, summary) = loop {
        let mut checker = RowChecker::new(&master, None, RecordIndex::default());
        let computer = PeriodComputer::new(&master, period, Detail::Payouts)?.without_line_report();
        let mut summary = IngestSummary::default();
        summary.warnings.extend(&master.warnings);
        summary.warnings.extend(&skipped);
        let mut sink = ComputeSink {
            period,
            computer,
            rejected: &mut rejected,
            exceptions: Vec::new(),
            file_rows: Vec::new(),
            last: None,
            computed_some: false,
        };
        let ingested = complete_now(read_files(&files, &mut checker, &mut summary, &mut sink))?;
        match ingested {
            Ingested::Done => break (sink.computer, sink.exceptions, summary),
            Ingested::StartAgain => continue,
        }
    };
    let computation = computer
        .finish(&HashMap::new())
        .with_context(|| format!("computing {period}"))?;
    reports::write_period_reports(out, &computation, &exceptions)
        .with_context(|| format!("writing reports to {}", out.display()))?;
    Ok((computation.payouts.len(), summary))
}

/// Runs `future` to its end at once, on this thread. For the ingest loop driven by
/// `ComputeSink` only: nothing in it waits (it stores nothing), so one poll completes it, and
/// `preview` needs no runtime of its own (it may be called from inside one).
fn complete_now<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut PollContext::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => anyhow::bail!("preview: reading the revenue files waited for the store"),
    }
}

/// `preview`: each block computed while the next is read; the exceptions kept in memory.
struct ComputeSink<'a, 'm> {
    period: Period,
    computer: PeriodComputer<'m>,
    /// Files rejected whole in this or an earlier attempt.
    rejected: &'a mut HashMap<String, String>,
    exceptions: Vec<ExceptionRow>,
    /// Rejected rows of the file being read, kept until the file is.
    file_rows: Vec<Rejection>,
    /// The last block read, computed while the next is read.
    last: Option<Batch>,
    /// Whether lines of the file being read were computed already.
    computed_some: bool,
}

impl FileSink for ComputeSink<'_, '_> {
    async fn begin(&mut self, file: &RevenueFile) -> anyhow::Result<Begin> {
        if let Some(detail) = self.rejected.get(&file.source_file) {
            self.exceptions
                .push(file_rejection(&file.source_file, detail.clone()));
            return Ok(Begin::Rejected);
        }
        self.file_rows.clear();
        self.last = None;
        self.computed_some = false;
        Ok(Begin::Read)
    }

    fn alongside<R: Send>(&mut self, read: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
        let (last, computer) = (self.last.take(), &self.computer);
        let (next, part) = rayon::join(read, || {
            last.map(|batch| computer.compute_segment(&batch.frame, false))
        });
        match part {
            Some(Ok(part)) => {
                self.computer.merge(part);
                self.computed_some = true;
            }
            // A computation error fails the preview (as it fails `run`); it is not the file's.
            Some(Err(e)) => {
                let period = self.period;
                return Err(e).with_context(|| format!("computing {period}"));
            }
            None => {}
        }
        Ok(next)
    }

    async fn take(&mut self, _file: &RevenueFile, step: Step) -> anyhow::Result<()> {
        self.file_rows.extend(step.rejections);
        self.last = step.lines;
        Ok(())
    }

    async fn finish(&mut self, _file: &RevenueFile, ingest: FileIngest) -> anyhow::Result<()> {
        let rows = self.file_rows.drain(..).chain(ingest.rejections);
        self.exceptions.extend(rows.map(|r| {
            ExceptionRow {
                source_file: r.source_file,
                line: r.line,
                record_id: r.record_id,
                reason: r.reason.code().to_owned(),
                detail: r.detail,
                raw: r.raw,
                fields: r
                    .fields
                    .as_ref()
                    .map(RowFields::from_revenue_fields)
                    .unwrap_or_default(),
            }
        }));
        Ok(())
    }

    async fn reject(
        &mut self,
        file: &RevenueFile,
        detail: String,
        _read_started: bool,
    ) -> anyhow::Result<Rejected> {
        self.rejected
            .insert(file.source_file.clone(), detail.clone());
        if self.computed_some {
            return Ok(Rejected::StartAgain);
        }
        self.exceptions
            .push(file_rejection(&file.source_file, detail));
        Ok(Rejected::Recorded)
    }
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
        fields: RowFields::default(),
    }
}
