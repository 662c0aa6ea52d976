//! The daemon's side of an `open` stream: a replica of a document outside the node (the TUI's)
//! kept in step with it, both ways, by CRDT updates — so a keystroke costs the replica a few
//! bytes and never waits for an answer.
//!
//! The daemon keeps the version (state vector) it last brought the replica to, and after each
//! change of the document sends what the replica lacks since. The replica's own updates are
//! applied as local edits, in the order they come; they come back in the next update sent to it
//! (applying them again changes nothing), which keeps the daemon from having to merge versions.

use rrt_control::{DocumentUpdate, ErrorKind, Refusal, Request};
use rrt_mesh::{DocumentChange, Edit, Node};
use tokio::{io::AsyncWriteExt, sync::mpsc};

use crate::{
    control::{write_error, write_line, write_ok},
    request_reader::{Limits, RequestBudget, read_request},
};

/// Serves one replica of document `name` until the client closes its side.
pub(crate) async fn serve(
    node: &Node,
    name: String,
    reader: tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: &mut (impl AsyncWriteExt + Unpin),
    budget: &RequestBudget,
) -> std::io::Result<()> {
    let document = node.document(name.clone());
    // Subscribed before the first update is read: no change falls between the two.
    let mut changes = document.changes();
    let (refusals, mut refused) = mpsc::unbounded_channel();
    let edits = tokio::spawn(apply_edits(
        node.clone(),
        name.clone(),
        reader,
        budget.clone(),
        refusals,
    ));
    let mut version = Vec::new();
    let served = async {
        send_since(node, &name, &mut version, writer).await?;
        loop {
            tokio::select! {
                change = changes.next() => match change {
                    Some(DocumentChange::Changed(_) | DocumentChange::Missed) => {
                        send_since(node, &name, &mut version, writer).await?;
                    }
                    None => return Ok(()),
                },
                refusal = refused.recv() => match refusal {
                    Some(refusal) => write_line(writer, &rrt_control::Answer::<()>::Error(refusal)).await?,
                    // The client closed its side, or broke the stream.
                    None => return Ok(()),
                },
            }
        }
    };
    let result = served.await;
    edits.abort();
    result
}

/// Sends what a replica at `version` lacks, if anything, and moves `version` on.
async fn send_since(
    node: &Node,
    name: &str,
    version: &mut Vec<u8>,
    writer: &mut (impl AsyncWriteExt + Unpin),
) -> std::io::Result<()> {
    match node.since(name, version.clone()).await {
        Ok(Some(since)) => {
            if since.version != *version {
                *version = since.version;
                write_ok(
                    writer,
                    DocumentUpdate {
                        update: since.update,
                    },
                )
                .await?;
            }
            Ok(())
        }
        // Not created yet: the replica's first edit (or a peer's) will.
        Ok(None) => Ok(()),
        Err(error) => write_error(writer, ErrorKind::Failed, error.to_string()).await,
    }
}

/// The most updates waiting on the stream that are merged into one edit.
const MAX_BATCH: usize = 256;

/// Reads the replica's lines and applies its updates as local edits, in order; a refused one
/// is reported. Updates already waiting when one is read (a burst of typing that came while the
/// last edit was being stored) are merged into one edit: one write to the disk, one message to
/// each peer. Ends when the client closes its side or sends what is not an update (reported).
async fn apply_edits(
    node: Node,
    name: String,
    mut reader: tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    budget: RequestBudget,
    refusals: mpsc::UnboundedSender<Refusal>,
) {
    loop {
        let mut updates = Vec::new();
        let ended = loop {
            match next_update(&mut reader, &budget).await {
                Ok(Some(update)) => updates.push(update),
                Ok(None) => break None,
                Err(refusal) => break Some(refusal),
            }
            // Only what is already read: waiting for more would delay this edit.
            if updates.len() == MAX_BATCH || !reader.buffer().contains(&b'\n') {
                break None;
            }
        };
        let ending = ended.is_some() || updates.is_empty();
        if !updates.is_empty() {
            let edited = match rrt_sync::merge_updates(&updates) {
                Ok(update) => node
                    .edit(&name, Edit::Update(update))
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(format!("an update was refused: {error}")),
            };
            if let Err(error) = edited {
                let _ = refusals.send(Refusal::new(ErrorKind::Failed, error));
            }
        }
        if let Some(refusal) = ended {
            let _ = refusals.send(refusal);
        }
        if ending {
            return;
        }
    }
}

/// The next update on the stream; `None` when the client closed its side.
async fn next_update(
    reader: &mut tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    budget: &RequestBudget,
) -> Result<Option<Vec<u8>>, Refusal> {
    let mut charge = budget.charge();
    let line = match read_request(reader, &mut charge, true, Limits::DAEMON).await {
        Ok(Some(line)) => line,
        Ok(None) => return Ok(None),
        Err(error) => return Err(Refusal::new(ErrorKind::Refused, error.to_string())),
    };
    match Request::parse(&line)? {
        Request::Update { update } => Ok(Some(update)),
        _ => Err(Refusal::new(
            ErrorKind::BadRequest,
            "an `open` stream takes only `update` lines",
        )),
    }
}
