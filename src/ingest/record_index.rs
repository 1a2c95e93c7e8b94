//! The record index (SPEC §2, §7.6): the `record_id`s ingested before that the lines being
//! checked may repeat, by key (`record_key`), with the key of their seven fields, for the
//! duplicate check, the one check that needs row order. Sharded by id key so that each shard
//! settles its rows in order while the shards run in parallel. It holds keys only, never a row,
//! and never decides anything but new, duplicate or conflict.
//!
//! History is not held whole: a run first collects the id keys of the lines it is about to
//! check into an `IdFilter` (a bitmap, 4 bytes a new line), and loads of the stored keys only
//! those the filter lets through: every stored key a new line can match, and a few others. A
//! row whose id the filter was not given is counted (`uncovered`) and fails the run: the index
//! could not have known its history.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use rayon::prelude::*;

use super::record_key::RecordHasher;
use super::segment;

/// `record_id`s ingested before, as (key of the id -> key of the seven fields). The keys are
/// keyed SHA-256 (`record_key`): a false match between two ids is practically impossible (about
/// 2^-64 at 10^10 ids) and cannot be made on purpose. Split into shards by id key so that rows
/// are settled on every core, each shard in row order.
#[derive(Debug)]
pub struct RecordIndex {
    shards: Vec<IndexShard>,
    hasher: RecordHasher,
    /// The id keys this index was loaded for; `None`: every stored key is loaded.
    covers: Option<IdFilter>,
    /// Rows settled whose id key `covers` was not given.
    uncovered: u64,
}

/// Bits of an `IdFilter` per id key given: with two bits set a key, about 0.4% of the stored
/// keys that are not asked for pass it (and are loaded, harmlessly).
const FILTER_BITS_PER_KEY: usize = 32;
/// The smallest filter, so that a few keys do not let every stored key through.
const MIN_FILTER_BITS: usize = 1 << 16;

/// A set of id keys that may answer yes for a key it was not given, never no for one it was.
#[derive(Debug, Clone)]
pub struct IdFilter {
    words: Vec<u64>,
    mask: u64,
}

impl IdFilter {
    /// A filter of `keys`.
    pub fn of(keys: &[u128]) -> Self {
        let bits = (keys.len() * FILTER_BITS_PER_KEY)
            .max(MIN_FILTER_BITS)
            .next_power_of_two();
        let mut filter = Self {
            words: vec![0; bits / 64],
            mask: bits as u64 - 1,
        };
        for &key in keys {
            for bit in filter.bits(key) {
                filter.words[(bit >> 6) as usize] |= 1 << (bit & 63);
            }
        }
        filter
    }

    /// Two bits of a key: the keys are uniformly random, so their two words serve as two hashes.
    fn bits(&self, key: u128) -> [u64; 2] {
        [key as u64 & self.mask, (key >> 64) as u64 & self.mask]
    }

    pub fn may_contain(&self, key: u128) -> bool {
        self.bits(key)
            .iter()
            .all(|&bit| self.words[(bit >> 6) as usize] & (1 << (bit & 63)) != 0)
    }
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
    /// An index of no history, under a random secret: for checks that store nothing.
    fn default() -> Self {
        Self::new(RecordHasher::random(), None)
    }
}

impl IndexShard {
    /// The index part of settling a row (SPEC §2 order: duplicates before the partner and FX
    /// checks): a new id is taken only by a row that is accepted.
    fn settle(&mut self, row: Option<RowKey>) -> Settled {
        let Some(RowKey {
            id_hash,
            content_hash,
            takes_id,
        }) = row
        else {
            return Settled::Rejected;
        };
        let key = id_key(id_hash);
        // One probe of the pending table for both the look-up and the insert.
        let slot = match self.pending.entry(key) {
            Entry::Occupied(existing) => Err(*existing.get()),
            Entry::Vacant(slot) => match self.committed.get(&key) {
                Some(existing) => Err(*existing),
                None => Ok(slot),
            },
        };
        match slot {
            Err(existing) if existing == content_hash => Settled::Duplicate,
            Err(_) => Settled::Conflict,
            Ok(_) if !takes_id => Settled::Rejected,
            Ok(slot) => {
                slot.insert(content_hash);
                Settled::Accepted
            }
        }
    }
}

/// What the record index needs of a row that passed the row-local checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowKey {
    pub id_hash: u128,
    pub content_hash: u64,
    /// Whether the row is accepted unless the index finds its id (else it is rejected for
    /// another reason, and only a duplicate or a conflict can change that).
    pub takes_id: bool,
}

/// What the record index decided for a prechecked row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    Accepted,
    Duplicate,
    Conflict,
    /// Rejected for the reason its precheck found.
    Rejected,
}

fn shard_of(id: u128, shards: usize) -> usize {
    (id >> 122) as usize & (shards - 1)
}

impl RecordIndex {
    fn shard_of(&self, id: u128) -> usize {
        shard_of(id, self.shards.len())
    }

    /// An empty index making keys with `hasher`, to be loaded with the stored keys `covers`
    /// lets through (`None`: all of them).
    pub fn new(hasher: RecordHasher, covers: Option<IdFilter>) -> Self {
        Self {
            shards: (0..INDEX_SHARDS).map(|_| IndexShard::default()).collect(),
            hasher,
            covers,
            uncovered: 0,
        }
    }

    pub fn hasher(&self) -> &RecordHasher {
        &self.hasher
    }

    /// Rows settled so far whose id key the index was not loaded for: a run must find none.
    pub fn uncovered(&self) -> u64 {
        self.uncovered
    }

    /// Adds the stored keys (`segment::keys` blobs) the index is loaded for: filtered on every
    /// core, sorted into shards, then each shard filled on its own core.
    pub fn extend_from_blobs(&mut self, blobs: &[Vec<u8>]) {
        let covers = self.covers.as_ref();
        let shards = self.shards.len();
        let wanted: Vec<Vec<(u128, u64)>> = blobs
            .par_iter()
            .map(|blob| {
                segment::keys(blob)
                    .filter(|(id, _)| covers.is_none_or(|filter| filter.may_contain(*id)))
                    .collect()
            })
            .collect();
        let mut by_shard: Vec<Vec<(u128, u64)>> = vec![Vec::new(); shards];
        for (id, content) in wanted.into_iter().flatten() {
            by_shard[shard_of(id, shards)].push((id, content));
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
    /// `key_of` gives a row's key, `None` for a row rejected by its own checks.
    pub(super) fn settle_all<R: Sync>(
        &mut self,
        prechecks: &[R],
        key_of: impl Fn(&R) -> Option<RowKey> + Sync,
    ) -> Vec<Settled> {
        let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); self.shards.len()];
        for (row, precheck) in prechecks.iter().enumerate() {
            if let Some(key) = key_of(precheck) {
                if self
                    .covers
                    .as_ref()
                    .is_some_and(|filter| !filter.may_contain(key.id_hash))
                {
                    self.uncovered += 1;
                }
                rows_of[self.shard_of(key.id_hash)].push(row as u32);
            }
        }
        let mut settled = vec![Settled::Rejected; prechecks.len()];
        let decided: Vec<Vec<(u32, Settled)>> = self
            .shards
            .par_iter_mut()
            .zip(rows_of)
            .map(|(shard, rows)| {
                rows.into_iter()
                    .map(|row| (row, shard.settle(key_of(&prechecks[row as usize]))))
                    .collect()
            })
            .collect();
        for (row, verdict) in decided.into_iter().flatten() {
            settled[row as usize] = verdict;
        }
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id_hash: u128, content_hash: u64) -> Option<RowKey> {
        Some(RowKey {
            id_hash,
            content_hash,
            takes_id: true,
        })
    }

    fn blob(keys: &[(u128, u64)]) -> Vec<u8> {
        let mut blob = Vec::new();
        for (id, content) in keys {
            blob.extend_from_slice(&id.to_le_bytes());
            blob.extend_from_slice(&content.to_le_bytes());
        }
        blob
    }

    #[test]
    fn a_stored_key_the_filter_lets_through_is_a_candidate_never_a_match() {
        let asked: u128 = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321;
        // The same filter bits (the low 16 bits of both words) and shard, another id key.
        let other = asked ^ (1 << 40) ^ (1 << 100);
        let filter = IdFilter::of(&[asked]);
        assert!(filter.may_contain(other), "the test needs a candidate");
        let mut index = RecordIndex::new(RecordHasher::random(), Some(filter));
        // Stored: the candidate (same content key), and a key the filter keeps out.
        index.extend_from_blobs(&[blob(&[(other, 7), (asked ^ 1, 7)])]);
        assert_eq!(index.len(), 1, "only the candidate is loaded");
        let settled = index.settle_all(&[row(asked, 7)], |r| *r);
        assert_eq!(settled, vec![Settled::Accepted]);
        assert_eq!(index.uncovered(), 0);
    }

    #[test]
    fn a_stored_id_is_a_duplicate_with_its_content_and_a_conflict_without() {
        let id: u128 = 0xfeed_0000_0000_0000_0000_0000_0000_beef;
        let mut index = RecordIndex::new(RecordHasher::random(), Some(IdFilter::of(&[id])));
        index.extend_from_blobs(&[blob(&[(id, 7)])]);
        let settled = index.settle_all(&[row(id, 7), row(id, 8)], |r| *r);
        assert_eq!(settled, vec![Settled::Duplicate, Settled::Conflict]);
    }

    #[test]
    fn a_row_the_index_was_not_loaded_for_is_counted() {
        let mut index = RecordIndex::new(RecordHasher::random(), Some(IdFilter::of(&[1])));
        // Not in the filter: its history was never loaded.
        let stranger = (3u128 << 64) | 3;
        index.settle_all(&[row(stranger, 1)], |r| *r);
        assert_eq!(index.uncovered(), 1);
        // An index loaded whole covers every row.
        let mut whole = RecordIndex::default();
        whole.settle_all(&[row(stranger, 1)], |r| *r);
        assert_eq!(whole.uncovered(), 0);
    }
}
