//! Bytes that follow a `copy_content` request: a value streamed to the daemon without knowing
//! its size in advance (standard input may be a pipe), and never held whole on either side.
//!
//! After the request line, each item is a run of chunks — a 4-byte big-endian length, then that
//! many bytes — ended by a chunk of length 0. A chunk is at most [`MAX_CHUNK`] bytes; a longer
//! one, or a pause of 10 s without a byte, ends the connection with an error.
//!
//! ```text
//! {"op":"copy_content","items":[{"mime":"image/png"}]}\n
//! 00 01 00 00 <65536 bytes> 00 00 10 00 <4096 bytes> 00 00 00 00
//! ```

use std::io::{self, Read, Write};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest chunk.
pub const MAX_CHUNK: usize = 1 << 20;

/// How much is read from the source at a time.
const READ_SIZE: usize = 256 * 1024;

/// Sends everything `reader` gives as one item's chunks; returns how many bytes.
pub fn send_item(mut reader: impl Read, out: &mut impl Write) -> io::Result<u64> {
    let mut buffer = vec![0; READ_SIZE];
    let mut sent = 0;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        out.write_all(&chunk_length(read))?;
        out.write_all(&buffer[..read])?;
        sent += read as u64;
    }
    out.write_all(&chunk_length(0))?;
    Ok(sent)
}

/// [`send_item`] for async readers and writers.
pub async fn send_item_async(
    mut reader: impl AsyncRead + Unpin,
    out: &mut (impl AsyncWrite + Unpin),
) -> io::Result<u64> {
    let mut buffer = vec![0; READ_SIZE];
    let mut sent = 0;
    loop {
        let read = reader.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        out.write_all(&chunk_length(read)).await?;
        out.write_all(&buffer[..read]).await?;
        sent += read as u64;
    }
    out.write_all(&chunk_length(0)).await?;
    out.flush().await?;
    Ok(sent)
}

fn chunk_length(length: usize) -> [u8; 4] {
    // READ_SIZE is below MAX_CHUNK, which fits in 32 bits.
    u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes()
}
