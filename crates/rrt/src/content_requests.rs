//! The daemon's side of clipboard content beyond text on the control socket: values uploaded
//! after their request (`copy_content`, see `upload`), files copied by path (`copy_files`), and
//! one representation's bytes sent raw after the answer line (`paste_type`, `blob`) — fetched
//! from a peer first if need be, streamed from the blob store, never read whole into memory.
//!
//! ```text
//! {"op":"paste_type","mime":"image/png"}\n  ─▶  {"ok":{"mime":"image/png","size":5120}}\n <5120 bytes>
//! ```

use std::path::PathBuf;

use rrt_mesh::Node;
use rrt_sync::{BlobHash, ClipEntry, Copied, Provenance, Representation};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

use rrt_control::{ErrorKind, Item, RawHeader};

use crate::{
    control::{write_error, write_ok},
    upload::{ChunkReader, receive_item},
};

/// The longest text taken as the clipboard's text from an upload of `text/plain` (a longer one is
/// a representation of its own, fetched by hash).
const MAX_UPLOADED_TEXT: u64 = 8 << 20;

/// The buffer a blob is sent to a client through.
const COPY_BUFFER: usize = 1 << 20;

/// Why a `copy_content` failed.
pub(crate) enum CopyFailed {
    /// The upload itself broke (the connection cannot go on).
    Upload(std::io::Error),
    /// The value was read but not copied.
    Refused(String),
}

/// Reads each item's bytes into the blob store and copies the value: plain text of a sane size
/// becomes the clipboard's text, everything else a representation.
pub(crate) async fn copy_content(
    node: &Node,
    input: &mut (impl AsyncRead + Unpin),
    items: Vec<Item>,
) -> Result<Option<ClipEntry>, CopyFailed> {
    let mut imported = Vec::new();
    let mut refused = None;
    for item in items {
        let (chunks, received) = mpsc::channel(4);
        if refused.is_some() {
            // Read and dropped: the next request starts where it should.
            drop(received);
            receive_item(input, chunks)
                .await
                .map_err(CopyFailed::Upload)?;
            continue;
        }
        let clipboard = node.clipboard();
        let import = clipboard.import(item.mime, ChunkReader::new(received));
        let (representation, upload) = tokio::join!(import, receive_item(input, chunks));
        upload.map_err(CopyFailed::Upload)?;
        match representation {
            Ok(representation) => imported.push(representation),
            Err(error) => refused = Some(error.to_string()),
        }
    }
    if let Some(error) = refused {
        return Err(CopyFailed::Refused(error));
    }
    let mut copied = Copied {
        provenance: Some(Provenance::through(crate::daemon::THROUGH_CONTROL)),
        ..Copied::default()
    };
    for representation in imported {
        match text_of(node, &representation).await {
            Some(text) if copied.text.is_empty() => copied.text = text,
            _ => copied.content.push(representation),
        }
    }
    node.clipboard()
        .copy_value(copied)
        .await
        .map_err(|error| CopyFailed::Refused(error.to_string()))
}

/// The text of a plain-text representation, if it is one, small enough and UTF-8.
async fn text_of(node: &Node, representation: &Representation) -> Option<String> {
    if !is_text(&representation.mime) || representation.size > MAX_UPLOADED_TEXT {
        return None;
    }
    let bytes = match &representation.data {
        Some(inline) => inline.0.to_vec(),
        None => tokio::fs::read(node.clipboard().fetch(representation).await.ok()?)
            .await
            .ok()?,
    };
    String::from_utf8(bytes).ok()
}

fn is_text(mime: &str) -> bool {
    let essence = mime.split(';').next().unwrap_or(mime).trim();
    essence.eq_ignore_ascii_case("text/plain") || mime == "UTF8_STRING"
}

/// Files and directories copied by path (the client's, on this host); the error is the import's
/// or the copy's message.
pub(crate) async fn copy_files(
    node: &Node,
    paths: Vec<PathBuf>,
) -> Result<Option<ClipEntry>, String> {
    let clipboard = node.clipboard();
    let mut copied = clipboard
        .import_files(paths)
        .await
        .map_err(|error| error.to_string())?;
    copied.provenance = Some(Provenance::through(crate::daemon::THROUGH_CONTROL));
    clipboard
        .copy_value(copied)
        .await
        .map_err(|error| error.to_string())
}

/// Answers with the current value's representation of type `mime`: its header line, then its
/// bytes. Plain text is the entry's text.
pub(crate) async fn paste_type(
    node: &Node,
    writer: &mut (impl AsyncWriteExt + Unpin),
    mime: &str,
) -> std::io::Result<()> {
    let entry = match node.clipboard().current().await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return write_error(writer, ErrorKind::NotFound, "the clipboard is empty").await;
        }
        Err(error) => return write_error(writer, ErrorKind::Failed, error.to_string()).await,
    };
    if is_text(mime) && !entry.text.is_empty() {
        let text = entry.text.as_bytes();
        send_header(writer, mime, text.len() as u64).await?;
        return writer.write_all(text).await;
    }
    let Some(representation) = entry.content.iter().find(|r| r.mime == mime) else {
        let error = format!("the clipboard holds no {mime}");
        return write_error(writer, ErrorKind::NotFound, error).await;
    };
    send(node, writer, representation).await
}

/// Answers with a blob's bytes, by hash (a file of a copied file list).
pub(crate) async fn blob(
    node: &Node,
    writer: &mut (impl AsyncWriteExt + Unpin),
    hash: BlobHash,
    size: u64,
) -> std::io::Result<()> {
    let representation = Representation::blob("application/octet-stream", hash, size);
    send(node, writer, &representation).await
}

async fn send(
    node: &Node,
    writer: &mut (impl AsyncWriteExt + Unpin),
    representation: &Representation,
) -> std::io::Result<()> {
    if let Some(inline) = &representation.data {
        send_header(writer, &representation.mime, inline.0.len() as u64).await?;
        return writer.write_all(&inline.0).await;
    }
    let path = match node.clipboard().fetch(representation).await {
        Ok(path) => path,
        Err(error) => return write_error(writer, ErrorKind::Failed, error.to_string()).await,
    };
    // Opened before the header: a blob evicted since it was found is an error, not a short read.
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) => {
            let error = format!("{}: {error}", path.display());
            return write_error(writer, ErrorKind::Failed, error).await;
        }
    };
    send_header(writer, &representation.mime, representation.size).await?;
    // Large reads: a value of hundreds of MiB in 8 KiB pieces costs more than its fetch.
    let mut file = tokio::io::BufReader::with_capacity(COPY_BUFFER, file.take(representation.size));
    let sent = tokio::io::copy_buf(&mut file, writer).await?;
    if sent != representation.size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the blob's file is shorter than its size",
        ));
    }
    Ok(())
}

async fn send_header(
    writer: &mut (impl AsyncWriteExt + Unpin),
    mime: &str,
    size: u64,
) -> std::io::Result<()> {
    let header = RawHeader {
        mime: mime.to_owned(),
        size,
    };
    write_ok(writer, header).await
}
