//! Revenue segments: ingested lines stored columnar (Parquet, zstd) as one blob per chunk in
//! the store, with their record keys beside them. SQL never holds one row per revenue line.

use std::io::Cursor;

use polars::prelude::*;

use super::record_key::RecordHasher;
use crate::domain::period::Period;
pub use crate::domain::revenue::Segment;

/// Lines per segment of rows read one by one (quoted CSV, Parquet slices, retried rows): bounds
/// the memory of one chunk (about 30 MB before compression). A plain CSV block (16 MiB of text)
/// makes one segment, of about as many lines.
pub const SEGMENT_ROWS: usize = 1 << 18;
/// Bytes per record key: 16 of record-id key, 8 of content key (`record_key`).
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

/// The record keys of a stored segment's lines, made again from its text under `hasher`, in
/// the blob layout of `SegmentMeta::keys`: for segments stored before keys were keyed
/// (`RecordKeyScheme::Xxh3`), whose stored keys cannot be compared with keyed ones.
pub fn rekey(parquet: &[u8], hasher: &RecordHasher) -> PolarsResult<Vec<u8>> {
    let frame = ParquetReader::new(Cursor::new(parquet))
        .with_columns(Some(REVENUE_COLUMNS.map(str::to_owned).to_vec()))
        .finish()?;
    let columns = REVENUE_COLUMNS
        .iter()
        .map(|name| frame.column(name)?.str().cloned())
        .collect::<PolarsResult<Vec<_>>>()?;
    let mut iters: Vec<_> = columns.iter().map(|c| c.iter()).collect();
    let mut keys = Vec::with_capacity(frame.height() * KEY_BYTES);
    for row in 0..frame.height() {
        let mut fields = [""; 7];
        for (field, iter) in fields.iter_mut().zip(iters.iter_mut()) {
            // Ingest stores all seven fields of every line: a missing one is a corrupt store,
            // never an empty text (its key would differ and a duplicate would pass).
            *field = iter.next().flatten().ok_or_else(|| {
                PolarsError::ComputeError(
                    format!("stored segment row {row}: a field is missing; the store is corrupt")
                        .into(),
                )
            })?;
        }
        keys.extend_from_slice(&hasher.id_key(fields[0]).to_le_bytes());
        keys.extend_from_slice(&hasher.content_key(&fields).to_le_bytes());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parquet_of(record_id: Option<&str>) -> Vec<u8> {
        let mut columns: Vec<Column> = REVENUE_COLUMNS
            .iter()
            .map(|name| Column::new((*name).into(), [Some("x")]))
            .collect();
        columns[0] = Column::new(REVENUE_COLUMNS[0].into(), [record_id]);
        let mut frame = DataFrame::new(1, columns).unwrap();
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut frame).unwrap();
        bytes
    }

    #[test]
    fn a_stored_line_with_a_missing_field_is_refused_not_keyed_as_empty() {
        let hasher = RecordHasher::random();
        assert_eq!(
            rekey(&parquet_of(Some("R1")), &hasher).unwrap().len(),
            KEY_BYTES
        );
        let error = rekey(&parquet_of(None), &hasher).unwrap_err().to_string();
        assert!(error.contains("the store is corrupt"), "{error}");
    }
}
