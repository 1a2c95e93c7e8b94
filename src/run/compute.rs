//! A period computed from the store (SPEC §3): its own lines and unbooked late lines, segment
//! by segment on every core, with the line report written as it goes, and the partners
//! missing from partners.csv recorded as exceptions. The figures are `earnings`'; this module
//! only feeds it and writes what it returns.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use polars::prelude::DataFrame;
use rayon::prelude::*;

use crate::domain::period::Period;
use crate::earnings::{self, Detail, MissingPartner, PeriodComputation};
use crate::ingest::MasterData;
use crate::ingest::segment;
use crate::progress;
use crate::store::{MISSING_PARTNER_SOURCE, Store};

/// Computes `period` from the store: its own lines, unbooked late lines, and the balances of
/// the last closed period, one segment at a time, writing the line report to `lines_path` as
/// it goes. Returns the ids of segments whose late lines it booked.
pub(super) async fn compute(
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

/// Lists the partners missing from partners.csv that still have money in the store as open
/// `PARTNER_MISSING` exceptions (replacing the previous list; nothing is written when it is
/// the same).
pub(super) async fn record_missing_partners(
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
        kept.push(format!(
            "held {} {currency}, carried {} {currency}",
            stored.held(),
            stored.carried(),
            currency = stored.currency().code(),
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
