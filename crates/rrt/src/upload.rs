//! The daemon's side of an upload (the bytes that follow a `copy_content` request; the framing
//! and the sending side are `rrt_control::upload`'s): each item's chunks read within a
//! deadline, handed to an import on a blocking thread.

use std::io::{self, Read};

use rrt_control::upload::MAX_CHUNK;

use tokio::{
    io::{AsyncRead, AsyncReadExt},
    sync::mpsc,
};

use crate::request_reader::IDLE_DEADLINE;

/// Reads one item's chunks from `input`, passing each on to `chunks` (the reading side of an
/// import), until the ending chunk. If the importer has gone (it failed, and says why), the rest
/// of the item is read and dropped, so the next request is read from where it starts.
pub(crate) async fn receive_item(
    input: &mut (impl AsyncRead + Unpin),
    chunks: mpsc::Sender<Vec<u8>>,
) -> io::Result<()> {
    loop {
        let mut length = [0; 4];
        within_deadline(input.read_exact(&mut length)).await?;
        let length = u32::from_be_bytes(length) as usize;
        if length == 0 {
            return Ok(());
        }
        if length > MAX_CHUNK {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a chunk of {length} bytes (at most {MAX_CHUNK})"),
            ));
        }
        let mut chunk = vec![0; length];
        within_deadline(input.read_exact(&mut chunk)).await?;
        // A failed importer drops its receiver: the chunk is dropped with the error.
        let _ = chunks.send(chunk).await;
    }
}

async fn within_deadline<T>(read: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(IDLE_DEADLINE, read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the upload stalled"))?
}

/// The chunks of an item as a blocking reader, for an import on a blocking thread.
pub(crate) struct ChunkReader {
    chunks: mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    pub(crate) fn new(chunks: mpsc::Receiver<Vec<u8>>) -> Self {
        Self {
            chunks,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(chunk) => {
                    self.current = chunk;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let take = buffer.len().min(self.current.len() - self.at);
        buffer[..take].copy_from_slice(&self.current[self.at..self.at + take]);
        self.at += take;
        Ok(take)
    }
}

#[cfg(test)]
mod tests {
    use rrt_control::upload::send_item;

    use super::*;

    #[tokio::test]
    async fn an_item_goes_through_chunks_and_comes_back_whole() {
        let data: Vec<u8> = (0..700_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        assert_eq!(
            send_item(&data[..], &mut wire).expect("written"),
            data.len() as u64
        );
        wire.extend(b"next request");
        let (chunks, received) = mpsc::channel(4);
        let reader = tokio::task::spawn_blocking(move || {
            let mut whole = Vec::new();
            ChunkReader::new(received)
                .read_to_end(&mut whole)
                .map(|_| whole)
        });
        let mut input = &wire[..];
        receive_item(&mut input, chunks).await.expect("received");
        assert_eq!(reader.await.expect("joined").expect("read"), data);
        assert_eq!(input, b"next request", "nothing past the item is read");
    }

    #[tokio::test]
    async fn a_chunk_over_the_limit_is_refused() {
        let wire = ((MAX_CHUNK + 1) as u32).to_be_bytes();
        let (chunks, _received) = mpsc::channel(1);
        let error = receive_item(&mut &wire[..], chunks)
            .await
            .expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
