//! Reading one revenue file (SPEC §2, §7): a `FileReader` takes a file a block at a time (plain
//! CSV, quoted CSV or Parquet), checks every row of the block on every core, settles the rows
//! in order against the record index, and hands out the accepted lines as a batch laid out as
//! a segment, with the rejected rows. Memory is bounded by a block, never by the file. It never
//! touches the store: the caller stores batches and commits or discards the index's keys.

use std::fs::File;
use std::io::BufReader;

use polars::prelude::*;
use rayon::prelude::*;

use super::file_rejection::FileRejection;
use super::files::{RevenueFile, is_plain_csv};
use super::lines::FileLineCounter;
use super::record_key::RecordHasher;
use super::rows::{MAX_DETAIL_BYTES, MAX_RAW_BYTES, RowProblem, Rows, bounded, column_positions};
use super::segment::{self, REVENUE_COLUMNS, Segment, SegmentMeta};
use super::validate::{Precheck, RowChecker, RowVerdict};
use crate::domain::reasons::RejectReason;
pub use crate::domain::revenue::{FileIngest, Rejection};
pub use crate::earnings::PARTNER_POSITION;

mod parquet;
mod plain;
mod quoted;

use parquet::check_parquet;
use plain::{PlainCsvBlocks, check_plain, split_lines, split_plain};
use quoted::{open_quoted_csv, read_quoted};

/// Rejected rows held in memory at most before `FileReader::next_batch` hands them out to be
/// stored: a file of bad rows costs bounded memory (plus one block's rows).
pub const REJECTION_BATCH: usize = 10_000;

/// What `FileReader::next_batch` read: accepted lines, rejected rows to store, or both.
#[derive(Default)]
pub struct Step {
    pub lines: Option<Batch>,
    pub rejections: Vec<Rejection>,
}

/// One part of a block: its rows, what the row-local checks found, and the columns a segment
/// stores for them, all made on the core that split the part.
pub(super) struct CheckedPart<'t> {
    rows: Rows<'t>,
    prechecks: Vec<Precheck>,
    columns: DataFrame,
}

impl<'t> CheckedPart<'t> {
    pub(super) fn new(
        checker: &RowChecker,
        rows: Rows<'t>,
        source_file: &str,
    ) -> PolarsResult<Self> {
        Self::with_text(checker, rows, None, source_file)
    }

    /// `text`: the seven text columns when the rows were read from columns already (Parquet),
    /// taken as they are instead of built again from the rows.
    fn with_text(
        checker: &RowChecker,
        rows: Rows<'t>,
        text: Option<Vec<Column>>,
        source_file: &str,
    ) -> PolarsResult<Self> {
        let mut prechecks: Vec<Precheck> = (0..rows.len())
            .map(|row| checker.precheck(&rows.fields(row)))
            .collect();
        // A row that cannot be read exactly is rejected whatever its fields look like.
        for (row, problem) in &rows.problems {
            prechecks[*row as usize] =
                Precheck::Rejected(RejectReason::MalformedRow, problem.to_string());
        }
        let height = rows.len();
        let mut columns: Vec<Column> = match text {
            Some(text) => text,
            None => REVENUE_COLUMNS
                .iter()
                .enumerate()
                .map(|(field, name)| {
                    let mut builder = StringChunkedBuilder::new((*name).into(), height);
                    for row in 0..height {
                        builder.append_value(rows.field(row, field));
                    }
                    builder.finish().into_column()
                })
                .collect(),
        };
        columns.push(StringChunked::full("source_file".into(), source_file, height).into_column());
        let (mut amounts, mut late) = (Vec::with_capacity(height), Vec::with_capacity(height));
        let mut partners = Vec::with_capacity(height);
        for precheck in &prechecks {
            let (amount, is_late, partner) = match precheck {
                Precheck::Valid {
                    amount_micro,
                    month,
                    partner,
                    ..
                } => (*amount_micro, checker.is_late(*month), *partner),
                Precheck::Rejected(..) => (0, false, None),
            };
            amounts.push(amount);
            late.push(is_late);
            partners.push(partner.unwrap_or(u32::MAX));
        }
        let lines = rows.lines.iter().map(|&l| l as i64).collect();
        columns.push(Int64Chunked::from_vec("amount_micro".into(), amounts).into_column());
        columns.push(Int64Chunked::from_vec("line".into(), lines).into_column());
        columns.push(BooleanChunked::from_slice("late".into(), &late).into_column());
        columns.push(UInt32Chunked::from_vec(PARTNER_POSITION.into(), partners).into_column());
        let columns = DataFrame::new(height, columns)?;
        Ok(Self {
            rows,
            prechecks,
            columns,
        })
    }
}

/// Prechecks owned rows (quoted CSV, Parquet) on every core, keeping their order.
fn check_owned<'t>(
    checker: &RowChecker,
    rows: &'t Rows<'_>,
    source_file: &str,
) -> PolarsResult<Vec<CheckedPart<'t>>> {
    let parts = rows.split(rayon::current_num_threads() * 2);
    parts
        .into_par_iter()
        .map(|rows| CheckedPart::new(checker, rows, source_file))
        .collect()
}

/// Accepted lines of one block, laid out as a segment stores them, with their keys.
pub struct Batch {
    pub frame: DataFrame,
    pub meta: SegmentMeta,
}

impl Batch {
    /// The segment to store: without the partner positions, which hold only for this snapshot.
    pub fn encode(self) -> PolarsResult<Segment> {
        segment::encode(self.frame.drop(PARTNER_POSITION)?, self.meta)
    }
}

/// Where a file's rows come from.
enum Source {
    /// Split here, in parallel (no quote, no lone carriage return).
    Plain {
        blocks: PlainCsvBlocks,
        positions: [usize; 7],
        header_fields: usize,
    },
    Quoted {
        reader: csv::Reader<BufReader<File>>,
        positions: [usize; 7],
        header_fields: usize,
        /// Columns the header leaves unnamed: a value there is a shifted row.
        unnamed: Vec<usize>,
        lines: FileLineCounter,
    },
    /// Slices (first row, rows) along the file's row groups, in order.
    Parquet {
        slices: std::vec::IntoIter<(usize, usize)>,
    },
}

/// Reads one revenue file a block at a time: each `next_batch` reads, checks and settles rows
/// until it has accepted lines, so memory is bounded by a block, not the file, and each batch
/// can be stored as soon as it is made. Keys of accepted rows are pending in the checker's
/// index until the caller stores the file and commits them (or discards them).
pub struct FileReader<'f> {
    file: &'f RevenueFile,
    source: Source,
    ingest: FileIngest,
}

impl<'f> FileReader<'f> {
    /// Opens a file; an error rejects the file whole (SPEC §7.2).
    pub fn open(file: &'f RevenueFile) -> Result<Self, FileRejection> {
        let extension = file
            .path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let source = match extension.as_deref() {
            Some("csv") if file.plain.map_or_else(|| is_plain_csv(&file.path), Ok)? => {
                let (blocks, headers) = PlainCsvBlocks::open(&file.path)?;
                let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
                let positions = column_positions(&headers)?;
                if headers.contains(&"") {
                    // Unnamed columns (Excel's trailing commas) need every field of a row
                    // checked: the csv crate's reader has them all.
                    open_quoted_csv(&file.path)?
                } else {
                    Source::Plain {
                        blocks,
                        positions,
                        header_fields: headers.len(),
                    }
                }
            }
            Some("csv") => open_quoted_csv(&file.path)?,
            Some("parquet") => Source::Parquet {
                slices: parquet::open(&file.path)?.into_iter(),
            },
            _ => return Err(FileRejection::UnknownExtension),
        };
        Ok(Self {
            file,
            source,
            ingest: FileIngest::default(),
        })
    }

    /// The accepted lines of the next block that has any, with the rejected rows once
    /// `REJECTION_BATCH` of them are pending; `None` at the end of the file (`finish` then has
    /// the last rejections).
    pub fn next_batch(&mut self, checker: &mut RowChecker) -> Result<Option<Step>, FileRejection> {
        loop {
            let source_file = self.file.source_file.as_str();
            let batch = match &mut self.source {
                Source::Plain {
                    blocks,
                    positions,
                    header_fields,
                } => {
                    let Some(block) = blocks.next_block()? else {
                        return Ok(None);
                    };
                    if let Some(long) = &block.long_line {
                        let mut rows = Rows::default();
                        let problem = RowProblem::LineTooLong { bytes: long.bytes };
                        rows.push_owned([""; 7], Some(&long.start), long.line, Some(problem))?;
                        let parts = check_owned(checker, &rows, source_file)
                            .map_err(FileRejection::Encode)?;
                        settle(&mut self.ingest, source_file, checker, parts)
                    } else {
                        let parts =
                            check_plain(checker, &block, positions, *header_fields, source_file)
                                .map_err(FileRejection::Encode)?;
                        settle(&mut self.ingest, source_file, checker, parts)
                    }
                }
                Source::Quoted {
                    reader,
                    positions,
                    header_fields,
                    unnamed,
                    lines,
                } => {
                    let rows = read_quoted(reader, positions, *header_fields, unnamed, lines)?;
                    if rows.is_empty() {
                        return Ok(None);
                    }
                    let parts =
                        check_owned(checker, &rows, source_file).map_err(FileRejection::Encode)?;
                    settle(&mut self.ingest, source_file, checker, parts)
                }
                Source::Parquet { slices } => {
                    let Some((offset, rows)) = slices.next() else {
                        return Ok(None);
                    };
                    let frame = parquet::read_slice(&self.file.path, offset, rows)?;
                    let parts = check_parquet(checker, &frame, offset, source_file)?;
                    settle(&mut self.ingest, source_file, checker, parts)
                }
            }
            .map_err(FileRejection::Encode)?;
            let rejections = if self.ingest.rejections.len() >= REJECTION_BATCH {
                std::mem::take(&mut self.ingest.rejections)
            } else {
                Vec::new()
            };
            if batch.is_some() || !rejections.is_empty() {
                return Ok(Some(Step {
                    lines: batch,
                    rejections,
                }));
            }
        }
    }

    /// Adds to `ids` the id key of every row of the file, read as `next_batch` reads it,
    /// checking nothing else: what the record index is loaded for before the rows are checked.
    /// Rows `next_batch` would reject on their own may be in it too (harmless: never looked
    /// up). On an error, `ids` keeps the rows read before it, as `next_batch` would have.
    pub fn record_ids(
        mut self,
        hasher: &RecordHasher,
        ids: &mut Vec<u128>,
    ) -> Result<(), FileRejection> {
        let keys = |rows: &Rows| -> Vec<u128> {
            (0..rows.len())
                .map(|row| hasher.id_key(rows.field(row, 0)))
                .collect()
        };
        loop {
            match &mut self.source {
                Source::Plain {
                    blocks,
                    positions,
                    header_fields,
                } => {
                    let Some(block) = blocks.next_block()? else {
                        break;
                    };
                    // A line too long is rejected whole, never looked up.
                    if block.long_line.is_some() {
                        continue;
                    }
                    let parts: Vec<Vec<u128>> =
                        split_lines(&block.text, rayon::current_num_threads() * 2)
                            .into_par_iter()
                            .map(|range| {
                                keys(&split_plain(
                                    &block.text,
                                    range,
                                    0,
                                    positions,
                                    *header_fields,
                                ))
                            })
                            .collect();
                    ids.extend(parts.into_iter().flatten());
                }
                Source::Quoted {
                    reader,
                    positions,
                    header_fields,
                    unnamed,
                    lines,
                } => {
                    let rows = read_quoted(reader, positions, *header_fields, unnamed, lines)?;
                    if rows.is_empty() {
                        break;
                    }
                    ids.extend(keys(&rows));
                }
                Source::Parquet { slices } => {
                    let Some((offset, rows)) = slices.next() else {
                        break;
                    };
                    let frame = parquet::read_slice(&self.file.path, offset, rows)?;
                    ids.extend(keys(&parquet::rows(&frame, offset)?));
                }
            }
        }
        Ok(())
    }

    /// Row counts and rejections of the whole file, once `next_batch` has returned `None`.
    pub fn finish(self) -> FileIngest {
        self.ingest
    }
}

/// Settles the rows of a block's parts in order (the record index is the one thing that needs
/// order): `each` sees every row with its verdict; the accepted rows come back as one batch.
pub(super) fn decide<'t>(
    checker: &mut RowChecker,
    parts: Vec<CheckedPart<'t>>,
    mut each: impl FnMut(&Rows<'t>, usize, RowVerdict),
) -> PolarsResult<Option<Batch>> {
    let mut at = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        at.extend((0..part.rows.len()).map(|row| (index, row)));
    }
    let prechecks: Vec<&Precheck> = parts.iter().flat_map(|p| &p.prechecks).collect();
    let verdicts = checker.settle_all(&prechecks, |i| {
        let (part, row) = at[i];
        parts[part].rows.field(row, 0)
    });
    drop(prechecks);
    let mut keep = Vec::with_capacity(verdicts.len());
    let mut meta = SegmentMeta::default();
    let mut frame: Option<DataFrame> = None;
    let mut verdicts = verdicts.into_iter();
    for part in parts {
        let CheckedPart { rows, columns, .. } = part;
        for row in 0..rows.len() {
            let Some(verdict) = verdicts.next() else {
                unreachable!("a verdict per row");
            };
            keep.push(matches!(verdict, RowVerdict::Accepted { .. }));
            if let RowVerdict::Accepted {
                month,
                late,
                id_hash,
                content_hash,
                ..
            } = verdict
            {
                meta.push(id_hash, content_hash, month, late);
            }
            each(&rows, row, verdict);
        }
        match &mut frame {
            Some(frame) => {
                frame.vstack_mut_owned(columns)?;
            }
            None => frame = Some(columns),
        }
    }
    let Some(mut frame) = frame else {
        return Ok(None);
    };
    if meta.rows() == 0 {
        return Ok(None);
    }
    if meta.rows() < keep.len() {
        frame = frame.filter(&BooleanChunked::from_slice("keep".into(), &keep))?;
    }
    Ok(Some(Batch { frame, meta }))
}

/// `decide` for a file's block, counting its rows into `ingest`.
fn settle(
    ingest: &mut FileIngest,
    source_file: &str,
    checker: &mut RowChecker,
    parts: Vec<CheckedPart<'_>>,
) -> PolarsResult<Option<Batch>> {
    decide(checker, parts, |rows, row, verdict| {
        ingest.rows += 1;
        match verdict {
            RowVerdict::Accepted { .. } => ingest.accepted += 1,
            RowVerdict::Duplicate => ingest.duplicates += 1,
            RowVerdict::Rejected(reason, detail) => {
                ingest.rejected += 1;
                let fields = rows.fields(row);
                // A field past its limit makes a `MALFORMED_ROW`: the fields of every other
                // rejection are bounded, and kept (retried reasons are checked again on them).
                let kept =
                    (reason != RejectReason::MalformedRow).then(|| fields.map(str::to_owned));
                ingest.rejections.push(Rejection {
                    source_file: source_file.to_owned(),
                    line: Some(rows.lines[row]),
                    record_id: bounded(fields[0], MAX_DETAIL_BYTES).into_owned(),
                    reason,
                    detail: bounded(&detail, MAX_DETAIL_BYTES).into_owned(),
                    raw: bounded(&rows.raw(row), MAX_RAW_BYTES).into_owned(),
                    fields: kept,
                })
            }
        }
    })
}

#[cfg(test)]
mod tests;
