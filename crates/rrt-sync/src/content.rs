//! What a clipboard entry holds besides its text: representations of one copied value, by MIME
//! type, as desktops offer them — `text/html` beside the plain text of a browser's selection,
//! `image/png` for a screenshot, a file list for files.
//!
//! Each [`Representation`] names its bytes by their BLAKE3 [`BlobHash`] and size. Small ones
//! carry the bytes with them ([`Representation::data`], at most [`INLINE_MAX`]); larger ones are
//! only announced, and their bytes fetched from any peer that holds them, in parts verified
//! against the hash (see [`outline`](crate::outline) and [`BlobSync`](crate::BlobSync)). The
//! plain text stays in [`ClipEntry::text`](crate::ClipEntry::text), which every version of the
//! protocol carries.
//!
//! A representation from a peer is checked before it is believed ([`Representation::check`]):
//! a bounded MIME type, inline bytes that are what their hash and size say, and at most
//! [`MAX_REPRESENTATIONS`] per entry — a peer cannot make a name, a size or a list hold more than
//! it may.

use std::{fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The largest representation carried inline in a clipboard update; larger ones are announced by
/// hash and fetched in parts.
pub const INLINE_MAX: u64 = 64 * 1024;
/// The most representations of one entry taken from a peer.
pub const MAX_REPRESENTATIONS: usize = 16;
/// The longest MIME type taken from a peer, in bytes.
pub const MAX_MIME: usize = 255;
/// The MIME type of a list of files: a JSON [`FileList`](crate::FileList) manifest whose files'
/// bytes are blobs of their own.
pub const FILES: &str = "application/x-rrt-files+json";

/// The BLAKE3 hash of a value's bytes: its name wherever it is stored or asked for. Written as 64
/// lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({self})")
    }
}

/// Text that is not 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a blob hash is 64 hex digits")]
pub struct BadHash;

impl FromStr for BlobHash {
    type Err = BadHash;

    fn from_str(text: &str) -> Result<Self, BadHash> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return Err(BadHash);
        }
        let mut hash = [0; 32];
        for (byte, pair) in hash.iter_mut().zip(text.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| BadHash)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| BadHash)?;
        }
        Ok(Self(hash))
    }
}

impl Serialize for BlobHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlobHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'_, str>>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// One representation of a copied value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Representation {
    /// Its MIME type, as the desktop named it (`image/png`, `text/html`).
    pub mime: String,
    /// Its size in bytes.
    pub size: u64,
    /// The BLAKE3 hash of its bytes.
    pub hash: BlobHash,
    /// Its bytes, when small enough to travel inline; otherwise fetched by hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Inline>,
    /// An image's width in pixels, where cheap to know (PNG, GIF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// An image's height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// Why a representation from a peer was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// More representations than [`MAX_REPRESENTATIONS`].
    #[error("{0} representations (at most {MAX_REPRESENTATIONS})")]
    TooMany(usize),
    /// An empty MIME type, or one over [`MAX_MIME`] bytes or with control characters.
    #[error("a MIME type that is empty, over {MAX_MIME} bytes or not printable")]
    BadMime,
    /// Inline bytes whose length or hash differ from what the representation says.
    #[error("inline bytes of {mime} that do not match their size or hash")]
    Mismatch {
        /// The representation's type.
        mime: String,
    },
    /// Inline bytes over [`INLINE_MAX`].
    #[error("{size} inline bytes (at most {INLINE_MAX})")]
    InlineTooLarge {
        /// Their size.
        size: u64,
    },
}

impl Representation {
    /// A representation of `bytes`, inline when at most `inline_max` bytes long, with an image's
    /// dimensions when its header says them.
    pub fn new(mime: impl Into<String>, bytes: &[u8], inline_max: u64) -> Self {
        let size = bytes.len() as u64;
        let (width, height) = dimensions(bytes).unzip();
        Self {
            mime: mime.into(),
            size,
            hash: BlobHash::of(bytes),
            data: (size <= inline_max.min(INLINE_MAX)).then(|| Inline(bytes.into())),
            width,
            height,
        }
    }

    /// A representation stored as a blob (imported from a file, say): announced, not inline.
    pub fn blob(mime: impl Into<String>, hash: BlobHash, size: u64) -> Self {
        Self {
            mime: mime.into(),
            size,
            hash,
            data: None,
            width: None,
            height: None,
        }
    }

    /// Whether its bytes must be fetched.
    pub fn is_blob(&self) -> bool {
        self.data.is_none()
    }

    /// Checks what a peer sent: a sane MIME type, and inline bytes that are what they claim.
    pub fn check(&self) -> Result<(), ContentError> {
        let printable = self.mime.bytes().all(|byte| (0x20..0x7f).contains(&byte));
        if self.mime.is_empty() || self.mime.len() > MAX_MIME || !printable {
            return Err(ContentError::BadMime);
        }
        if let Some(Inline(bytes)) = &self.data {
            if bytes.len() as u64 > INLINE_MAX {
                return Err(ContentError::InlineTooLarge {
                    size: bytes.len() as u64,
                });
            }
            if bytes.len() as u64 != self.size || BlobHash::of(bytes) != self.hash {
                return Err(ContentError::Mismatch {
                    mime: self.mime.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Checks every representation of an entry from a peer.
pub fn check_content(content: &[Representation]) -> Result<(), ContentError> {
    if content.len() > MAX_REPRESENTATIONS {
        return Err(ContentError::TooMany(content.len()));
    }
    content.iter().try_for_each(Representation::check)
}

/// Inline bytes, shared (an entry is cloned for saves, events and history without copying them):
/// base64 in JSON, raw bytes in MessagePack.
#[derive(Clone, PartialEq, Eq)]
pub struct Inline(pub Arc<[u8]>);

impl fmt::Debug for Inline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Inline({} bytes)", self.0.len())
    }
}

impl Serialize for Inline {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::bytes_as_base64::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Inline {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::bytes_as_base64::deserialize(deserializer).map(|bytes| Self(bytes.into()))
    }
}

/// An image's width and height from its first bytes: PNG's `IHDR`, GIF's logical screen. Other
/// formats need a decoder and go without.
pub fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) && bytes.get(12..16) == Some(b"IHDR") {
        let word = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
        };
        return Some((word(16)?, word(20)?));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        let half = |at: usize| {
            bytes
                .get(at..at + 2)
                .and_then(|b| b.try_into().ok())
                .map(|b| u32::from(u16::from_le_bytes(b)))
        };
        return Some((half(6)?, half(8)?));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_reads_back_from_its_hex() {
        let hash = BlobHash::of(b"abc");
        let text = hash.to_string();
        assert_eq!(
            text,
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert_eq!(text.parse(), Ok(hash));
        assert_eq!("zz".parse::<BlobHash>(), Err(BadHash));
        assert_eq!("é".repeat(32).parse::<BlobHash>(), Err(BadHash));
    }

    #[test]
    fn small_bytes_travel_inline_and_large_ones_by_hash() {
        let small = Representation::new("text/html", b"<b>hi</b>", INLINE_MAX);
        assert!(!small.is_blob());
        assert_eq!(small.check(), Ok(()));
        let large = Representation::new("image/png", &vec![7; 100_000], INLINE_MAX);
        assert!(large.is_blob());
        assert_eq!(large.size, 100_000);
    }

    #[test]
    fn inline_bytes_that_lie_about_their_hash_or_size_are_refused() {
        let mut lying = Representation::new("text/html", b"<b>hi</b>", INLINE_MAX);
        lying.hash = BlobHash::of(b"something else");
        assert!(matches!(lying.check(), Err(ContentError::Mismatch { .. })));
        let mut short = Representation::new("text/html", b"<b>hi</b>", INLINE_MAX);
        short.size = 3;
        assert!(matches!(short.check(), Err(ContentError::Mismatch { .. })));
    }

    #[test]
    fn names_and_lists_from_a_peer_are_bounded() {
        let mut bad = Representation::new("x".repeat(MAX_MIME + 1), b"", INLINE_MAX);
        assert_eq!(bad.check(), Err(ContentError::BadMime));
        bad.mime = "text/\nhtml".into();
        assert_eq!(bad.check(), Err(ContentError::BadMime));
        let many = vec![Representation::new("a/b", b"", INLINE_MAX); MAX_REPRESENTATIONS + 1];
        assert_eq!(
            check_content(&many),
            Err(ContentError::TooMany(MAX_REPRESENTATIONS + 1))
        );
    }

    #[test]
    fn png_and_gif_headers_give_dimensions() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(1920u32.to_be_bytes());
        png.extend(1080u32.to_be_bytes());
        assert_eq!(dimensions(&png), Some((1920, 1080)));
        assert_eq!(dimensions(b"GIF89a\x40\x01\xf0\x00"), Some((320, 240)));
        assert_eq!(dimensions(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(dimensions(b"plain"), None);
    }

    #[test]
    fn json_carries_inline_bytes_as_base64() {
        let rep = Representation::new("text/html", b"<b>", INLINE_MAX);
        let json = serde_json::to_string(&rep).expect("serializes");
        assert_eq!(
            json,
            format!(
                r#"{{"mime":"text/html","size":3,"hash":"{}","data":"PGI+"}}"#,
                BlobHash::of(b"<b>")
            )
        );
        assert_eq!(
            serde_json::from_str::<Representation>(&json).expect("parses"),
            rep
        );
    }
}
