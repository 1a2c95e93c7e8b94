//! Record keys (SPEC §2, §7.6): the 24 bytes a line that the duplicate check compares, a
//! 128-bit key of the `record_id` and a 64-bit key of the seven fields. Both are SHA-256 keyed
//! by the store's secret (`Store::record_key_secret`), so that a partner, who uploads the files
//! but never sees the secret, cannot make two ids or two contents share a key on purpose (an
//! unkeyed fast hash such as xxh3 can be collided at will), and by chance two of 10^10 ids
//! share an id key with a probability of about 2^-64. Pure: never reads the secret itself.

use sha2::{Digest, Sha256};

/// Bytes of the secret the keys are made with.
pub const SECRET_BYTES: usize = 32;

/// Makes record keys under one secret. Each key starts from the state of a hasher that has
/// taken one 64-byte block (the secret and what the key is of), so a key costs the blocks of
/// its text only.
#[derive(Clone)]
pub struct RecordHasher {
    id_state: Sha256,
    content_state: Sha256,
}

impl std::fmt::Debug for RecordHasher {
    // The secret never goes into a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordHasher(..)")
    }
}

/// The first block of a keyed hash: the secret, then what is keyed, zero-padded.
fn first_block(secret: &[u8; SECRET_BYTES], purpose: &[u8]) -> Sha256 {
    let mut block = [0u8; 64];
    block[..SECRET_BYTES].copy_from_slice(secret);
    block[SECRET_BYTES..SECRET_BYTES + purpose.len()].copy_from_slice(purpose);
    let mut state = Sha256::new();
    state.update(block);
    state
}

impl RecordHasher {
    pub fn new(secret: &[u8; SECRET_BYTES]) -> Self {
        Self {
            id_state: first_block(secret, b"payout record_id"),
            content_state: first_block(secret, b"payout seven fields"),
        }
    }

    /// A hasher under a secret written as 64 hex digits (as the store keeps it).
    pub fn from_hex(secret: &str) -> Option<Self> {
        if secret.len() != SECRET_BYTES * 2 || !secret.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; SECRET_BYTES];
        for (at, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&secret[at * 2..at * 2 + 2], 16).ok()?;
        }
        Some(Self::new(&bytes))
    }

    /// A hasher under a fresh random secret, for checks that store nothing (`preview`, tests).
    pub fn random() -> Self {
        let mut secret = [0u8; SECRET_BYTES];
        secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self::new(&secret)
    }

    /// The key of a `record_id`.
    pub fn id_key(&self, record_id: &str) -> u128 {
        let mut state = self.id_state.clone();
        state.update(record_id.as_bytes());
        let digest = state.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        u128::from_le_bytes(key)
    }

    /// The key of the seven fields as text, each length-prefixed so that no two splits of the
    /// same bytes share it. One update over a stack buffer where the fields fit.
    pub fn content_key(&self, fields: &[&str; 7]) -> u64 {
        let mut state = self.content_state.clone();
        let mut buffer = [0u8; 512];
        let total: usize = fields.iter().map(|f| f.len() + 8).sum();
        if total > buffer.len() {
            for field in fields {
                state.update((field.len() as u64).to_le_bytes());
                state.update(field.as_bytes());
            }
        } else {
            let mut at = 0;
            for field in fields {
                buffer[at..at + 8].copy_from_slice(&(field.len() as u64).to_le_bytes());
                buffer[at + 8..at + 8 + field.len()].copy_from_slice(field.as_bytes());
                at += 8 + field.len();
            }
            state.update(&buffer[..at]);
        }
        let digest = state.finalize();
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: [&str; 7] = ["R1", "P1", "C1", "azure", "2026-10", "10.00", "USD"];

    #[test]
    fn keys_depend_on_the_secret_and_on_every_field() {
        let one = RecordHasher::new(&[1; SECRET_BYTES]);
        let same = RecordHasher::new(&[1; SECRET_BYTES]);
        let other = RecordHasher::new(&[2; SECRET_BYTES]);
        assert_eq!(one.id_key("R1"), same.id_key("R1"));
        assert_eq!(one.content_key(&FIELDS), same.content_key(&FIELDS));
        assert_ne!(one.id_key("R1"), other.id_key("R1"));
        assert_ne!(one.content_key(&FIELDS), other.content_key(&FIELDS));
        assert_ne!(one.id_key("R1"), one.id_key("R2"));
        for field in 0..7 {
            let mut changed = FIELDS;
            changed[field] = "x";
            assert_ne!(
                one.content_key(&FIELDS),
                one.content_key(&changed),
                "{field}"
            );
        }
        // The same bytes split otherwise between two fields.
        let mut shifted = FIELDS;
        (shifted[0], shifted[1]) = ("R1P", "1");
        assert_ne!(one.content_key(&FIELDS), one.content_key(&shifted));
    }

    #[test]
    fn a_secret_reads_from_its_hex_digits_only() {
        let hex = "01".repeat(SECRET_BYTES);
        let read = RecordHasher::from_hex(&hex).map(|h| h.id_key("R1"));
        assert_eq!(
            read,
            Some(RecordHasher::new(&[1; SECRET_BYTES]).id_key("R1"))
        );
        assert!(RecordHasher::from_hex(&hex[2..]).is_none());
        assert!(RecordHasher::from_hex(&"zz".repeat(SECRET_BYTES)).is_none());
    }

    #[test]
    fn long_fields_key_as_the_buffered_path_would() {
        let hasher = RecordHasher::new(&[7; SECRET_BYTES]);
        let long = "x".repeat(600);
        let fields = [
            long.as_str(),
            "P1",
            "C1",
            "azure",
            "2026-10",
            "10.00",
            "USD",
        ];
        let mut state = hasher.content_state.clone();
        for field in &fields {
            state.update((field.len() as u64).to_le_bytes());
            state.update(field.as_bytes());
        }
        let digest = state.finalize();
        let expected = u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]));
        assert_eq!(hasher.content_key(&fields), expected);
    }
}
