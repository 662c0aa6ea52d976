//! The daemon's side of the control protocol (`rrt_control` has the requests, the answers and
//! the client; `docs/CONTROL.md` the reference): what it needs to write answers and streams.

use rrt_control::{Answer, ErrorKind, Refusal};
use tokio::io::AsyncWriteExt;

/// The longest request line accepted: a clipboard value at the frame limit, JSON-escaped.
pub(crate) const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// Writes one line (an answer, an event of a stream) and flushes it.
pub(crate) async fn write_line(
    writer: &mut (impl AsyncWriteExt + Unpin),
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.flush().await
}

/// Writes `{"ok": value}`.
pub(crate) async fn write_ok(
    writer: &mut (impl AsyncWriteExt + Unpin),
    value: impl serde::Serialize,
) -> std::io::Result<()> {
    write_line(writer, &Answer::Ok(value)).await
}

/// Writes `{"error": {"kind": kind, "message": message}}`.
pub(crate) async fn write_error(
    writer: &mut (impl AsyncWriteExt + Unpin),
    kind: ErrorKind,
    message: impl Into<String>,
) -> std::io::Result<()> {
    write_line(writer, &Answer::<()>::Error(Refusal::new(kind, message))).await
}
