//! Revenue segments: ingested lines stored columnar (Parquet, zstd) as one blob per chunk in
//! the store, with their record keys beside them. SQL never holds one row per revenue line.

use std::collections::BTreeMap;
use std::io::Cursor;

use polars::prelude::*;

use crate::domain::period::Period;

/// Lines per segment: bounds the memory of one chunk (about 30 MB before compression).
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
    text: [StringChunkedBuilder; 8],
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
        let names = REVENUE_COLUMNS.iter().copied().chain(["source_file"]);
        let text = names
            .map(|n| StringChunkedBuilder::new(n.into(), 1024))
            .collect::<Vec<_>>();
        Self {
            text: text
                .try_into()
                .unwrap_or_else(|_| unreachable!("eight text columns")),
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
        for (builder, value) in self
            .text
            .iter_mut()
            .zip(accepted.fields.iter().chain([&accepted.source_file]))
        {
            builder.append_value(value);
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
        let rows = full.line.len() as u64;
        let late_rows = full.late.iter().filter(|&&l| l).count() as u64;
        let mut columns: Vec<Column> = full
            .text
            .into_iter()
            .map(|b| b.finish().into_column())
            .collect();
        columns
            .push(Int64Chunked::from_vec("amount_micro".into(), full.amount_micro).into_column());
        columns.push(Int64Chunked::from_vec("line".into(), full.line).into_column());
        columns.push(BooleanChunked::from_slice("late".into(), &full.late).into_column());
        let mut frame = DataFrame::new(rows as usize, columns)?;
        let mut parquet = Vec::new();
        ParquetWriter::new(Cursor::new(&mut parquet)).finish(&mut frame)?;
        let months = full
            .months
            .into_iter()
            .map(|((m, late), n)| (m, late, n))
            .collect();
        Ok(Segment {
            parquet,
            keys: full.keys,
            months,
            rows,
            late_rows,
        })
    }
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
