//! The TUI's connections to its daemon, each a task that reports to the loop as [`Update`]s: the
//! clipboard stream, the peers every second, a replica of the scratch document, and one-off
//! questions.
//!
//! The daemon is found by its instance name, again after every lost connection: a daemon that
//! restarts listens on a new socket. While it is away the scratch pane goes on taking typing in
//! its replica; once the daemon is back, the replica's whole state goes to it as one update
//! (the CRDT merges it with whatever the daemon kept), so nothing typed meanwhile is lost.

use std::{future::Future, time::Duration};

use rrt_control::{
    AsyncClient, ClipboardEvent, ControlError, Editor, HistoryEntry, Mesh, ReplicaEvent,
};
use rrt_mesh::MeshView;
use rrt_sync::{ClipEntry, Cursor};
use tokio::sync::{mpsc, oneshot};

/// How often the peers pane is refreshed (round trips and "last seen" change continuously).
const PEERS_EVERY: Duration = Duration::from_secs(1);
/// How long a lost connection waits before it is made again.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// What the daemon connections report to the loop.
pub(crate) enum Update {
    Peers(MeshView),
    History(Vec<HistoryEntry>),
    Copied(ClipEntry),
    /// What the replica of a document lacked.
    Merge(String, Vec<u8>, rrt_sync::Generation),
    /// The daemon refused one of our edits of a document: the replica starts over. Why.
    Reset(String, String),
    /// The replica's connection was lost (why); it is being made again.
    Offline(String, String),
    /// The replica's connection is back: the daemon needs the replica's whole state.
    Online(String),
    /// The daemon's documents.
    Documents(Vec<String>),
    /// Where a document's other editors are.
    Editors(String, Vec<Editor>),
    Said(String),
}

/// What the loop sends on a replica's stream.
pub(crate) enum Outbound {
    /// An update the replica made, of this generation of its document.
    Update(rrt_sync::Generation, Vec<u8>),
    /// Where the cursor is.
    Presence(Option<Cursor>),
}

/// How to reach the daemon: by its instance name, looked up anew for each connection.
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    mesh: Mesh,
    instance: String,
}

impl Reach {
    pub(crate) fn new(mesh: Mesh, instance: String) -> Self {
        Self { mesh, instance }
    }

    /// The daemon's instance name.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    async fn connect(&self) -> Result<AsyncClient, ControlError> {
        let daemon = self.mesh.daemon(Some(&self.instance))?;
        AsyncClient::connect_socket(&daemon.control_socket).await
    }
}

/// Starts following the daemon: the clipboard and the peers.
pub(crate) fn follow(reach: &Reach, updates: &mpsc::UnboundedSender<Update>) {
    tokio::spawn(follow_clipboard(reach.clone(), updates.clone()));
    tokio::spawn(poll_peers(reach.clone(), updates.clone()));
}

/// Asks the daemon something on a connection of its own, off the loop: what it answers goes to
/// the loop as an update, a failure as a line on the status bar.
pub(crate) fn ask<Asked>(
    reach: &Reach,
    updates: &mpsc::UnboundedSender<Update>,
    failed: &'static str,
    request: impl FnOnce(AsyncClient) -> Asked + Send + 'static,
) where
    Asked: Future<Output = Result<Option<Update>, ControlError>> + Send,
{
    let reach = reach.clone();
    let updates = updates.clone();
    tokio::spawn(async move {
        let answer = match reach.connect().await {
            Ok(client) => request(client).await,
            Err(error) => Err(error),
        };
        let update = match answer {
            Ok(update) => update,
            Err(error) => Some(Update::Said(format!("{failed}: {error}"))),
        };
        if let Some(update) = update {
            let _ = updates.send(update);
        }
    });
}

/// Starts keeping a replica of document `name`; where its edits go. Dropping that ends it.
pub(crate) fn open_replica(
    reach: &Reach,
    name: String,
    updates: &mpsc::UnboundedSender<Update>,
) -> mpsc::UnboundedSender<Outbound> {
    let (edits, pending) = mpsc::unbounded_channel();
    tokio::spawn(keep_replica(reach.clone(), name, pending, updates.clone()));
    edits
}

/// The history, then every new clipboard value; again after a lost connection.
async fn follow_clipboard(reach: Reach, updates: mpsc::UnboundedSender<Update>) {
    loop {
        let watched = async {
            let history = reach.connect().await?.history().await?;
            let _ = updates.send(Update::History(history));
            let mut events = reach.connect().await?.watch().await?;
            while let Some(event) = events.next().await {
                let update = match event? {
                    ClipboardEvent::Entry(entry) => Update::Copied(entry),
                    // What was missed is in the history: read it whole again.
                    ClipboardEvent::Lagged { .. } => {
                        Update::History(reach.connect().await?.history().await?)
                    }
                };
                if updates.send(update).is_err() {
                    return Ok(());
                }
            }
            Ok::<_, ControlError>(())
        };
        let why = match watched.await {
            Ok(()) => "the daemon went away".to_owned(),
            Err(error) => error.to_string(),
        };
        if updates.is_closed() {
            return;
        }
        let _ = updates.send(Update::Said(format!("{why}; reconnecting")));
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// The peers every [`PEERS_EVERY`].
async fn poll_peers(reach: Reach, updates: mpsc::UnboundedSender<Update>) {
    let mut client = None;
    let mut every = tokio::time::interval(PEERS_EVERY);
    loop {
        every.tick().await;
        let asked = async {
            let client = match &mut client {
                Some(client) => client,
                None => client.insert(reach.connect().await?),
            };
            client.peers().await
        };
        match asked.await {
            Ok(peers) => {
                if updates.send(Update::Peers(peers)).is_err() {
                    return;
                }
            }
            // Connect again at the next tick.
            Err(_) => client = None,
        }
    }
}

/// How a replica's connection ended.
enum Lost {
    /// The daemon refused an edit: the replica must start over.
    Refused(String),
    /// The connection is gone: the replica is kept, and sent whole once it is back.
    Gone(String),
}

/// Keeps the scratch pane's replica in step with the daemon's document: the daemon's updates
/// into the loop, the replica's edits out, in order. Ends when the loop drops its side.
async fn keep_replica(
    reach: Reach,
    name: String,
    mut edits: mpsc::UnboundedReceiver<Outbound>,
    updates: mpsc::UnboundedSender<Update>,
) {
    let mut offline = false;
    loop {
        let opened = match reach.connect().await {
            Ok(client) => client.open(&name).await,
            Err(error) => Err(error),
        };
        let (mut incoming, mut outgoing) = match opened {
            Ok(halves) => halves,
            Err(error) => {
                if !offline {
                    offline = true;
                    let _ = updates.send(Update::Offline(name.clone(), error.to_string()));
                }
                // What is typed meanwhile is in the replica, which goes whole once back.
                while edits.try_recv().is_ok() {}
                if edits.is_closed() {
                    return;
                }
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
        };
        if std::mem::take(&mut offline) {
            while edits.try_recv().is_ok() {}
            let _ = updates.send(Update::Online(name.clone()));
        }
        // Reading on a task of its own: a line read half when an edit is sent is not lost.
        let (lost, mut connection_lost) = oneshot::channel();
        let reader = {
            let updates = updates.clone();
            let name = name.clone();
            tokio::spawn(async move {
                let why = loop {
                    let update = match incoming.next().await {
                        Some(Ok(ReplicaEvent::Update(update))) => {
                            Update::Merge(name.clone(), update.update, update.generation)
                        }
                        Some(Ok(ReplicaEvent::Editors(editors))) => {
                            Update::Editors(name.clone(), editors.editors)
                        }
                        Some(Err(ControlError::Refused(refusal))) => {
                            break Lost::Refused(format!("edit refused: {}", refusal.message));
                        }
                        Some(Err(error)) => break Lost::Gone(error.to_string()),
                        None => break Lost::Gone("the daemon went away".to_owned()),
                    };
                    if updates.send(update).is_err() {
                        return;
                    }
                };
                let _ = lost.send(why);
            })
        };
        let why = loop {
            tokio::select! {
                edit = edits.recv() => match edit {
                    Some(outbound) => {
                        let sent = match outbound {
                            Outbound::Update(generation, update) => {
                                outgoing.send(generation, update).await
                            }
                            Outbound::Presence(cursor) => outgoing.presence(cursor).await,
                        };
                        if let Err(error) = sent {
                            break Lost::Gone(error.to_string());
                        }
                    }
                    None => {
                        reader.abort();
                        return;
                    }
                },
                why = &mut connection_lost => {
                    break why.unwrap_or_else(|_| Lost::Gone("the daemon went away".to_owned()));
                }
            }
        };
        reader.abort();
        let update = match why {
            Lost::Refused(why) => {
                // Edits made against the replica that is being dropped go with it.
                while edits.try_recv().is_ok() {}
                Update::Reset(name.clone(), why)
            }
            Lost::Gone(why) => {
                offline = true;
                Update::Offline(name.clone(), why)
            }
        };
        if updates.send(update).is_err() {
            return;
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}
