//! The daemon's side of an `open` stream: a replica of a document outside the node (the TUI's)
//! kept in step with it, both ways, by CRDT updates — so a keystroke costs the replica a few
//! bytes and never waits for an answer.
//!
//! The daemon keeps the version (state vector) it last brought the replica to, and after each
//! change of the document sends what the replica lacks since. When the document moves to a new
//! generation, the replica is sent the new one whole, with its generation, and starts over; its
//! updates name the generation they were made on, and one made on the old generation (sent
//! before it heard) is applied as the change of text it made. The replica's own updates are
//! applied as local edits, in the order they come; they come back in the next update sent to it
//! (applying them again changes nothing), which keeps the daemon from having to merge versions.
//!
//! The stream is also an editor's presence: where the client says its cursor is goes to the
//! mesh as one of the node's editors (repeated while the stream is open, `gone` when it
//! closes), and the client hears where the document's other editors are whenever that changes.

use std::{
    hash::{BuildHasher, RandomState},
    time::Duration,
};

use rrt_control::{DocumentEditors, DocumentUpdate, Editor, ErrorKind, Refusal, Request};
use rrt_mesh::{DocumentChange, DocumentHandle, Edit, Node};
use rrt_sync::{Cursor, Generation};
use tokio::{
    io::AsyncWriteExt,
    sync::{mpsc, watch},
};

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
    let (cursors, mut cursor) = watch::channel(None);
    let edits = tokio::spawn(apply_edits(
        document.clone(),
        reader,
        budget.clone(),
        refusals,
        cursors,
    ));
    // This stream's editor, told apart from every other (within JavaScript's safe integers).
    let editor = RandomState::new().hash_one(name.as_str()) & ((1 << 53) - 1);
    let mut presence = None;
    // Said to the mesh at most every PRESENCE_GAP: a client moving its cursor on every key (or
    // sending nothing but presence) costs the mesh at most that many messages.
    let mut unsaid = false;
    let mut next_say = tokio::time::Instant::now();
    let mut refresh = tokio::time::interval(Duration::from_millis(rrt_sync::REFRESH_MS));
    let mut version = (Generation::default(), Vec::new());
    let served = async {
        send_since(&document, &mut version, writer).await?;
        send_editors(&document, editor, writer).await?;
        loop {
            tokio::select! {
                change = changes.next() => match change {
                    Some(DocumentChange::Changed(_)) => {
                        send_since(&document, &mut version, writer).await?;
                    }
                    Some(DocumentChange::Editors) => {
                        send_editors(&document, editor, writer).await?;
                    }
                    Some(DocumentChange::Lagged { .. }) => {
                        send_since(&document, &mut version, writer).await?;
                        send_editors(&document, editor, writer).await?;
                    }
                    None => return Ok(()),
                },
                Ok(()) = cursor.changed() => {
                    presence = cursor.borrow_and_update().clone();
                    unsaid = true;
                }
                () = tokio::time::sleep_until(next_say), if unsaid => {
                    say(node, &document, editor, presence.clone()).await;
                    unsaid = false;
                    next_say = tokio::time::Instant::now() + PRESENCE_GAP;
                }
                _ = refresh.tick(), if presence.is_some() => {
                    say(node, &document, editor, presence.clone()).await;
                }
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
    if presence.is_some() {
        // A stopped node ends the stream anyway.
        let _ = document.hide_cursor(editor).await;
    }
    result
}

/// The least time between two words of one stream's editor to the mesh.
const PRESENCE_GAP: Duration = Duration::from_millis(100);

/// Where this stream's editor is (the cursor and the name the client gave), to the node.
type Said = Option<(Option<Cursor>, Option<String>)>;

/// Tells the node where this stream's editor is.
async fn say(node: &Node, document: &DocumentHandle, editor: u64, said: Said) {
    let Some((cursor, name)) = said else {
        return;
    };
    let name = name.unwrap_or_else(|| node.name().to_owned());
    // A stopped node ends the stream anyway.
    let _ = document.show_cursor(editor, name, cursor).await;
}

/// Sends where the document's other editors are.
async fn send_editors(
    document: &DocumentHandle,
    editor: u64,
    writer: &mut (impl AsyncWriteExt + Unpin),
) -> std::io::Result<()> {
    let Ok(editors) = document.editors().await else {
        return Ok(());
    };
    let editors = editors
        .into_iter()
        .filter(|presence| presence.editor != editor)
        .map(|presence| Editor {
            name: presence.name,
            cursor: presence.cursor,
        })
        .collect();
    write_ok(writer, DocumentEditors { editors }).await
}

/// Sends what a replica at `version` (of a generation) lacks, if anything, and moves `version`
/// on.
async fn send_since(
    document: &DocumentHandle,
    version: &mut (Generation, Vec<u8>),
    writer: &mut (impl AsyncWriteExt + Unpin),
) -> std::io::Result<()> {
    match document.since(version.0, version.1.clone()).await {
        Ok(Some(since)) => {
            if (since.generation, &since.version) != (version.0, &version.1) {
                *version = (since.generation, since.version);
                write_ok(
                    writer,
                    DocumentUpdate {
                        update: since.update,
                        generation: since.generation,
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
    document: DocumentHandle,
    mut reader: tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    budget: RequestBudget,
    refusals: mpsc::UnboundedSender<Refusal>,
    cursors: watch::Sender<Said>,
) {
    loop {
        let mut updates = Vec::new();
        // `Some(refusal)`: the stream ends after this batch (`None` inside: closed by the
        // client).
        let ended = loop {
            match next_line(&mut reader, &budget).await {
                Ok(Some(Line::Update(generation, update))) => updates.push((generation, update)),
                // It may name a character of this batch: others place it once that arrives.
                Ok(Some(Line::Presence(cursor, name))) => {
                    cursors.send_replace(Some((cursor, name)));
                }
                Ok(None) => break Some(None),
                Err(refusal) => break Some(Some(refusal)),
            }
            // Only what is already read: waiting for more would delay this edit.
            if updates.len() == MAX_BATCH || !reader.buffer().contains(&b'\n') {
                break None;
            }
        };
        // One edit per run of updates of one generation (a move falls between them).
        for run in updates.chunk_by(|a, b| a.0 == b.0) {
            let generation = run[0].0;
            let run: Vec<Vec<u8>> = run.iter().map(|(_, update)| update.clone()).collect();
            let edited = match rrt_sync::merge_updates(&run) {
                Ok(update) => document
                    .edit(Edit::Update { generation, update })
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(format!("an update was refused: {error}")),
            };
            if let Err(error) = edited {
                let _ = refusals.send(Refusal::new(ErrorKind::Failed, error));
            }
        }
        if let Some(refusal) = ended {
            if let Some(refusal) = refusal {
                let _ = refusals.send(refusal);
            }
            return;
        }
    }
}

/// A line of an `open` stream from the client.
enum Line {
    Update(Generation, Vec<u8>),
    Presence(Option<Cursor>, Option<String>),
}

/// The next line on the stream; `None` when the client closed its side.
async fn next_line(
    reader: &mut tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    budget: &RequestBudget,
) -> Result<Option<Line>, Refusal> {
    let mut charge = budget.charge();
    let line = match read_request(reader, &mut charge, true, Limits::DAEMON).await {
        Ok(Some(line)) => line,
        Ok(None) => return Ok(None),
        Err(error) => return Err(Refusal::new(ErrorKind::Refused, error.to_string())),
    };
    match Request::parse(&line)? {
        Request::Update { update, generation } => Ok(Some(Line::Update(generation, update))),
        Request::Presence { cursor, name } => Ok(Some(Line::Presence(cursor, name))),
        _ => Err(Refusal::new(
            ErrorKind::BadRequest,
            "an `open` stream takes only `update` and `presence` lines",
        )),
    }
}
