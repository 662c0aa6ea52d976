//! A blob's parts, each verifiable the moment it arrives, by BLAKE3's own tree.
//!
//! A blob is named by its plain BLAKE3 hash ([`BlobHash`]). BLAKE3 hashes 1 KiB chunks into a
//! binary tree whose left subtree always holds the largest power of two of chunks that leaves at
//! least one for the right, so every aligned run of 1024 chunks — a [`PART`] of 1 MiB, the last
//! one possibly shorter — is a subtree whose chaining value (its non-root hash) the fetcher can
//! compute from the part alone. The **outline** is the list of those chaining values, one per
//! part, 32 bytes each (32 KiB for a GiB). A fetcher checks the outline once, by merging its
//! values up the same tree into the root and comparing that with the hash it was given; from then
//! on each part is checked on arrival against its value, so a peer that serves one bad part is
//! caught after 1 MiB, not after the whole blob, and the rest comes from elsewhere.
//!
//! A blob of one part has no outline (it is empty): the part is checked against the hash itself.
//! This is the BLAKE3 tree of the specification (and of Bao), computed with the `blake3` crate's
//! `hazmat` functions; PROTOCOL.md states it for another implementation.

use blake3::{
    Hasher,
    hazmat::{ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root},
};

use crate::content::BlobHash;

/// The size of every part but the last.
pub const PART: u64 = 1 << 20;

/// How many parts a blob of `size` bytes has (one, for an empty blob).
pub fn part_count(size: u64) -> u64 {
    size.div_ceil(PART).max(1)
}

/// The length of part `index` of a blob of `size` bytes.
pub fn part_len(size: u64, index: u64) -> u64 {
    size.saturating_sub(index * PART).min(PART)
}

/// The chaining values of a blob's parts, checked against its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    hash: BlobHash,
    size: u64,
    /// One per part; empty for a blob of one part.
    values: Vec<ChainingValue>,
}

/// An outline or part that is not what the hash says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutlineError {
    /// The outline has the wrong number of values for the size, or is not a multiple of 32 bytes.
    #[error("an outline of the wrong length for the blob's size")]
    Length,
    /// The values do not merge into the blob's hash.
    #[error("an outline that does not hash to the blob's hash")]
    Hash,
}

impl Outline {
    /// The outline a peer sent for the blob `hash` of `size` bytes, if it hashes to it.
    pub fn verified(hash: BlobHash, size: u64, bytes: &[u8]) -> Result<Self, OutlineError> {
        let parts = part_count(size);
        let expected = if parts == 1 { 0 } else { parts };
        if bytes.len() as u64 != expected * 32 {
            return Err(OutlineError::Length);
        }
        let values: Vec<ChainingValue> = bytes
            .chunks_exact(32)
            .map(|value| value.try_into().unwrap_or([0; 32]))
            .collect();
        if !values.is_empty() && root(&values) != hash {
            return Err(OutlineError::Hash);
        }
        Ok(Self { hash, size, values })
    }

    /// The blob it outlines.
    pub fn hash(&self) -> BlobHash {
        self.hash
    }

    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The outline as sent: the values, 32 bytes each, in part order.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.values.concat()
    }

    /// Whether `bytes` is part `index` of the blob.
    pub fn check_part(&self, index: u64, bytes: &[u8]) -> bool {
        if index >= part_count(self.size) || bytes.len() as u64 != part_len(self.size, index) {
            return false;
        }
        match usize::try_from(index).ok().and_then(|i| self.values.get(i)) {
            Some(value) => part_value(index, bytes) == *value,
            None => BlobHash::of(bytes) == self.hash,
        }
    }
}

/// The chaining value of part `index`.
fn part_value(index: u64, bytes: &[u8]) -> ChainingValue {
    let mut hasher = Hasher::new();
    hasher.set_input_offset(index * PART);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// The root hash of two or more parts' values: left subtree the largest power of two of parts
/// that leaves one for the right, as BLAKE3 splits chunks.
fn root(values: &[ChainingValue]) -> BlobHash {
    let (left, right) = values.split_at(left_len(values.len()));
    BlobHash(*merge_subtrees_root(&subtree(left), &subtree(right), Mode::Hash).as_bytes())
}

fn subtree(values: &[ChainingValue]) -> ChainingValue {
    match values {
        [value] => *value,
        _ => {
            let (left, right) = values.split_at(left_len(values.len()));
            merge_subtrees_non_root(&subtree(left), &subtree(right), Mode::Hash)
        }
    }
}

fn left_len(len: usize) -> usize {
    len.div_ceil(2).next_power_of_two()
}

/// Hashes a blob as it streams past, part by part: the hash and the outline in one pass.
#[derive(Debug, Default)]
pub struct OutlineBuilder {
    /// The whole blob, kept only while it is one part long.
    whole: Hasher,
    part: Hasher,
    in_part: u64,
    size: u64,
    values: Vec<ChainingValue>,
}

impl OutlineBuilder {
    /// Takes the next bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.in_part == PART {
                self.values.push(self.part.finalize_non_root());
                self.part = Hasher::new();
                self.part.set_input_offset(self.size);
                self.in_part = 0;
            }
            let take = (PART - self.in_part).min(bytes.len() as u64) as usize;
            let (now, rest) = bytes.split_at(take);
            self.part.update(now);
            if self.size < PART {
                self.whole.update(now);
            }
            self.in_part += take as u64;
            self.size += take as u64;
            bytes = rest;
        }
    }

    /// The blob's outline (its hash and size in it).
    pub fn finish(mut self) -> Outline {
        if self.size <= PART {
            let hash = BlobHash(*self.whole.finalize().as_bytes());
            return Outline {
                hash,
                size: self.size,
                values: Vec::new(),
            };
        }
        self.values.push(self.part.finalize_non_root());
        Outline {
            hash: root(&self.values),
            size: self.size,
            values: self.values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline_of(bytes: &[u8]) -> Outline {
        let mut builder = OutlineBuilder::default();
        // Uneven pieces, as reads return them.
        for piece in bytes.chunks(300_001) {
            builder.update(piece);
        }
        builder.finish()
    }

    fn blob(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    #[test]
    fn the_hash_is_plain_blake3_whatever_the_size() {
        let part = PART as usize;
        for len in [
            0,
            1,
            1024,
            part - 1,
            part,
            part + 1,
            3 * part,
            5 * part + 17,
        ] {
            let bytes = blob(len);
            let outline = outline_of(&bytes);
            assert_eq!(outline.hash(), BlobHash::of(&bytes), "{len} bytes");
            assert_eq!(outline.size(), len as u64);
        }
    }

    #[test]
    fn every_part_checks_against_a_verified_outline_and_a_changed_one_does_not() {
        let bytes = blob(5 * PART as usize + 17);
        let sent = outline_of(&bytes).to_bytes();
        let hash = BlobHash::of(&bytes);
        let outline = Outline::verified(hash, bytes.len() as u64, &sent).expect("verifies");
        for (index, part) in bytes.chunks(PART as usize).enumerate() {
            assert!(outline.check_part(index as u64, part), "part {index}");
            let mut bad = part.to_vec();
            bad[part.len() / 2] ^= 1;
            assert!(!outline.check_part(index as u64, &bad));
        }
        // A part in another place does not check, nor a short one.
        let first = &bytes[..PART as usize];
        assert!(!outline.check_part(1, first));
        assert!(!outline.check_part(0, &first[..100]));
        assert!(!outline.check_part(6, first));
    }

    #[test]
    fn an_outline_that_does_not_hash_to_the_blob_is_refused() {
        let bytes = blob(3 * PART as usize);
        let hash = BlobHash::of(&bytes);
        let mut sent = outline_of(&bytes).to_bytes();
        sent[40] ^= 1;
        assert_eq!(
            Outline::verified(hash, bytes.len() as u64, &sent),
            Err(OutlineError::Hash)
        );
        assert_eq!(
            Outline::verified(hash, bytes.len() as u64, &sent[..64]),
            Err(OutlineError::Length)
        );
    }

    #[test]
    fn a_blob_of_one_part_checks_against_its_hash() {
        let bytes = blob(1000);
        let outline = Outline::verified(BlobHash::of(&bytes), 1000, &[]).expect("an empty outline");
        assert!(outline.check_part(0, &bytes));
        assert!(!outline.check_part(0, &bytes[1..]));
    }

    #[test]
    fn part_lengths_cover_the_blob() {
        assert_eq!(part_count(0), 1);
        assert_eq!(part_count(PART), 1);
        assert_eq!(part_count(PART + 1), 2);
        assert_eq!(part_len(PART + 1, 1), 1);
        assert_eq!(part_len(PART + 1, 2), 0);
    }
}
