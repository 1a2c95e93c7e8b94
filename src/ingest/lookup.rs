//! Ids to positions without touching the ids' text on the hot path: an id of up to 15 bytes is
//! packed, with its length, into the hash key itself, so a lookup is one probe of a compact
//! table instead of a probe plus a comparison against text elsewhere on the heap.

use rustc_hash::FxHashMap;

#[derive(Debug, Default)]
pub struct IdIndex {
    packed: FxHashMap<u128, u32>,
    long: FxHashMap<Box<str>, u32>,
}

fn pack(id: &str) -> Option<u128> {
    let bytes = id.as_bytes();
    if bytes.len() > 15 {
        return None;
    }
    let mut key = [0u8; 16];
    key[..bytes.len()].copy_from_slice(bytes);
    key[15] = bytes.len() as u8;
    Some(u128::from_le_bytes(key))
}

impl IdIndex {
    /// Positions in the order given.
    pub fn new<'a>(ids: impl Iterator<Item = &'a str>) -> Self {
        let mut index = Self::default();
        for (position, id) in ids.enumerate() {
            match pack(id) {
                Some(key) => index.packed.insert(key, position as u32),
                None => index.long.insert(id.into(), position as u32),
            };
        }
        index
    }

    pub fn get(&self, id: &str) -> Option<u32> {
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
        let ids = ["P1", "P10", "", "a-partner-id-longer-than-15", "P1\0"];
        let index = IdIndex::new(ids.iter().copied());
        for (position, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id), Some(position as u32), "{id:?}");
        }
        assert_eq!(index.get("P2"), None);
        assert_eq!(index.get("P1\0\0"), None);
        assert_eq!(index.get("a-partner-id-longer-than-16"), None);
    }
}
