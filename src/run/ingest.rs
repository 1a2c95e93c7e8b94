//! Ingest of revenue files for `run` and `close` (SPEC §2): new files read block by block,
//! checked, and stored one transaction a file, with kept rejections retried first. A file
//! rejected part-way leaves nothing of its lines behind. Never computes a period.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;

use super::failpoint;
use crate::ingest::MasterData;
use crate::ingest::master::InputFile;
use crate::ingest::revenue::{self, FileReader, RecordIndex, RowChecker};
use crate::ingest::warning::Warnings;
use crate::progress;
use crate::store::{FileWriter, Store, StoreResult};

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
                .reject(&file.source_file, detail.clone())
                .await
                .with_context(storing)?;
            return Ok(FileResult::Rejected(detail));
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
                            .reject(&file.source_file, detail.clone())
                            .await
                            .with_context(storing)?;
                        Ok(FileResult::Rejected(detail))
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
