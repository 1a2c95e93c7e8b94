//! Incremental revenue ingest (SPEC §2, §7): every file in `revenue/` once by SHA-256, CSV or
//! Parquet, every row validated as text before any parsing, bad rows rejected alone with file,
//! line, raw content and reason, accepted rows chunked into columnar segments.

use rustc_hash::FxHashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use super::MasterData;
use super::segment::{AcceptedLine, REVENUE_COLUMNS, SEGMENT_ROWS, Segment, SegmentBuilder};
use crate::domain::money::{Currency, DecimalTextError, parse_amount_micro};
use crate::domain::partner::Partner;
use crate::domain::period::Period;
use crate::domain::reasons::RejectReason;
use crate::eligibility;

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

/// A file found in `revenue/`.
#[derive(Debug, Clone)]
pub struct RevenueFile {
    /// `revenue/<file name>`, as reports write it (SPEC §7.3).
    pub source_file: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// Files in `data_dir/revenue`, in file-name order (SPEC §7.16), with their content hashes.
/// Hidden files and folders are not revenue files.
pub fn list_revenue_files(data_dir: &Path) -> std::io::Result<Vec<RevenueFile>> {
    let dir = data_dir.join("revenue");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let sha256 = sha256_of_file(&path)?;
        files.push(RevenueFile {
            source_file: format!("revenue/{name}"),
            path,
            sha256,
        });
    }
    files.sort_by(|a, b| a.source_file.cmp(&b.source_file));
    Ok(files)
}

fn sha256_of_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Every `record_id` ever ingested, as (hash of the id -> hash of the seven fields). The 128-bit
/// id hash makes a false match between two ids practically impossible (about 2^-64 at 10^10 ids).
#[derive(Debug, Default)]
pub struct RecordIndex {
    committed: FxHashMap<u128, u64>,
    pending: FxHashMap<u128, u64>,
}

impl RecordIndex {
    pub fn extend(&mut self, keys: impl Iterator<Item = (u128, u64)>) {
        self.committed.extend(keys);
    }

    pub fn len(&self) -> usize {
        self.committed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.committed.is_empty()
    }

    fn get(&self, id: u128) -> Option<u64> {
        self.pending
            .get(&id)
            .or_else(|| self.committed.get(&id))
            .copied()
    }

    /// Keeps the keys of the unit of work just stored.
    pub fn commit(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.committed.extend(pending);
    }

    /// Forgets the keys of a unit of work that was not stored.
    pub fn discard(&mut self) {
        self.pending.clear();
    }
}

/// What becomes of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowVerdict {
    Accepted {
        amount_micro: i64,
        month: Period,
        late: bool,
        id_hash: u128,
        content_hash: u64,
    },
    /// An identical repeat of an ingested record: counted, not an exception (SPEC §2).
    Duplicate,
    Rejected(RejectReason, String),
}

/// Validates rows against the snapshot and the records already ingested.
pub struct RowChecker<'m> {
    master: &'m MasterData,
    partners: FxHashMap<&'m str, &'m Partner>,
    /// Lines of this month or earlier are late: their period is closed (SPEC §3).
    last_closed: Option<Period>,
    pub index: RecordIndex,
    eligible: FxHashMap<(&'m str, Period), bool>,
}

impl<'m> RowChecker<'m> {
    pub fn new(master: &'m MasterData, last_closed: Option<Period>, index: RecordIndex) -> Self {
        let partners = master
            .partners
            .iter()
            .map(|(id, p)| (id.as_str(), p))
            .collect();
        Self {
            master,
            partners,
            last_closed,
            index,
            eligible: FxHashMap::default(),
        }
    }

    /// Checks one row given as its seven fields, in `REVENUE_COLUMNS` order.
    pub fn check(&mut self, fields: &[&str; 7]) -> RowVerdict {
        let [
            record_id,
            partner_id,
            _customer,
            category,
            billing_month,
            amount,
            currency,
        ] = *fields;
        let empty: Vec<&str> = REVENUE_COLUMNS
            .iter()
            .zip(fields)
            .filter(|(_, v)| v.is_empty())
            .map(|(c, _)| *c)
            .collect();
        if !empty.is_empty() {
            return RowVerdict::Rejected(
                RejectReason::MissingField,
                format!("empty `{}`", empty.join("`, `")),
            );
        }
        let amount_micro = match parse_amount_micro(amount) {
            Ok(value) => value,
            Err(DecimalTextError::NotDecimal) => {
                return RowVerdict::Rejected(
                    RejectReason::InvalidAmount,
                    format!("amount `{amount}` is not a plain decimal"),
                );
            }
            Err(e) => {
                return RowVerdict::Rejected(
                    RejectReason::InvalidAmount,
                    format!("amount `{amount}`: {e}"),
                );
            }
        };
        let Some(line_currency) = Currency::parse(currency) else {
            return RowVerdict::Rejected(
                RejectReason::InvalidCurrency,
                format!("currency `{currency}` is not an ISO 4217 code"),
            );
        };
        let Ok(month) = billing_month.parse::<Period>() else {
            return RowVerdict::Rejected(
                RejectReason::InvalidPeriod,
                format!("billing_month `{billing_month}` is not YYYY-MM"),
            );
        };
        let id_hash = xxh3_128(record_id.as_bytes());
        let content_hash = content_hash(fields);
        match self.index.get(id_hash) {
            Some(existing) if existing == content_hash => return RowVerdict::Duplicate,
            Some(_) => {
                return RowVerdict::Rejected(
                    RejectReason::DuplicateConflict,
                    format!("record_id `{record_id}` was already ingested with different content"),
                );
            }
            None => {}
        }
        let Some(&partner) = self.partners.get(partner_id) else {
            return RowVerdict::Rejected(
                RejectReason::UnknownPartner,
                format!("partner `{partner_id}` is not in partners.csv"),
            );
        };
        if let Some(missing) = self.missing_fx(partner, category, month, line_currency) {
            return RowVerdict::Rejected(RejectReason::FxRateMissing, missing);
        }
        self.index.pending.insert(id_hash, content_hash);
        let late = self.last_closed.is_some_and(|closed| month <= closed);
        RowVerdict::Accepted {
            amount_micro,
            month,
            late,
            id_hash,
            content_hash,
        }
    }

    /// A rate is needed only for an eligible partner's rated line in another currency, and
    /// only the direct rate counts (SPEC §7.15).
    fn missing_fx(
        &mut self,
        partner: &'m Partner,
        category: &str,
        month: Period,
        currency: Currency,
    ) -> Option<String> {
        let payout = partner.payout_currency;
        if currency == payout {
            return None;
        }
        let program = self.master.programs.for_type(partner.partner_type)?;
        program.rate(category, month)?;
        let master = self.master;
        let eligible = *self
            .eligible
            .entry((partner.partner_id.as_str(), month))
            .or_insert_with(|| {
                eligibility::verdict(master, partner, month.as_of_date())
                    .is_some_and(|(_, r)| r.is_empty())
            });
        if !eligible || self.master.fx.get(month, currency, payout).is_some() {
            return None;
        }
        Some(format!("no FX rate for {month} {currency}->{payout}"))
    }
}

/// Hash of the seven fields as text (SPEC §7.6), each length-prefixed so no two splits collide.
fn content_hash(fields: &[&str; 7]) -> u64 {
    let mut hasher = Xxh3::new();
    for field in fields {
        hasher.update(&(field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.digest()
}

/// The outcome of one revenue file.
#[derive(Debug)]
pub enum FileOutcome {
    Ingested(FileIngest),
    /// Rejected whole, with why (SPEC §7.2).
    Rejected(String),
}

#[derive(Debug, Default)]
pub struct FileIngest {
    pub segments: Vec<Segment>,
    pub rejections: Vec<Rejection>,
    pub rows: u64,
    pub accepted: u64,
    pub duplicates: u64,
}

/// Collects the verdicts of a file's rows into segments and rejections.
struct Collector {
    builder: SegmentBuilder,
    ingest: FileIngest,
}

impl Collector {
    fn new() -> Self {
        Self {
            builder: SegmentBuilder::new(),
            ingest: FileIngest::default(),
        }
    }

    fn row(
        &mut self,
        checker: &mut RowChecker,
        source_file: &str,
        line: u64,
        fields: [&str; 7],
        raw: impl FnOnce() -> String,
    ) -> PolarsResult<()> {
        self.ingest.rows += 1;
        match checker.check(&fields) {
            RowVerdict::Accepted {
                amount_micro,
                month,
                late,
                id_hash,
                content_hash,
            } => {
                self.ingest.accepted += 1;
                self.builder.push(AcceptedLine {
                    fields,
                    source_file,
                    line,
                    amount_micro,
                    month,
                    late,
                    id_hash,
                    content_hash,
                });
                if self.builder.len() >= SEGMENT_ROWS {
                    self.ingest.segments.push(self.builder.take()?);
                }
            }
            RowVerdict::Duplicate => self.ingest.duplicates += 1,
            RowVerdict::Rejected(reason, detail) => self.ingest.rejections.push(Rejection {
                source_file: source_file.to_owned(),
                line: Some(line),
                record_id: fields[0].to_owned(),
                reason,
                detail,
                raw: raw(),
                fields: Some(fields.map(str::to_owned)),
            }),
        }
        Ok(())
    }

    fn finish(mut self) -> PolarsResult<FileIngest> {
        if !self.builder.is_empty() {
            self.ingest.segments.push(self.builder.take()?);
        }
        Ok(self.ingest)
    }
}

/// Reads and checks one revenue file. Keys of accepted rows are pending in the checker's
/// index until the caller stores the outcome and commits them.
pub fn ingest_file(file: &RevenueFile, checker: &mut RowChecker) -> FileOutcome {
    let extension = file
        .path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let result = match extension.as_deref() {
        Some("csv") => ingest_csv(file, checker),
        Some("parquet") => ingest_parquet(file, checker),
        _ => Err("not a CSV or Parquet file (expected .csv or .parquet)".to_owned()),
    };
    match result {
        Ok(ingest) => FileOutcome::Ingested(ingest),
        Err(detail) => {
            checker.index.discard();
            FileOutcome::Rejected(detail)
        }
    }
}

fn column_positions(headers: &[&str]) -> Result<[usize; 7], String> {
    let mut positions = [0usize; 7];
    for (slot, column) in positions.iter_mut().zip(REVENUE_COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| *h == column)
            .ok_or_else(|| format!("missing column `{column}`"))?;
    }
    Ok(positions)
}

fn ingest_csv(file: &RevenueFile, checker: &mut RowChecker) -> Result<FileIngest, String> {
    let handle = File::open(&file.path).map_err(|e| format!("cannot read: {e}"))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 20, handle));
    let header_record = reader
        .byte_headers()
        .map_err(|e| format!("not CSV: {e}"))?
        .clone();
    std::str::from_utf8(header_record.as_slice()).map_err(|_| "not UTF-8 (line 1)".to_owned())?;
    let headers: Vec<&str> = header_record
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = std::str::from_utf8(h).unwrap_or("");
            if i == 0 {
                h.trim_start_matches('\u{feff}')
            } else {
                h
            }
        })
        .collect();
    let positions = column_positions(&headers)?;
    let mut collector = Collector::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(format!("not CSV (line {line}): {e}"));
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let mut texts: Vec<&str> = Vec::with_capacity(record.len());
        for field in record.iter() {
            texts.push(std::str::from_utf8(field).map_err(|_| format!("not UTF-8 (line {line})"))?);
        }
        let fields = positions.map(|p| texts.get(p).copied().unwrap_or(""));
        let raw = || {
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            let _ = writer.write_record(&texts);
            let bytes = writer.into_inner().unwrap_or_default();
            String::from_utf8_lossy(&bytes)
                .trim_end_matches('\n')
                .to_owned()
        };
        collector
            .row(checker, &file.source_file, line, fields, raw)
            .map_err(|e| format!("cannot encode segment: {e}"))?;
    }
    collector
        .finish()
        .map_err(|e| format!("cannot encode segment: {e}"))
}

/// Rows of a Parquet file read at a time: bounds memory whatever the file's size.
const PARQUET_SLICE_ROWS: usize = 1 << 18;

fn ingest_parquet(file: &RevenueFile, checker: &mut RowChecker) -> Result<FileIngest, String> {
    let open = || File::open(&file.path).map_err(|e| format!("cannot read: {e}"));
    let mut reader = ParquetReader::new(open()?);
    let schema = reader
        .schema()
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
    column_positions(&names)?;
    let total = reader
        .num_rows()
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let projection: Vec<String> = REVENUE_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    let mut collector = Collector::new();
    for offset in (0..total).step_by(PARQUET_SLICE_ROWS) {
        let frame = ParquetReader::new(open()?)
            .with_columns(Some(projection.clone()))
            .with_slice(Some((offset, PARQUET_SLICE_ROWS)))
            .finish()
            .map_err(|e| format!("not a readable Parquet file: {e}"))?;
        let mut texts = Vec::with_capacity(7);
        for name in REVENUE_COLUMNS {
            let column = frame.column(name).map_err(|e| e.to_string())?;
            if column.dtype().is_float() {
                return Err(format!(
                    "column `{name}` is floating point; amounts and ids must be text or integers"
                ));
            }
            texts.push(
                column
                    .cast(&DataType::String)
                    .map_err(|e| format!("column `{name}` cannot be read as text: {e}"))?,
            );
        }
        let columns = texts
            .iter()
            .map(|c| {
                Ok(c.str()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .collect::<Vec<Option<&str>>>())
            })
            .collect::<Result<Vec<_>, String>>()?;
        for row in 0..frame.height() {
            let mut fields = [""; 7];
            for (slot, column) in fields.iter_mut().zip(&columns) {
                *slot = column[row].unwrap_or("");
            }
            // Parquet has no lines: row N (0-based) is reported as line N + 2, as under a header.
            let line = (offset + row) as u64 + 2;
            let raw = || fields.join(",");
            collector
                .row(checker, &file.source_file, line, fields, raw)
                .map_err(|e| format!("cannot encode segment: {e}"))?;
        }
    }
    collector
        .finish()
        .map_err(|e| format!("cannot encode segment: {e}"))
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

/// Segments of the rows ingested now, and what became of each retried rejection (by id).
pub type RetryOutcome = (Vec<Segment>, Vec<(i64, RetryResolution)>);

/// Checks retried rows again, before any new file (SPEC §7.16).
pub fn retry_rows(rows: &[PendingRow], checker: &mut RowChecker) -> PolarsResult<RetryOutcome> {
    let mut builder = SegmentBuilder::new();
    let mut segments = Vec::new();
    let mut resolutions = Vec::with_capacity(rows.len());
    for row in rows {
        let fields: [&str; 7] = std::array::from_fn(|i| row.fields[i].as_str());
        let resolution = match checker.check(&fields) {
            RowVerdict::Accepted {
                amount_micro,
                month,
                late,
                id_hash,
                content_hash,
            } => {
                builder.push(AcceptedLine {
                    fields,
                    source_file: &row.source_file,
                    line: row.line,
                    amount_micro,
                    month,
                    late,
                    id_hash,
                    content_hash,
                });
                RetryResolution::Resolved
            }
            RowVerdict::Duplicate => RetryResolution::Resolved,
            RowVerdict::Rejected(reason, detail) => RetryResolution::StillRejected(reason, detail),
        };
        resolutions.push((row.rejection_id, resolution));
        if builder.len() >= SEGMENT_ROWS {
            segments.push(builder.take()?);
        }
    }
    if !builder.is_empty() {
        segments.push(builder.take()?);
    }
    Ok((segments, resolutions))
}
