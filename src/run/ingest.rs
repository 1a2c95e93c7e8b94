//! The ingest pipeline (SPEC §2): revenue files read in order, block by block, every row
//! checked, in one loop that `run`, `close` and `preview` share (`read_files`). What becomes
//! of the checked blocks is the caller's `FileSink`: `run` and `close` store them here
//! (`StoreSink`, one transaction a file, kept rejections retried first), `preview` computes
//! them (`preview::ComputeSink`). A file rejected part-way leaves nothing of its lines behind.
//! Never computes a period itself.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use rayon::prelude::*;
use tokio::task::JoinHandle;

use super::failpoint;
use crate::domain::revenue::{PendingRow, RecordKeyScheme};
use crate::ingest::MasterData;
use crate::ingest::master::InputFile;
use crate::ingest::read::{FileIngest, Step};
use crate::ingest::segment;
use crate::ingest::warning::Warnings;
use crate::ingest::{
    self, FileReader, IdFilter, RecordHasher, RecordIndex, RevenueFile, RowChecker,
};
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

/// Whether the ingest loop reads a file.
pub(super) enum Begin {
    Read,
    /// Stored already (`files_skipped`).
    Skip,
    /// Rejected whole before, with its exception recorded (`files_rejected`).
    Rejected,
}

/// What a sink made of a file rejected whole (SPEC §7.2).
pub(super) enum Rejected {
    /// Recorded: nothing of the file counts but its rejection (`files_rejected`).
    Recorded,
    /// Another instance stored the file meanwhile (`files_skipped`).
    AlreadyStored,
    /// Lines of the file were computed already: the ingest starts again without it.
    StartAgain,
}

/// How the ingest loop ended.
pub(super) enum Ingested {
    Done,
    /// A sink asked for `Rejected::StartAgain`.
    StartAgain,
}

/// What becomes of the blocks `read_files` reads. Each method is called at one point of the
/// loop, in this order for a file: `begin`, then `alongside` and `take` for each block, then
/// `finish` or `reject`.
pub(super) trait FileSink {
    /// Whether `file` is to be read.
    async fn begin(&mut self, file: &RevenueFile) -> anyhow::Result<Begin>;
    /// Reads the next block with `read`, while the work on the last one goes on.
    fn alongside<R: Send>(&mut self, read: impl FnOnce() -> R + Send) -> anyhow::Result<R>;
    /// One block's accepted lines and rejected rows.
    async fn take(&mut self, file: &RevenueFile, step: Step) -> anyhow::Result<()>;
    /// The file is read through, with its counts and last rejected rows.
    async fn finish(&mut self, file: &RevenueFile, ingest: FileIngest) -> anyhow::Result<()>;
    /// The file is rejected whole for `detail`; `read_started`: it was opened, so blocks of it
    /// may have been taken.
    async fn reject(
        &mut self,
        file: &RevenueFile,
        detail: String,
        read_started: bool,
    ) -> anyhow::Result<Rejected>;
}

struct FileCounts {
    rows: u64,
    accepted: u64,
    rejected: u64,
    duplicates: u64,
}

/// The one loop over revenue files: each file opened, read a block at a time and its rows
/// checked (the record index's keys pending until the file is kept), each block handed to
/// `sink`, and the file kept or rejected whole.
pub(super) async fn read_files(
    files: &[RevenueFile],
    checker: &mut RowChecker<'_>,
    summary: &mut IngestSummary,
    sink: &mut impl FileSink,
) -> anyhow::Result<Ingested> {
    for file in files {
        match sink.begin(file).await? {
            Begin::Read => {}
            Begin::Skip => {
                summary.files_skipped += 1;
                continue;
            }
            Begin::Rejected => {
                summary.files_rejected += 1;
                continue;
            }
        }
        let (detail, read_started) = match FileReader::open(file) {
            Err(detail) => (detail, false),
            Ok(mut reader) => {
                let read = loop {
                    match sink.alongside(|| reader.next_batch(checker))? {
                        Ok(Some(step)) => sink.take(file, step).await?,
                        Ok(None) => break Ok(reader.finish()),
                        Err(detail) => break Err(detail),
                    }
                };
                match read {
                    Ok(ingest) => {
                        // Fail closed: a row whose id the record index was not loaded for
                        // could be a duplicate it cannot see (the file changed since).
                        anyhow::ensure!(
                            checker.index.uncovered() == 0,
                            "{}: rows whose record_id the duplicate check was not loaded for \
                             (did the file change while it was read?)",
                            file.source_file
                        );
                        let counts = FileCounts {
                            rows: ingest.rows,
                            accepted: ingest.accepted,
                            rejected: ingest.rejected,
                            duplicates: ingest.duplicates,
                        };
                        sink.finish(file, ingest).await?;
                        checker.index.commit();
                        summary.files_ingested += 1;
                        summary.rows += counts.rows;
                        summary.accepted += counts.accepted;
                        summary.rejected += counts.rejected;
                        summary.duplicates += counts.duplicates;
                        continue;
                    }
                    Err(detail) => (detail, true),
                }
            }
        };
        checker.index.discard();
        match sink.reject(file, detail.to_string(), read_started).await? {
            Rejected::Recorded => summary.files_rejected += 1,
            Rejected::AlreadyStored => summary.files_skipped += 1,
            Rejected::StartAgain => return Ok(Ingested::StartAgain),
        }
    }
    Ok(Ingested::Done)
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
    let (files, skipped) = ingest::list_revenue_files(data_dir)
        .with_context(|| format!("listing {}/revenue", data_dir.display()))?;
    summary.warnings.extend(&master.warnings);
    summary.warnings.extend(&skipped);
    store
        .record_warnings(run_id, &summary.warnings.listed())
        .await
        .context("recording the run's warnings")?;
    let pending = store.pending_retries().await?;
    // The record index is only needed to check new rows.
    let index = if pending.is_empty() && files.iter().all(|f| known.contains(&f.sha256)) {
        RecordIndex::default()
    } else {
        load_index(store, &files, &known, &pending)
            .await
            .context("loading the record index")?
    };
    let mut checker = RowChecker::new(master, last_closed, index);

    if !pending.is_empty() {
        let (segments, resolutions) = ingest::retry_rows(&pending, &mut checker)?;
        anyhow::ensure!(
            checker.index.uncovered() == 0,
            "retried rows whose record_id the duplicate check was not loaded for"
        );
        store
            .store_retry(run_id, segments, &resolutions)
            .await
            .context("storing retried rows")?;
        checker.index.commit();
        summary.retried_resolved = resolutions
            .iter()
            .filter(|(_, r)| *r == ingest::RetryResolution::Resolved)
            .count() as u64;
    }

    let inputs = files
        .iter()
        .map(|file| InputFile {
            name: file.source_file.clone(),
            sha256: file.sha256.clone(),
        })
        .collect();
    let mut sink = StoreSink {
        store,
        run_id,
        known: &known,
        bar: progress::bar(files.len() as u64, "revenue files"),
        writing: None,
        checking: Duration::ZERO,
        storing: Duration::ZERO,
    };
    match read_files(&files, &mut checker, &mut summary, &mut sink).await? {
        Ingested::Done => Ok((summary, inputs)),
        // A stored file's rejection rolls its lines back instead: never asked by `StoreSink`.
        Ingested::StartAgain => anyhow::bail!("ingest: a rejected file asked to start again"),
    }
}

/// The record index for checking `pending` rows and the files not in `known`: of the stored
/// keys, only those whose id the filter of the new rows' ids lets through (bounded by the new
/// lines, not by history). The ids are read from the files in a first pass.
async fn load_index(
    store: &Store,
    files: &[RevenueFile],
    known: &HashSet<String>,
    pending: &[PendingRow],
) -> anyhow::Result<RecordIndex> {
    let started = Instant::now();
    let secret = store.record_key_secret().await?;
    let hasher = RecordHasher::from_hex(&secret)
        .context("the store's record-key secret is not 64 hex digits")?;
    if store.ingested_lines().await? == 0 {
        return Ok(RecordIndex::new(hasher, None));
    }
    let mut ids: Vec<u128> = pending
        .iter()
        .map(|row| hasher.id_key(&row.fields[0]))
        .collect();
    for file in files.iter().filter(|f| !known.contains(&f.sha256)) {
        // A file that cannot be opened or read to its end here is rejected, with its reason,
        // by the ingest loop that follows. The ids read before the failure are in `ids`; a row
        // the ingest then reads whose id is not is counted by the index and fails the run
        // (`uncovered`), so a partial read here can never let a duplicate through.
        if let Ok(reader) = FileReader::open(file) {
            let _partial = reader.record_ids(&hasher, &mut ids);
        }
    }
    let new_ids = ids.len();
    let filter = IdFilter::of(&ids);
    drop(ids);
    let mut index = RecordIndex::new(hasher.clone(), Some(filter));
    store
        .for_each_record_keys(RecordKeyScheme::KeyedSha256, |blobs| {
            index.extend_from_blobs(blobs)
        })
        .await?;
    // Segments stored before keys were keyed: their keys made again from their text.
    let mut rekeyed = Ok(());
    store
        .for_each_record_keys(RecordKeyScheme::Xxh3, |segments| {
            if rekeyed.is_err() {
                return;
            }
            match segments
                .par_iter()
                .map(|parquet| segment::rekey(parquet, &hasher))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(blobs) => index.extend_from_blobs(&blobs),
                Err(e) => rekeyed = Err(e),
            }
        })
        .await?;
    rekeyed.context("reading the text of a segment stored before keyed record keys")?;
    tracing::debug!(new_ids, loaded = index.len(), took = ?started.elapsed(), "record index loaded");
    Ok(index)
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

/// `run` and `close`: each file stored in one transaction (a crash stores nothing of it, and
/// the next run ingests it again), each block's segment stored by a task of its own while the
/// next block is read, checked and encoded. The writer passes from task to task, so segments
/// go in in order, and memory is bounded by a block, not the file.
struct StoreSink<'s> {
    store: &'s Store,
    run_id: &'s str,
    /// Hashes of the files stored by earlier runs.
    known: &'s HashSet<String>,
    bar: ProgressBar,
    /// The writer of the file being read; `None` between files.
    writing: Option<Writing>,
    checking: Duration,
    storing: Duration,
}

fn storing(file: &RevenueFile) -> String {
    format!("storing {}", file.source_file)
}

impl StoreSink<'_> {
    /// The open file's writer, once the segment it is storing (if any) is stored.
    async fn idle_writer(&mut self, file: &RevenueFile) -> anyhow::Result<FileWriter> {
        let started = Instant::now();
        let writer = self
            .writing
            .take()
            .context("no revenue file is being stored")?
            .idle()
            .await
            .with_context(|| storing(file))?;
        self.storing += started.elapsed();
        Ok(writer)
    }
}

impl FileSink for StoreSink<'_> {
    async fn begin(&mut self, file: &RevenueFile) -> anyhow::Result<Begin> {
        self.bar.inc(1);
        if self.known.contains(&file.sha256) {
            return Ok(Begin::Skip);
        }
        let Some(writer) = self
            .store
            .begin_file(self.run_id, &file.source_file, &file.sha256)
            .await
            .with_context(|| storing(file))?
        else {
            tracing::info!(file = %file.source_file, "ingested");
            return Ok(Begin::Skip);
        };
        self.writing = Some(Writing::Idle(writer));
        (self.checking, self.storing) = (Duration::ZERO, Duration::ZERO);
        Ok(Begin::Read)
    }

    fn alongside<R: Send>(&mut self, read: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
        let started = Instant::now();
        let next = read();
        self.checking += started.elapsed();
        Ok(next)
    }

    async fn take(&mut self, file: &RevenueFile, step: Step) -> anyhow::Result<()> {
        let started = Instant::now();
        let segment = match step.lines {
            Some(batch) => Some(
                batch
                    .encode()
                    .with_context(|| format!("encoding a segment of {}", file.source_file))?,
            ),
            None => None,
        };
        self.checking += started.elapsed();
        let mut writer = self.idle_writer(file).await?;
        let rejections = step.rejections;
        self.writing = Some(Writing::Busy(tokio::spawn(async move {
            if !rejections.is_empty() {
                writer.add_rejections(rejections).await?;
            }
            if let Some(segment) = segment {
                writer.add_segment(segment).await?;
            }
            Ok(writer)
        })));
        Ok(())
    }

    async fn finish(&mut self, file: &RevenueFile, ingest: FileIngest) -> anyhow::Result<()> {
        let writer = self.idle_writer(file).await?;
        let started = Instant::now();
        writer.finish(ingest).await.with_context(|| storing(file))?;
        self.storing += started.elapsed();
        tracing::debug!(file = %file.source_file, checking = ?self.checking, storing = ?self.storing, "ingested");
        failpoint("ingest-after-file");
        tracing::info!(file = %file.source_file, "ingested");
        Ok(())
    }

    async fn reject(
        &mut self,
        file: &RevenueFile,
        detail: String,
        read_started: bool,
    ) -> anyhow::Result<Rejected> {
        let mut writer = self.idle_writer(file).await?;
        if read_started {
            // Segments of the file went into this transaction: drop them all, then record the
            // rejection alone.
            writer.abandon().await.with_context(|| storing(file))?;
            match self
                .store
                .begin_file(self.run_id, &file.source_file, &file.sha256)
                .await
                .with_context(|| storing(file))?
            {
                Some(again) => writer = again,
                None => {
                    tracing::info!(file = %file.source_file, "ingested");
                    return Ok(Rejected::AlreadyStored);
                }
            }
        }
        writer
            .reject(&file.source_file, detail.clone())
            .await
            .with_context(|| storing(file))?;
        tracing::warn!(file = %file.source_file, %detail, "revenue file rejected");
        failpoint("ingest-after-file");
        tracing::info!(file = %file.source_file, "ingested");
        Ok(Rejected::Recorded)
    }
}
