//! What rrt offers: the [`usable`] offers of a value, and the bytes of one while a program
//! pastes it, a chunk at a time — from memory without a copy, from a file through a buffer of one
//! chunk, so that serving a file of any size holds at most one chunk of it per transfer.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Cursor},
    sync::Arc,
};

use crate::{Offer, Source};

/// The most types one value is offered in.
const MAX_OFFERS: usize = 64;

/// The longest MIME type offered (RFC 6838 names a type and a subtype in 127 characters each).
const MAX_MIME: usize = 255;

/// `offers` without those a display server would not take (or would drop the connection over):
/// a MIME type empty, longer than [`MAX_MIME`], or not printable ASCII, a type offered again,
/// offers past [`MAX_OFFERS`]. Each dropped one is logged.
pub(crate) fn usable(offers: Vec<Offer>) -> Vec<Offer> {
    let mut kept: Vec<Offer> = Vec::new();
    for offer in offers {
        let mime = &offer.mime;
        let printable = mime
            .bytes()
            .all(|byte| byte.is_ascii_graphic() || byte == b' ');
        if mime.is_empty() || mime.len() > MAX_MIME || !printable {
            tracing::warn!(
                mime = mime.escape_debug().to_string(),
                "not a MIME type to offer; left out"
            );
        } else if kept.iter().any(|other| other.mime == *mime) {
            tracing::debug!(mime, "a type offered twice; the first kept");
        } else if kept.len() == MAX_OFFERS {
            tracing::warn!(mime, max = MAX_OFFERS, "too many types offered; left out");
        } else {
            kept.push(offer);
        }
    }
    kept
}

/// What one transfer reads its bytes from.
#[derive(Debug)]
pub(crate) enum Body {
    /// An in-memory value, shared with the offer.
    Memory(Cursor<Arc<[u8]>>),
    /// A file, opened for this transfer.
    File(BufReader<File>),
}

/// `path` opened for reading if it is a regular file: opened without blocking (a FIFO put in
/// its place would block the worker's thread for good), and refused if it is anything else.
fn open_regular(path: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

impl Body {
    /// A reader of `source` whose chunks are at most `chunk` bytes (for a file; a value in
    /// memory comes as one slice). `Ok(None)` for [`Source::Later`], which has no bytes yet.
    pub(crate) fn open(source: &Source, chunk: usize) -> io::Result<Option<Self>> {
        Ok(Some(match source {
            Source::Bytes(bytes) => Self::Memory(Cursor::new(Arc::clone(bytes))),
            Source::File(path) => Self::File(BufReader::with_capacity(chunk, open_regular(path)?)),
            Source::Later => return Ok(None),
        }))
    }

    /// How many bytes are left (for a file, as its size says now).
    pub(crate) fn remaining(&self) -> io::Result<u64> {
        Ok(match self {
            Self::Memory(cursor) => {
                let len = cursor.get_ref().len() as u64;
                len.saturating_sub(cursor.position())
            }
            Self::File(reader) => {
                let len = reader.get_ref().metadata()?.len();
                let mut file = reader.get_ref();
                let position = io::Seek::stream_position(&mut file)?;
                len.saturating_sub(position) + reader.buffer().len() as u64
            }
        })
    }

    /// The next bytes, at most `max` of them; empty at the end. They stay until
    /// [`Body::consume`]d.
    pub(crate) fn peek(&mut self, max: usize) -> io::Result<&[u8]> {
        loop {
            match self.fill_buf() {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
                Ok(_) => break,
            }
        }
        // Filled now: this returns the same bytes without reading.
        let bytes = self.fill_buf()?;
        Ok(&bytes[..bytes.len().min(max)])
    }

    /// Drops the first `len` bytes [`Body::peek`] returned.
    pub(crate) fn consume(&mut self, len: usize) {
        BufRead::consume(self, len);
    }
}

impl io::Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Memory(cursor) => cursor.read(buf),
            Self::File(reader) => reader.read(buf),
        }
    }
}

impl BufRead for Body {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Self::Memory(cursor) => cursor.fill_buf(),
            Self::File(reader) => reader.fill_buf(),
        }
    }

    fn consume(&mut self, len: usize) {
        match self {
            Self::Memory(cursor) => cursor.consume(len),
            Self::File(reader) => reader.consume(len),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn drain(body: &mut Body, chunk: usize) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let bytes = body.peek(chunk).expect("read");
            if bytes.is_empty() {
                return all;
            }
            assert!(bytes.len() <= chunk);
            let len = bytes.len();
            all.extend_from_slice(bytes);
            body.consume(len);
        }
    }

    #[test]
    fn memory_and_files_come_in_chunks_and_say_what_is_left() {
        let value: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut memory = Body::open(&Source::Bytes(value.clone().into()), 16)
            .expect("open")
            .expect("a body");
        assert_eq!(memory.remaining().expect("len"), 10_000);
        assert_eq!(drain(&mut memory, 4096), value);

        let mut file = tempfile::NamedTempFile::new().expect("a file");
        file.write_all(&value).expect("write");
        let source = Source::File(file.path().to_owned());
        let mut body = Body::open(&source, 1000).expect("open").expect("a body");
        assert_eq!(body.remaining().expect("len"), 10_000);
        assert_eq!(
            body.peek(usize::MAX).expect("read").len(),
            1000,
            "one buffer"
        );
        body.consume(10);
        assert_eq!(body.remaining().expect("len"), 9_990);
        let rest = drain(&mut body, 300);
        assert_eq!(rest, value[10..]);
        assert_eq!(body.remaining().expect("len"), 0);
    }

    #[test]
    fn offers_no_display_server_takes_are_left_out() {
        let offer = |mime: &str| Offer {
            mime: mime.to_owned(),
            source: Source::Later,
        };
        let offers = vec![
            offer("image/png"),
            offer(""),
            offer(&"x".repeat(MAX_MIME + 1)),
            offer("text/plain\0"),
            offer("text/html; charset=utf-8"),
            offer("image/png"),
        ];
        let kept: Vec<_> = usable(offers).into_iter().map(|offer| offer.mime).collect();
        assert_eq!(kept, ["image/png", "text/html; charset=utf-8"]);
        let many = (0..MAX_OFFERS + 1)
            .map(|i| offer(&format!("x/{i}")))
            .collect();
        assert_eq!(usable(many).len(), MAX_OFFERS);
    }

    #[test]
    fn later_has_no_body_and_a_missing_file_is_an_error() {
        assert!(Body::open(&Source::Later, 10).expect("later").is_none());
        let missing = Source::File("/nonexistent/rrt-clipboard".into());
        assert!(Body::open(&missing, 10).is_err());
    }
}
