//! Ids to positions without touching the ids' text on the hot path: an id of up to 15 bytes is
//! packed, with its length, into the hash key itself, so a lookup is one probe of a compact
//! table instead of a probe plus a comparison against text elsewhere on the heap.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rustc_hash::FxHashMap;

#[derive(Debug, Default)]
pub struct IdIndex {
    /// Ids of up to 7 bytes: 16-byte entries, so the table of 100,000 ids stays in cache.
    short: HashMap<u64, u32, BuildHasherDefault<PackedHasher>>,
    packed: HashMap<u128, u32, BuildHasherDefault<PackedHasher>>,
    long: FxHashMap<Box<str>, u32>,
}

/// Hashes a packed id with one folded 128-bit multiply: good bits at both ends, which the
/// table needs (ids like `2000123` differ in a byte or two).
#[derive(Default)]
struct PackedHasher(u64);

impl Hasher for PackedHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    fn write_u128(&mut self, word: u128) {
        self.write_u64(word as u64);
        self.write_u64((word >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// `id`'s bytes and its length (in the last byte) in `N` bytes, if it fits.
fn packed<const N: usize>(id: &str) -> Option<[u8; N]> {
    let bytes = id.as_bytes();
    if bytes.len() >= N {
        return None;
    }
    let mut key = [0u8; N];
    key[..bytes.len()].copy_from_slice(bytes);
    key[N - 1] = bytes.len() as u8;
    Some(key)
}

fn pack_short(id: &str) -> Option<u64> {
    packed::<8>(id).map(u64::from_le_bytes)
}

fn pack(id: &str) -> Option<u128> {
    packed::<16>(id).map(u128::from_le_bytes)
}

impl IdIndex {
    /// Positions in the order given.
    pub fn new<'a>(ids: impl Iterator<Item = &'a str>) -> Self {
        let mut index = Self::default();
        for (position, id) in ids.enumerate() {
            let position = position as u32;
            if let Some(key) = pack_short(id) {
                index.short.insert(key, position);
            } else if let Some(key) = pack(id) {
                index.packed.insert(key, position);
            } else {
                index.long.insert(id.into(), position);
            }
        }
        index
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        if let Some(key) = pack_short(id) {
            return self.short.get(&key).copied();
        }
        match pack(id) {
            Some(key) => self.packed.get(&key).copied(),
            None => self.long.get(id).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_short_and_long_ids_exactly() {
        let ids = [
            "P1",
            "P10",
            "",
            "a-partner-id-longer-than-15",
            "P1\0",
            "1234567",
            "12345678",
            "123456789012345",
        ];
        let index = IdIndex::new(ids.iter().copied());
        for (position, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id), Some(position as u32), "{id:?}");
        }
        assert_eq!(index.get("P2"), None);
        assert_eq!(index.get("P1\0\0"), None);
        assert_eq!(index.get("1234568"), None);
        assert_eq!(index.get("123456789012346"), None);
        assert_eq!(index.get("a-partner-id-longer-than-16"), None);
    }
}
