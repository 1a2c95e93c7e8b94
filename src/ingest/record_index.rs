//! The record index (SPEC §2, §7.6): every `record_id` ever ingested, by hash, with the hash of
//! its seven fields, for the duplicate check, the one check that needs row order. Sharded by
//! id hash so that each shard settles its rows in order while the shards run in parallel. It
//! holds hashes only, never a row, and never decides anything but new, duplicate or conflict.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use rayon::prelude::*;

use super::segment;

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
    /// `key_of` gives a row's key, `None` for a row rejected by its own checks.
    pub(super) fn settle_all<R: Sync>(
        &mut self,
        prechecks: &[R],
        key_of: impl Fn(&R) -> Option<RowKey> + Sync,
    ) -> Vec<Settled> {
        let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); self.shards.len()];
        for (row, precheck) in prechecks.iter().enumerate() {
            if let Some(key) = key_of(precheck) {
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
