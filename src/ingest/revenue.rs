//! Incremental revenue ingest (SPEC §2, §7): every file in `revenue/` once by SHA-256, CSV or
//! Parquet, every row validated as text before any parsing, bad rows rejected alone with file,
//! line, raw content and reason, accepted rows chunked into columnar segments. Rows are read a
//! block at a time and checked on every core; only the duplicate check keeps row order.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io::{BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use polars::prelude::*;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::{Xxh3, xxh3_64, xxh3_128};

use super::lookup::IdIndex;
use super::parquet;
use super::rows::{
    BLOCK_BYTES, MAX_DETAIL_BYTES, MAX_RAW_BYTES, PlainBlock, PlainCsvBlocks, PlainScan,
    RowProblem, Rows, bounded, column_positions, is_plain_csv, split_lines, split_plain,
};
use super::segment::{self, REVENUE_COLUMNS, SEGMENT_ROWS, Segment, SegmentMeta};
use super::warning::Warnings;
use super::{MasterData, Program};
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
    /// Whether it is plain CSV (`rows::is_plain_csv`), when hashing found out already.
    pub plain: Option<bool>,
}

/// Files in `data_dir/revenue`, in file-name order (SPEC §7.16), with their content hashes,
/// and the entries skipped as not revenue files (see `list_revenue_files_unhashed`).
pub fn list_revenue_files(data_dir: &Path) -> std::io::Result<(Vec<RevenueFile>, Warnings)> {
    let (mut files, skipped) = list_revenue_files_unhashed(data_dir)?;
    for file in &mut files {
        let (sha256, plain) = hash_file(&file.path)?;
        file.sha256 = sha256;
        file.plain = Some(plain);
    }
    Ok((files, skipped))
}

/// `list_revenue_files` without the hashes (empty), for reading files without storing them.
/// Revenue files are the regular files directly in `revenue/`, or symbolic links to regular
/// files inside the data directory. Everything else is skipped with a warning: hidden entries,
/// folders, FIFOs, sockets and devices (never opened: reading a FIFO would block the run),
/// dangling links and links that resolve outside the data directory.
pub fn list_revenue_files_unhashed(
    data_dir: &Path,
) -> std::io::Result<(Vec<RevenueFile>, Warnings)> {
    let dir = data_dir.join("revenue");
    let mut skipped = Warnings::default();
    if !dir.exists() {
        return Ok((Vec::new(), skipped));
    }
    let root = std::fs::canonicalize(data_dir)?;
    let mut entries = std::fs::read_dir(&dir)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    let mut files = Vec::new();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let source_file = format!("revenue/{name}");
        let path = entry.path();
        match revenue_entry_problem(&name, &entry.file_type()?, &path, &root) {
            Some(problem) => skipped.push(&source_file, None, format!("{problem}; skipped")),
            None => files.push(RevenueFile {
                source_file,
                path,
                sha256: String::new(),
                plain: None,
            }),
        }
    }
    files.sort_by(|a, b| a.source_file.cmp(&b.source_file));
    Ok((files, skipped))
}

/// Why an entry of `revenue/` is not a revenue file, or `None` when it is one. Looks only at
/// metadata (lstat, stat, realpath): nothing is opened.
fn revenue_entry_problem(
    name: &str,
    kind: &std::fs::FileType,
    path: &Path,
    root: &Path,
) -> Option<String> {
    if name.starts_with('.') {
        return Some("hidden entry".to_owned());
    }
    if kind.is_file() {
        return None;
    }
    if !kind.is_symlink() {
        return Some(not_a_file(kind));
    }
    let target = match std::fs::canonicalize(path) {
        Ok(target) => target,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some("symbolic link to a missing file".to_owned());
        }
        Err(e) => return Some(format!("symbolic link that cannot be followed ({e})")),
    };
    if !target.starts_with(root) {
        return Some("symbolic link to a file outside the data directory".to_owned());
    }
    match std::fs::metadata(&target) {
        Ok(meta) if meta.is_file() => None,
        Ok(meta) => Some(format!(
            "symbolic link to a {}",
            not_a_file(&meta.file_type())
        )),
        Err(e) => Some(format!("symbolic link that cannot be followed ({e})")),
    }
}

/// What a non-file entry is, for its warning.
fn not_a_file(kind: &std::fs::FileType) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let special = if kind.is_fifo() {
            Some("FIFO")
        } else if kind.is_socket() {
            Some("socket")
        } else if kind.is_block_device() || kind.is_char_device() {
            Some("device")
        } else {
            None
        };
        if let Some(special) = special {
            return format!("{special}, not a regular file");
        }
    }
    if kind.is_dir() {
        "folder (revenue files are read from revenue/ itself, not its subfolders)".to_owned()
    } else {
        "not a regular file".to_owned()
    }
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn only_files_and_links_to_files_inside_the_data_dir_are_revenue_files() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let revenue = data.join("revenue");
        std::fs::create_dir_all(revenue.join("2026-10")).unwrap();
        std::fs::write(revenue.join("a.csv"), "x").unwrap();
        std::fs::write(revenue.join(".hidden.csv"), "x").unwrap();
        std::fs::write(data.join("kept.csv"), "x").unwrap();
        std::fs::write(root.path().join("outside.csv"), "x").unwrap();
        std::os::unix::fs::symlink(data.join("kept.csv"), revenue.join("b-link.csv")).unwrap();
        std::os::unix::fs::symlink(root.path().join("outside.csv"), revenue.join("c-out.csv"))
            .unwrap();
        std::os::unix::fs::symlink(data.join("gone.csv"), revenue.join("d-dangling.csv")).unwrap();
        let fifo = revenue.join("e-fifo.csv");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        std::os::unix::fs::symlink(&fifo, revenue.join("f-fifo-link.csv")).unwrap();

        // Returns at all: the FIFO is never opened (opening it would block).
        let (files, skipped) = list_revenue_files(&data).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.source_file.as_str()).collect();
        assert_eq!(names, ["revenue/a.csv", "revenue/b-link.csv"]);
        let warnings: Vec<String> = skipped.listed().iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warnings,
            [
                "revenue/.hidden.csv: hidden entry; skipped",
                "revenue/2026-10: folder (revenue files are read from revenue/ itself, not its subfolders); skipped",
                "revenue/c-out.csv: symbolic link to a file outside the data directory; skipped",
                "revenue/d-dangling.csv: symbolic link to a missing file; skipped",
                "revenue/e-fifo.csv: FIFO, not a regular file; skipped",
                "revenue/f-fifo-link.csv: symbolic link to a FIFO, not a regular file; skipped",
            ]
        );
    }
}

/// The file's SHA-256, and whether it is plain CSV, in one read.
fn hash_file(path: &Path) -> std::io::Result<(String, bool)> {
    let mut hasher = Sha256::new();
    let mut scan = PlainScan::default();
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        scan.feed(&buffer[..n]);
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((sha256, scan.is_plain()))
}

/// Every `record_id` ever ingested, as (hash of the id -> hash of the seven fields). The 128-bit
/// id hash makes a false match between two ids practically impossible (about 2^-64 at 10^10 ids).
/// Split into shards by id hash so that rows are settled on every core, each shard in row order.
#[derive(Debug)]
pub struct RecordIndex {
    shards: Vec<IndexShard>,
}

/// A record-id hash as two words: 24 bytes an entry instead of the 32 a 16-byte-aligned `u128`
/// costs. Hashed as its low word: it is already uniformly random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdKey(u64, u64);

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// Passes an already random word through.
#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 ^= word;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type IdMap = HashMap<IdKey, u64, BuildHasherDefault<WordHasher>>;

#[derive(Debug, Default)]
struct IndexShard {
    committed: IdMap,
    pending: IdMap,
}

fn id_key(id: u128) -> IdKey {
    IdKey(id as u64, (id >> 64) as u64)
}

/// Shards of the record index: more than cores, so that a shard doubling its table (old and
/// new table side by side) is a small part of the index at any moment.
const INDEX_SHARDS: usize = 32;

impl Default for RecordIndex {
    fn default() -> Self {
        Self {
            shards: (0..INDEX_SHARDS).map(|_| IndexShard::default()).collect(),
        }
    }
}

impl IndexShard {
    /// The index part of settling a row (SPEC §2 order: duplicates before the partner and FX
    /// checks): a new id is taken only by a row that is accepted.
    fn settle(&mut self, precheck: &Precheck) -> Settled {
        let Precheck::Valid {
            id_hash,
            content_hash,
            after_index,
            ..
        } = precheck
        else {
            return Settled::Rejected;
        };
        let key = id_key(*id_hash);
        // One probe of the pending table for both the look-up and the insert.
        let slot = match self.pending.entry(key) {
            Entry::Occupied(existing) => Err(*existing.get()),
            Entry::Vacant(slot) => match self.committed.get(&key) {
                Some(existing) => Err(*existing),
                None => Ok(slot),
            },
        };
        match slot {
            Err(existing) if existing == *content_hash => Settled::Duplicate,
            Err(_) => Settled::Conflict,
            Ok(_) if after_index.is_some() => Settled::Rejected,
            Ok(slot) => {
                slot.insert(*content_hash);
                Settled::Accepted
            }
        }
    }
}

/// What the record index decided for a prechecked row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Accepted,
    Duplicate,
    Conflict,
    /// Rejected for the reason its precheck found.
    Rejected,
}

impl RecordIndex {
    fn shard_of(&self, id: u128) -> usize {
        (id >> 122) as usize & (self.shards.len() - 1)
    }

    /// An empty index with room for `keys` committed keys (no table doubling while loading).
    pub fn with_capacity(keys: usize) -> Self {
        let mut index = Self::default();
        let per_shard = keys / INDEX_SHARDS + keys / INDEX_SHARDS / 16 + 16;
        for shard in &mut index.shards {
            shard.committed.reserve(per_shard);
        }
        index
    }

    /// Adds stored keys (`segment::keys` blobs): sorted into shards, then each shard filled on
    /// its own core.
    pub fn extend_from_blobs(&mut self, blobs: &[Vec<u8>]) {
        let mut by_shard: Vec<Vec<(u128, u64)>> = vec![Vec::new(); self.shards.len()];
        for (id, content) in blobs.iter().flat_map(|blob| segment::keys(blob)) {
            by_shard[self.shard_of(id)].push((id, content));
        }
        self.shards
            .par_iter_mut()
            .zip(by_shard)
            .for_each(|(shard, keys)| {
                shard
                    .committed
                    .extend(keys.into_iter().map(|(id, content)| (id_key(id), content)));
            });
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.committed.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the keys of the unit of work just stored.
    pub fn commit(&mut self) {
        for shard in &mut self.shards {
            let mut pending = std::mem::take(&mut shard.pending);
            if pending.len() > shard.committed.len() {
                std::mem::swap(&mut pending, &mut shard.committed);
            }
            shard.committed.extend(pending);
        }
    }

    /// Forgets the keys of a unit of work that was not stored.
    pub fn discard(&mut self) {
        for shard in &mut self.shards {
            shard.pending = IdMap::default();
        }
    }

    /// Settles prechecked rows: each shard takes its rows in order, the shards in parallel.
    fn settle_all(&mut self, prechecks: &[&Precheck]) -> Vec<Settled> {
        let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); self.shards.len()];
        for (row, precheck) in prechecks.iter().enumerate() {
            if let Precheck::Valid { id_hash, .. } = precheck {
                rows_of[self.shard_of(*id_hash)].push(row as u32);
            }
        }
        let mut settled = vec![Settled::Rejected; prechecks.len()];
        let decided: Vec<Vec<(u32, Settled)>> = self
            .shards
            .par_iter_mut()
            .zip(rows_of)
            .map(|(shard, rows)| {
                rows.into_iter()
                    .map(|row| (row, shard.settle(prechecks[row as usize])))
                    .collect()
            })
            .collect();
        for (row, verdict) in decided.into_iter().flatten() {
            settled[row as usize] = verdict;
        }
        settled
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

/// What the row-local checks found.
#[derive(Debug, Clone)]
pub enum Precheck {
    Rejected(RejectReason, String),
    Valid {
        amount_micro: i64,
        month: Period,
        currency: Currency,
        id_hash: u128,
        content_hash: u64,
        /// Position of the partner in `MasterData::partners`, if it is there.
        partner: Option<u32>,
        /// Why the row is rejected unless the record index finds it a duplicate (unknown
        /// partner, missing FX rate).
        after_index: Option<(RejectReason, String)>,
    },
}

impl Precheck {
    /// The verdict, given what the record index decided.
    fn verdict(&self, settled: Settled, checker: &RowChecker, record_id: &str) -> RowVerdict {
        match (self, settled) {
            (Precheck::Rejected(reason, detail), _) => {
                RowVerdict::Rejected(*reason, detail.clone())
            }
            (_, Settled::Duplicate) => RowVerdict::Duplicate,
            (_, Settled::Conflict) => RowVerdict::Rejected(
                RejectReason::DuplicateConflict,
                format!("record_id `{record_id}` was already ingested with different content"),
            ),
            (
                Precheck::Valid {
                    after_index: Some((reason, detail)),
                    ..
                },
                _,
            ) => RowVerdict::Rejected(*reason, detail.clone()),
            (
                Precheck::Valid {
                    amount_micro,
                    month,
                    id_hash,
                    content_hash,
                    ..
                },
                _,
            ) => RowVerdict::Accepted {
                amount_micro: *amount_micro,
                month: *month,
                late: checker.is_late(*month),
                id_hash: *id_hash,
                content_hash: *content_hash,
            },
        }
    }
}

/// Eligibility of (partner position, month), shared by the cores that check rows.
type EligibilityCache = Vec<RwLock<FxHashMap<(u32, Period), bool>>>;

/// Validates rows against the snapshot and the records already ingested.
pub struct RowChecker<'m> {
    master: &'m MasterData,
    partner_list: Vec<&'m Partner>,
    /// Per partner position, what the row checks need, kept dense: a look at the partner
    /// itself is a cache miss per row.
    payout_terms: Vec<(Currency, Option<&'m Program>)>,
    partners: IdIndex,
    /// Lines of this month or earlier are late: their period is closed (SPEC §3).
    last_closed: Option<Period>,
    pub index: RecordIndex,
    eligible: EligibilityCache,
}

impl<'m> RowChecker<'m> {
    pub fn new(master: &'m MasterData, last_closed: Option<Period>, index: RecordIndex) -> Self {
        let partner_list: Vec<&Partner> = master.partners.values().collect();
        let partners = IdIndex::new(partner_list.iter().map(|p| p.partner_id.as_str()));
        let payout_terms = partner_list
            .iter()
            .map(|p| (p.payout_currency, master.programs.for_type(p.partner_type)))
            .collect();
        Self {
            master,
            partner_list,
            payout_terms,
            partners,
            last_closed,
            index,
            eligible: (0..64).map(|_| RwLock::default()).collect(),
        }
    }

    /// Settles prechecked rows against the record index, in row order.
    /// `record_id(row)` is asked only for the rows it names in a rejection.
    pub fn settle_all<'r>(
        &mut self,
        prechecks: &[&Precheck],
        record_id: impl Fn(usize) -> &'r str,
    ) -> Vec<RowVerdict> {
        let settled = self.index.settle_all(prechecks);
        prechecks
            .iter()
            .zip(settled)
            .enumerate()
            .map(|(row, (precheck, settled))| precheck.verdict(settled, self, record_id(row)))
            .collect()
    }

    /// The checks that need nothing but the row and the snapshot (everything but the
    /// record index): safe to run on many rows at once.
    pub fn precheck(&self, fields: &[&str; 7]) -> Precheck {
        let [
            record_id,
            partner_id,
            _customer,
            category,
            billing_month,
            amount,
            currency,
        ] = *fields;
        if fields.iter().any(|v| v.is_empty()) {
            let empty: Vec<&str> = REVENUE_COLUMNS
                .iter()
                .zip(fields)
                .filter(|(_, v)| v.is_empty())
                .map(|(c, _)| *c)
                .collect();
            return Precheck::Rejected(
                RejectReason::MissingField,
                format!("empty `{}`", empty.join("`, `")),
            );
        }
        let amount_micro = match parse_amount_micro(amount) {
            Ok(value) => value,
            Err(DecimalTextError::NotDecimal) => {
                return Precheck::Rejected(
                    RejectReason::InvalidAmount,
                    format!("amount `{amount}` is not a plain decimal"),
                );
            }
            Err(e) => {
                return Precheck::Rejected(
                    RejectReason::InvalidAmount,
                    format!("amount `{amount}`: {e}"),
                );
            }
        };
        let Some(line_currency) = Currency::parse(currency) else {
            return Precheck::Rejected(
                RejectReason::InvalidCurrency,
                format!("currency `{currency}` is not an ISO 4217 code"),
            );
        };
        let Ok(month) = billing_month.parse::<Period>() else {
            return Precheck::Rejected(
                RejectReason::InvalidPeriod,
                format!("billing_month `{billing_month}` is not YYYY-MM"),
            );
        };
        let partner = self.partners.get(partner_id);
        let after_index = match partner {
            None => Some((
                RejectReason::UnknownPartner,
                format!("partner `{partner_id}` is not in partners.csv"),
            )),
            Some(index) => self
                .missing_fx(index, category, month, line_currency)
                .map(|missing| (RejectReason::FxRateMissing, missing)),
        };
        Precheck::Valid {
            amount_micro,
            month,
            currency: line_currency,
            id_hash: xxh3_128(record_id.as_bytes()),
            content_hash: content_hash(fields),
            partner,
            after_index,
        }
    }

    /// Lines of the last closed month or earlier are late: their period is closed (SPEC §3).
    pub fn is_late(&self, month: Period) -> bool {
        self.last_closed.is_some_and(|closed| month <= closed)
    }

    /// A rate is needed only for an eligible partner's rated line in another currency, and
    /// only the direct rate counts (SPEC §7.15).
    fn missing_fx(
        &self,
        index: u32,
        category: &str,
        month: Period,
        currency: Currency,
    ) -> Option<String> {
        let (payout, program) = self.payout_terms[index as usize];
        if currency == payout {
            return None;
        }
        program?.rate(category, month)?;
        if self.master.fx.get(month, currency, payout).is_some() || !self.eligible(index, month) {
            return None;
        }
        Some(format!("no FX rate for {month} {currency}->{payout}"))
    }

    fn eligible(&self, index: u32, month: Period) -> bool {
        let shard = &self.eligible[index as usize % self.eligible.len()];
        // A poisoned lock only means another thread panicked; the cache is still sound.
        if let Some(known) = shard
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(index, month))
        {
            return *known;
        }
        let partner = self.partner_list[index as usize];
        let eligible = eligibility::verdict(self.master, partner, month.as_of_date())
            .is_some_and(|(_, r)| r.is_empty());
        shard
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((index, month), eligible);
        eligible
    }
}

/// Hash of the seven fields as text (SPEC §7.6), each length-prefixed so no two splits collide.
/// One call over a stack buffer: the same digest as hashing the pieces in turn, faster.
fn content_hash(fields: &[&str; 7]) -> u64 {
    let mut buffer = [0u8; 512];
    let total: usize = fields.iter().map(|f| f.len() + 8).sum();
    if total > buffer.len() {
        let mut hasher = Xxh3::new();
        for field in fields {
            hasher.update(&(field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        return hasher.digest();
    }
    let mut at = 0;
    for field in fields {
        buffer[at..at + 8].copy_from_slice(&(field.len() as u64).to_le_bytes());
        buffer[at + 8..at + 8 + field.len()].copy_from_slice(field.as_bytes());
        at += 8 + field.len();
    }
    xxh3_64(&buffer[..at])
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
struct CheckedPart<'t> {
    rows: Rows<'t>,
    prechecks: Vec<Precheck>,
    columns: DataFrame,
}

impl<'t> CheckedPart<'t> {
    fn new(checker: &RowChecker, rows: Rows<'t>, source_file: &str) -> PolarsResult<Self> {
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

/// A batch's column of partner positions in `MasterData::partners` (`u32::MAX`: none), found
/// by the row checks, so that computing the batch straight away need not look them up again.
pub const PARTNER_POSITION: &str = "partner_position";

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
        lines: LineCounter,
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
    pub fn open(file: &'f RevenueFile) -> Result<Self, String> {
        let extension = file
            .path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let source = match extension.as_deref() {
            Some("csv")
                if file
                    .plain
                    .map_or_else(|| is_plain_csv(&file.path), Ok)
                    .map_err(|e| format!("cannot read: {e}"))? =>
            {
                let (blocks, headers) = PlainCsvBlocks::open(&file.path)?;
                let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
                let positions = column_positions(&headers)?;
                Source::Plain {
                    blocks,
                    positions,
                    header_fields: headers.len(),
                }
            }
            Some("csv") => open_quoted_csv(&file.path)?,
            Some("parquet") => Source::Parquet {
                slices: parquet::open(&file.path)?.into_iter(),
            },
            _ => return Err("not a CSV or Parquet file (expected .csv or .parquet)".to_owned()),
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
    pub fn next_batch(&mut self, checker: &mut RowChecker) -> Result<Option<Step>, String> {
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
                        let parts =
                            check_owned(checker, &rows, source_file).map_err(encode_error)?;
                        settle(&mut self.ingest, source_file, checker, parts)
                    } else {
                        let parts =
                            check_plain(checker, &block, positions, *header_fields, source_file)
                                .map_err(encode_error)?;
                        settle(&mut self.ingest, source_file, checker, parts)
                    }
                }
                Source::Quoted {
                    reader,
                    positions,
                    header_fields,
                    lines,
                } => {
                    let rows = read_quoted(reader, positions, *header_fields, lines)?;
                    if rows.is_empty() {
                        return Ok(None);
                    }
                    let parts = check_owned(checker, &rows, source_file).map_err(encode_error)?;
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
            .map_err(encode_error)?;
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

    /// Row counts and rejections of the whole file, once `next_batch` has returned `None`.
    pub fn finish(self) -> FileIngest {
        self.ingest
    }
}

fn encode_error(e: PolarsError) -> String {
    format!("cannot encode segment: {e}")
}

/// A plain CSV block split into parts, each part split, checked and laid out in columns on
/// its own core.
fn check_plain<'t>(
    checker: &RowChecker,
    block: &'t PlainBlock,
    positions: &[usize; 7],
    header_fields: usize,
    source_file: &str,
) -> PolarsResult<Vec<CheckedPart<'t>>> {
    let mut first_line = block.first_line;
    let ranges: Vec<(Range<usize>, u64)> =
        split_lines(&block.text, rayon::current_num_threads() * 2)
            .into_iter()
            .map(|range| {
                let line = first_line;
                first_line += memchr::memchr_iter(b'\n', &block.text.as_bytes()[range.clone()])
                    .count() as u64;
                (range, line)
            })
            .collect();
    ranges
        .into_par_iter()
        .map(|(range, line)| {
            let rows = split_plain(&block.text, range, line, positions, header_fields);
            CheckedPart::new(checker, rows, source_file)
        })
        .collect()
}

/// Settles the rows of a block's parts in order (the record index is the one thing that needs
/// order): `each` sees every row with its verdict; the accepted rows come back as one batch.
fn decide<'t>(
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

/// A record as one CSV line, quoted where needed.
fn csv_line(texts: &[&str]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = writer.write_record(texts);
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\n')
        .to_owned()
}

fn open_quoted_csv(path: &Path) -> Result<Source, String> {
    let handle = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
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
    Ok(Source::Quoted {
        reader,
        positions,
        header_fields: headers.len(),
        lines: LineCounter::open(path).map_err(|e| format!("cannot read: {e}"))?,
    })
}

/// Physical line numbers of byte offsets, read forward through the file once: the `csv` crate
/// does not count blank lines, and a line number must be the one an editor shows. A line ends
/// at `\n`, `\r\n` or a lone `\r` (old Mac and some Excel exports), as the `csv` crate reads it.
struct LineCounter {
    reader: BufReader<File>,
    at: u64,
    line: u64,
    /// The last byte counted was a carriage return: a `\n` right after it ends no new line.
    after_cr: bool,
}

impl LineCounter {
    fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            reader: BufReader::with_capacity(1 << 16, File::open(path)?),
            at: 0,
            line: 1,
            after_cr: false,
        })
    }

    /// The line where a record starting at byte `offset` has its first character; offsets
    /// must not go backwards.
    fn line_at(&mut self, offset: u64) -> std::io::Result<u64> {
        use std::io::BufRead;
        while self.at < offset {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            let take = buffer.len().min((offset - self.at) as usize);
            let (ends, after_cr) = line_ends(&buffer[..take], self.after_cr);
            (self.line, self.after_cr) = (self.line + ends, after_cr);
            self.reader.consume(take);
            self.at += take as u64;
        }
        // The csv crate's record starts after the last terminator, before skipped blank lines.
        loop {
            let first = self.reader.fill_buf()?.first().copied();
            match first {
                Some(byte @ (b'\n' | b'\r')) => {
                    let (ends, after_cr) = line_ends(&[byte], self.after_cr);
                    (self.line, self.after_cr) = (self.line + ends, after_cr);
                }
                _ => break,
            }
            self.reader.consume(1);
            self.at += 1;
        }
        Ok(self.line)
    }
}

/// How many lines end in `bytes` (`\n`, `\r\n` or a lone `\r`), and whether it ends in `\r`;
/// `after_cr`: the byte before `bytes` was a carriage return.
fn line_ends(bytes: &[u8], after_cr: bool) -> (u64, bool) {
    let mut ends = 0;
    for at in memchr::memchr2_iter(b'\r', b'\n', bytes) {
        let follows_cr = if at == 0 {
            after_cr
        } else {
            bytes[at - 1] == b'\r'
        };
        if bytes[at] == b'\r' || !follows_cr {
            ends += 1;
        }
    }
    (ends, bytes.last().map_or(after_cr, |&b| b == b'\r'))
}

/// Up to a segment's worth of rows through the `csv` crate (files that quote).
fn read_quoted(
    reader: &mut csv::Reader<BufReader<File>>,
    positions: &[usize; 7],
    header_fields: usize,
    lines: &mut LineCounter,
) -> Result<Rows<'static>, String> {
    let mut record = csv::ByteRecord::new();
    let mut rows = Rows::default();
    while rows.len() < SEGMENT_ROWS && rows.text.len() < BLOCK_BYTES {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = match e.position() {
                    Some(p) => lines
                        .line_at(p.byte())
                        .map_err(|e| format!("cannot read: {e}"))?,
                    None => 0,
                };
                return Err(format!("not CSV (line {line}): {e}"));
            }
        }
        let line = match record.position() {
            Some(p) => lines
                .line_at(p.byte())
                .map_err(|e| format!("cannot read: {e}"))?,
            None => 0,
        };
        let mut texts: Vec<&str> = Vec::with_capacity(record.len());
        for field in record.iter() {
            texts.push(std::str::from_utf8(field).map_err(|_| format!("not UTF-8 (line {line})"))?);
        }
        let fields = positions.map(|p| texts.get(p).copied().unwrap_or(""));
        let problem = (texts.len() != header_fields).then_some(RowProblem::FieldCount {
            found: texts.len(),
            expected: header_fields,
        });
        let raw = csv_line(&texts);
        rows.push_owned(fields, Some(&bounded(&raw, MAX_RAW_BYTES)), line, problem)?;
    }
    Ok(rows)
}

/// A Parquet slice's rows, cut into a part per core, each part read out and checked there.
/// `offset` is the slice's first row in the file.
fn check_parquet(
    checker: &RowChecker,
    frame: &DataFrame,
    offset: usize,
    source_file: &str,
) -> Result<Vec<CheckedPart<'static>>, String> {
    let parts = rayon::current_num_threads() * 2;
    let size = frame.height().div_ceil(parts).max(1);
    (0..frame.height())
        .step_by(size)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let part = frame.slice(start as i64, size);
            let rows = parquet::rows(&part, offset + start)?;
            let text = part.columns().to_vec();
            CheckedPart::with_text(checker, rows, Some(text), source_file).map_err(encode_error)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::rows;

    /// Reads one revenue file against the fixtures' master data; returns (line, reason, raw)
    /// of each rejection and the number of accepted lines.
    fn read(name: &str, text: &str) -> (Vec<(Option<u64>, RejectReason, String)>, u64) {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let master = MasterData::load(&fixtures).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let file = RevenueFile {
            source_file: format!("revenue/{name}"),
            path,
            sha256: String::new(),
            plain: None,
        };
        let mut checker = RowChecker::new(&master, None, RecordIndex::default());
        let mut reader = FileReader::open(&file).unwrap();
        let mut rejections = Vec::new();
        while let Some(step) = reader.next_batch(&mut checker).unwrap() {
            rejections.extend(step.rejections);
        }
        let ingest = reader.finish();
        rejections.extend(ingest.rejections);
        assert_eq!(rejections.len() as u64, ingest.rejected);
        assert_eq!(
            ingest.rows,
            ingest.accepted + ingest.rejected + ingest.duplicates
        );
        let rejections = rejections
            .into_iter()
            .map(|r| (r.line, r.reason, r.raw))
            .collect();
        (rejections, ingest.accepted)
    }

    #[test]
    fn quoted_and_plain_files_report_physical_lines() {
        let header =
            "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n";
        let plain = format!(
            "{header}A-1,1000001,C-1,azure,2026-10,1.00,USD\n\nA-2,1000001,C-1,azure,2026-10,x,USD\nA-3,1000001,C-1,azure,2026-10,2.00,USD\nA-1,1000001,C-1,azure,2026-10,1.00,USD\n"
        );
        // The same rows, but the first customer's name is quoted across two lines.
        let quoted = format!(
            "{header}A-1,1000001,\"C\n1\",azure,2026-10,1.00,USD\n\nA-2,1000001,C-1,azure,2026-10,x,USD\nA-3,1000001,C-1,azure,2026-10,2.00,USD\nA-1,1000001,\"C\n1\",azure,2026-10,1.00,USD\n"
        );
        let (rejections, accepted) = read("plain.csv", &plain);
        assert_eq!(accepted, 2);
        assert_eq!(
            rejections,
            vec![(
                Some(4),
                RejectReason::InvalidAmount,
                "A-2,1000001,C-1,azure,2026-10,x,USD".to_owned()
            )]
        );
        let (rejections, accepted) = read("quoted.csv", &quoted);
        assert_eq!(accepted, 2);
        assert_eq!(
            rejections,
            vec![(
                Some(5),
                RejectReason::InvalidAmount,
                "A-2,1000001,C-1,azure,2026-10,x,USD".to_owned()
            )]
        );
    }

    const HEADER: &str =
        "record_id,partner_id,customer_id,product_category,billing_month,amount,currency\n";

    fn reasons(rejections: &[(Option<u64>, RejectReason, String)]) -> Vec<(u64, RejectReason)> {
        rejections
            .iter()
            .map(|(line, reason, _)| (line.unwrap_or(0), *reason))
            .collect()
    }

    #[test]
    fn a_row_with_another_field_count_than_the_header_is_rejected_whole_in_both_readers() {
        // The issue's case: `amount` last, a thousands separator makes one field too many.
        let header =
            "billing_month,record_id,partner_id,customer_id,product_category,currency,amount\n";
        let rows = "2026-10,T-0,1000001,C-001,azure,USD,10.00\n\
                    2026-10,T-1,1000001,C-001,azure,USD,1,234.50\n\
                    2026-10,T-2,1000001,C-001,azure,USD,-1,500.00\n\
                    2026-10,T-3,1000001,C-001,azure,USD\n";
        for (name, text) in [
            ("plain.csv", format!("{header}{rows}")),
            // A quoted field sends the file through the csv crate.
            (
                "quoted.csv",
                format!("{header}\"2026-10\",T-9,1000001,C-001,azure,USD,1.00\n{rows}"),
            ),
        ] {
            let (rejections, accepted) = read(name, &text);
            let first = if name == "plain.csv" { 2 } else { 3 };
            assert_eq!(accepted, if name == "plain.csv" { 1 } else { 2 }, "{name}");
            assert_eq!(
                reasons(&rejections),
                vec![
                    (first + 1, RejectReason::MalformedRow),
                    (first + 2, RejectReason::MalformedRow),
                    (first + 3, RejectReason::MalformedRow),
                ],
                "{name}"
            );
            assert_eq!(
                rejections[0].2, "2026-10,T-1,1000001,C-001,azure,USD,1,234.50",
                "{name}: raw as read"
            );
            assert_eq!(
                rejections[2].2, "2026-10,T-3,1000001,C-001,azure,USD",
                "{name}: never padded"
            );
        }
    }

    #[test]
    fn a_column_named_twice_rejects_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            (
                "a.csv",
                "record_id,partner_id,customer_id,product_category,billing_month,amount,currency,amount\nR,1,C,azure,2026-10,1,USD,2\n",
            ),
            (
                "b.csv",
                "record_id,partner_id,customer_id,product_category,billing_month,amount,currency,region,region\n\"R\",1,C,azure,2026-10,1,USD,x,y\n",
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let file = RevenueFile {
                source_file: format!("revenue/{name}"),
                path,
                sha256: String::new(),
                plain: None,
            };
            let error = FileReader::open(&file).err().expect(name);
            assert!(error.contains("appears more than once"), "{name}: {error}");
        }
        // Empty names, as a trailing comma leaves them, are not ambiguous.
        let (rejections, accepted) = read(
            "c.csv",
            &(HEADER.replace('\n', ",,\n") + "R-1,1000001,C,azure,2026-10,1.00,USD,,\n"),
        );
        assert_eq!((rejections.len(), accepted), (0, 1));
    }

    #[test]
    fn nul_bytes_and_overlong_fields_are_malformed_rows_with_bounded_raw_text() {
        let long = "x".repeat(rows::MAX_FIELD_BYTES + 1);
        let huge = "y".repeat(200_000);
        let text = format!(
            "{HEADER}R-1,1000001,C\0,azure,2026-10,1.00,USD\nR-2,1000001,{long},azure,2026-10,1.00,USD\nR-3,1000001,{huge},azure,2026-10,1.00,USD\nR-4,1000001,C,azure,2026-10,1.00,USD\n"
        );
        for name in ["plain.csv", "quoted.csv"] {
            let text = if name == "quoted.csv" {
                text.replace("R-4", "\"R-4\"")
            } else {
                text.clone()
            };
            let (rejections, accepted) = read(name, &text);
            assert_eq!(accepted, 1, "{name}");
            assert_eq!(
                reasons(&rejections),
                vec![
                    (2, RejectReason::MalformedRow),
                    (3, RejectReason::MalformedRow),
                    (4, RejectReason::MalformedRow)
                ],
                "{name}"
            );
            let raw = &rejections[2].2;
            assert!(
                raw.len() < rows::MAX_RAW_BYTES + 64,
                "{name}: raw kept is bounded: {}",
                raw.len()
            );
            assert!(raw.ends_with("bytes in all)"), "{name}: says it was cut");
        }
    }

    #[test]
    fn a_line_longer_than_the_limit_is_rejected_alone_without_holding_it() {
        let long = "z".repeat(rows::MAX_LINE_BYTES + 10);
        let text = format!(
            "{HEADER}R-1,1000001,C,azure,2026-10,1.00,USD\nR-2,1000001,{long},azure,2026-10,1.00,USD\nR-3,1000001,C,azure,2026-10,2.00,USD\n"
        );
        let (rejections, accepted) = read("long.csv", &text);
        assert_eq!(accepted, 2);
        assert_eq!(reasons(&rejections), vec![(3, RejectReason::MalformedRow)]);
        assert!(rejections[0].2.starts_with("R-2,1000001,zzz"));
        assert!(rejections[0].2.len() <= rows::MAX_RAW_BYTES + 64);
    }

    #[test]
    fn carriage_return_line_ends_give_the_lines_an_editor_shows() {
        let text = HEADER.replace('\n', "\r")
            + "R-1,1000001,C,azure,2026-10,1.00,USD\r\rR-2,1000001,C,azure,2026-10,x,USD\r\nR-3,1000001,C,azure,2026-10,y,USD\r";
        let (rejections, accepted) = read("cr.csv", &text);
        assert_eq!(accepted, 1);
        assert_eq!(
            reasons(&rejections),
            vec![
                (4, RejectReason::InvalidAmount),
                (5, RejectReason::InvalidAmount)
            ]
        );
    }

    #[test]
    fn rejections_are_handed_out_in_bounded_batches() {
        let mut text = HEADER.to_owned();
        let bad = REJECTION_BATCH * 2 + 17;
        for n in 0..bad {
            text.push_str(&format!("R-{n},1000001,C,azure,2026-10,bad,USD\n"));
        }
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let master = MasterData::load(&fixtures).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, text).unwrap();
        let file = RevenueFile {
            source_file: "revenue/bad.csv".into(),
            path,
            sha256: String::new(),
            plain: None,
        };
        let mut checker = RowChecker::new(&master, None, RecordIndex::default());
        let mut reader = FileReader::open(&file).unwrap();
        let mut handed_out = 0;
        while let Some(step) = reader.next_batch(&mut checker).unwrap() {
            assert!(step.lines.is_none());
            assert!(step.rejections.len() >= REJECTION_BATCH);
            handed_out += step.rejections.len();
        }
        let ingest = reader.finish();
        assert!(handed_out >= REJECTION_BATCH, "handed out before the end");
        assert_eq!(handed_out + ingest.rejections.len(), bad);
        assert_eq!(ingest.rejected as usize, bad);
    }
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

/// Checks retried rows again, before any new file (SPEC §7.16), in their order, through the
/// same checks and segments as a file's rows: one part per run of rows from the same file.
pub fn retry_rows(rows: &[PendingRow], checker: &mut RowChecker) -> PolarsResult<RetryOutcome> {
    let mut segments = Vec::new();
    let mut resolutions = Vec::with_capacity(rows.len());
    for same_file in rows.chunk_by(|a, b| a.source_file == b.source_file) {
        for batch in same_file.chunks(SEGMENT_ROWS) {
            let mut owned = Rows::default();
            for row in batch {
                let fields: [&str; 7] = std::array::from_fn(|i| row.fields[i].as_str());
                owned
                    .push_owned(fields, None, row.line, None)
                    .map_err(|e| PolarsError::ComputeError(e.into()))?;
            }
            let part = CheckedPart::new(checker, owned, &batch[0].source_file)?;
            let mut pending = batch.iter();
            let accepted = decide(checker, vec![part], |_, _, verdict| {
                let resolution = match verdict {
                    RowVerdict::Accepted { .. } | RowVerdict::Duplicate => {
                        RetryResolution::Resolved
                    }
                    RowVerdict::Rejected(reason, detail) => {
                        RetryResolution::StillRejected(reason, detail)
                    }
                };
                if let Some(row) = pending.next() {
                    resolutions.push((row.rejection_id, resolution));
                }
            })?;
            if let Some(accepted) = accepted {
                segments.push(accepted.encode()?);
            }
        }
    }
    Ok((segments, resolutions))
}
