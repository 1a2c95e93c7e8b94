//! Revenue segments: ingested lines stored columnar (Parquet, zstd) as one blob per chunk in
//! the store, with their record keys beside them. SQL never holds one row per revenue line.

use std::collections::BTreeMap;
use std::io::Cursor;

use polars::prelude::*;

use crate::domain::period::Period;

/// Lines per segment of rows read one by one (quoted CSV, Parquet slices, retried rows): bounds
/// the memory of one chunk (about 30 MB before compression). A plain CSV block (16 MiB of text)
/// makes one segment, of about as many lines.
pub const SEGMENT_ROWS: usize = 1 << 18;
/// Bytes per record key: 16 of record-id hash, 8 of content hash.
pub const KEY_BYTES: usize = 24;

/// The seven revenue fields, in this order everywhere (SPEC §2).
pub const REVENUE_COLUMNS: [&str; 7] = [
    "record_id",
    "partner_id",
    "customer_id",
    "product_category",
    "billing_month",
    "amount",
    "currency",
];

/// A finished segment, ready to store.
#[derive(Debug, Clone)]
pub struct Segment {
    pub parquet: Vec<u8>,
    pub keys: Vec<u8>,
    /// Rows per (billing month, late).
    pub months: Vec<(Period, bool, u64)>,
    pub rows: u64,
    pub late_rows: u64,
}

/// Accumulates accepted lines column by column.
pub struct SegmentBuilder {
    text: [StringChunkedBuilder; 7],
    /// Source files as runs of (file, lines): one file per segment but for retried rows.
    source_files: Vec<(String, usize)>,
    amount_micro: Vec<i64>,
    line: Vec<i64>,
    late: Vec<bool>,
    keys: Vec<u8>,
    months: BTreeMap<(Period, bool), u64>,
}

/// What the builder records of one accepted line besides its seven fields.
pub struct AcceptedLine<'a> {
    pub fields: [&'a str; 7],
    pub source_file: &'a str,
    pub line: u64,
    pub amount_micro: i64,
    pub month: Period,
    pub late: bool,
    pub id_hash: u128,
    pub content_hash: u64,
}

impl Default for SegmentBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SegmentBuilder {
    pub fn new() -> Self {
        Self {
            text: REVENUE_COLUMNS.map(|n| StringChunkedBuilder::new(n.into(), 1024)),
            source_files: Vec::new(),
            amount_micro: Vec::new(),
            line: Vec::new(),
            late: Vec::new(),
            keys: Vec::new(),
            months: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.line.len()
    }

    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }

    pub fn push(&mut self, accepted: AcceptedLine<'_>) {
        for (builder, value) in self.text.iter_mut().zip(accepted.fields) {
            builder.append_value(value);
        }
        match self.source_files.last_mut() {
            Some((file, lines)) if file == accepted.source_file => *lines += 1,
            _ => self.source_files.push((accepted.source_file.to_owned(), 1)),
        }
        self.amount_micro.push(accepted.amount_micro);
        self.line.push(accepted.line as i64);
        self.late.push(accepted.late);
        self.keys.extend_from_slice(&accepted.id_hash.to_le_bytes());
        self.keys
            .extend_from_slice(&accepted.content_hash.to_le_bytes());
        *self
            .months
            .entry((accepted.month, accepted.late))
            .or_default() += 1;
    }

    /// Encodes the lines so far as a segment and starts afresh.
    pub fn take(&mut self) -> PolarsResult<Segment> {
        let full = std::mem::take(self);
        let rows = full.line.len();
        let mut columns: Vec<Column> = full
            .text
            .into_iter()
            .map(|b| b.finish().into_column())
            .collect();
        let mut source_file = StringChunked::full_null("source_file".into(), 0);
        for (file, lines) in &full.source_files {
            source_file.append(&StringChunked::full("source_file".into(), file, *lines))?;
        }
        columns.push(source_file.into_column());
        columns
            .push(Int64Chunked::from_vec("amount_micro".into(), full.amount_micro).into_column());
        columns.push(Int64Chunked::from_vec("line".into(), full.line).into_column());
        columns.push(BooleanChunked::from_slice("late".into(), &full.late).into_column());
        let frame = DataFrame::new(rows, columns)?;
        let meta = SegmentMeta {
            keys: full.keys,
            months: full
                .months
                .into_iter()
                .map(|((month, late), n)| (month, late, n))
                .collect(),
        };
        encode(frame, meta)
    }
}

/// What a segment records besides its columns: record keys and rows per (month, late).
#[derive(Debug, Default)]
pub struct SegmentMeta {
    pub keys: Vec<u8>,
    pub months: Vec<(Period, bool, u64)>,
}

impl SegmentMeta {
    /// Records one accepted line.
    pub fn push(&mut self, id_hash: u128, content_hash: u64, month: Period, late: bool) {
        self.keys.extend_from_slice(&id_hash.to_le_bytes());
        self.keys.extend_from_slice(&content_hash.to_le_bytes());
        // A segment holds few months: a scan beats a map.
        match self
            .months
            .iter_mut()
            .find(|(m, l, _)| *m == month && *l == late)
        {
            Some((_, _, n)) => *n += 1,
            None => self.months.push((month, late, 1)),
        }
    }

    pub fn rows(&self) -> usize {
        self.keys.len() / KEY_BYTES
    }
}

/// Encodes accepted lines (`REVENUE_COLUMNS`, `source_file`, `amount_micro`, `line`, `late`)
/// as a segment.
pub fn encode(mut frame: DataFrame, mut meta: SegmentMeta) -> PolarsResult<Segment> {
    let mut parquet = Vec::new();
    // Segments are read back whole by this program only: zstd, no statistics.
    ParquetWriter::new(Cursor::new(&mut parquet))
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::empty())
        .finish(&mut frame)?;
    meta.months.sort_unstable();
    let late_rows = meta.months.iter().filter(|m| m.1).map(|m| m.2).sum();
    Ok(Segment {
        parquet,
        keys: meta.keys,
        months: meta.months,
        rows: frame.height() as u64,
        late_rows,
    })
}

/// Reads a stored segment back.
pub fn decode(parquet: &[u8]) -> PolarsResult<DataFrame> {
    ParquetReader::new(Cursor::new(parquet)).finish()
}

/// Splits a key blob into (record-id hash, content hash) pairs.
pub fn keys(blob: &[u8]) -> impl Iterator<Item = (u128, u64)> + '_ {
    blob.chunks_exact(KEY_BYTES).map(|k| {
        let id = u128::from_le_bytes(
            k[..16]
                .try_into()
                .unwrap_or_else(|_| unreachable!("16-byte slice")),
        );
        let content = u64::from_le_bytes(
            k[16..]
                .try_into()
                .unwrap_or_else(|_| unreachable!("8-byte slice")),
        );
        (id, content)
    })
}
