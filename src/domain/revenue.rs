//! Revenue as the store keeps it, as data: rejected rows (SPEC §2), rows kept for retry and
//! what a retry decided for them, a file's counts, and the encoded segments of accepted lines.
//! `ingest` makes them; the store writes and reads them.

use super::period::Period;
use super::reasons::RejectReason;

/// A rejected row (or, with `line: None`, a whole file): data, not an error (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub source_file: String,
    pub line: Option<u64>,
    pub record_id: String,
    pub reason: RejectReason,
    pub detail: String,
    pub raw: String,
    /// The seven fields, kept so that retried reasons can be checked again.
    pub fields: Option<[String; 7]>,
}

#[derive(Debug, Default)]
pub struct FileIngest {
    /// Rejections not yet handed out by `FileReader::next_batch`.
    pub rejections: Vec<Rejection>,
    pub rows: u64,
    pub accepted: u64,
    /// Every rejected row of the file, handed out or not.
    pub rejected: u64,
    pub duplicates: u64,
}

/// A rejected row kept for retry (SPEC §2: `UNKNOWN_PARTNER`, `FX_RATE_MISSING`).
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub rejection_id: i64,
    pub source_file: String,
    pub line: u64,
    pub fields: [String; 7],
    pub reason: RejectReason,
}

/// What a retry decided for one pending row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryResolution {
    /// Ingested now, or found to be an identical repeat: the rejection is closed.
    Resolved,
    /// Still rejected, possibly for another reason now.
    StillRejected(RejectReason, String),
}

/// How a stored segment's record keys were made (`revenue_segments.key_scheme`, migration
/// 0012): the number is what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKeyScheme {
    /// Unkeyed xxh3 (before 0012): compared with nothing, made again from the segment's text.
    Xxh3 = 1,
    /// SHA-256 keyed by the store's secret (`ingest::record_key`).
    KeyedSha256 = 2,
}

impl RecordKeyScheme {
    pub fn code(self) -> i64 {
        self as i64
    }
}

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

/// How a line enters the period: its own month, or late revenue of a closed month (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Booking {
    Earned,
    Adjustment,
}

impl Booking {
    pub fn as_str(self) -> &'static str {
        match self {
            Booking::Earned => "earned",
            Booking::Adjustment => "adjustment",
        }
    }

    /// The booking stored as `text` (`as_str`), if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        [Booking::Earned, Booking::Adjustment]
            .into_iter()
            .find(|b| b.as_str() == text)
    }
}
