//! `rrt tui`: who is connected, what is on the shared clipboard, and a shared scratch document to
//! type in — live, in the terminal.
//!
//! Keys, pastes and resizes come from the terminal-input reactor (stdin and `SIGWINCH` owned by
//! one thread, as events); the daemon is reached with `rrt_control`'s async client — a clipboard
//! stream, a replica of the scratch document (`open`: CRDT updates both ways, so typing never
//! waits), and a peers query every second; ratatui draws. Everything meets in one `select!` loop
//! around the sans-IO [`app::App`], which handles every event already waiting before it draws.

mod app;
mod documents;
mod editor;
mod scratch;

use std::{
    io::{self, IsTerminal, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use ratatui::{Terminal, backend::CrosstermBackend};
use rrt_control::{AsyncClient, ClipboardEvent, ControlError, Editor, HistoryEntry, ReplicaEvent};
use rrt_mesh::MeshView;
use rrt_reactor::{
    ReactorEvent, RecvError, TryRecvError,
    terminal::{RawMode, TerminalInput, terminput::Event},
};
use rrt_sync::ClipEntry;
use tokio::sync::mpsc;

use self::app::{Action, App};
use crate::{Locate, client};

/// How often the peers pane is refreshed (round trips and "last seen" change continuously).
const PEERS_EVERY: Duration = Duration::from_secs(1);

/// The alternate screen and bracketed paste, on and off.
const ENTER: &str = "\x1b[?1049h\x1b[?2004h";
const LEAVE: &str = "\x1b[?2004l\x1b[?1049l\x1b[?25h";

/// What the daemon connections report to the loop.
enum Update {
    Peers(MeshView),
    History(Vec<HistoryEntry>),
    Copied(ClipEntry),
    /// What the replica of a document lacked.
    Merge(String, Vec<u8>),
    /// The daemon refused one of our edits of a document, or the replica's connection was lost
    /// and made again: the replica starts over. Why.
    Reset(String, String),
    /// The daemon's documents.
    Documents(Vec<String>),
    /// Where a document's other editors are.
    Editors(String, Vec<Editor>),
    Said(String),
}

pub(crate) fn run(locate: &Locate, scratch: String) -> anyhow::Result<()> {
    if !io::stdin().is_terminal() {
        bail!("`rrt tui` needs a terminal; stdin is not one");
    }
    let daemon = client::daemon(locate)?;
    let raw = RawMode::enable(io::stdin()).context("switching the terminal to raw mode")?;
    let screen = Screen::enter()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(event_loop(daemon.control_socket, daemon.name, scratch));
    drop(screen);
    drop(raw);
    result
}

/// The alternate screen, left on drop (also when unwinding).
struct Screen;

impl Screen {
    fn enter() -> io::Result<Self> {
        let mut out = io::stdout();
        out.write_all(ENTER.as_bytes())?;
        out.flush()?;
        Ok(Self)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = io::stdout();
        let _ = out.write_all(LEAVE.as_bytes());
        let _ = out.flush();
    }
}

async fn event_loop(socket: PathBuf, instance: String, scratch: String) -> anyhow::Result<()> {
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let mut app = App::new(instance, scratch.clone());
    let (updates, mut updated) = mpsc::unbounded_channel();
    tokio::spawn(follow_clipboard(socket.clone(), updates.clone()));
    tokio::spawn(poll_peers(socket.clone(), updates.clone()));
    let mut edits = open_replica(&socket, scratch, &updates);

    let input = TerminalInput::reactor();
    let mut keys = input.subscribe();
    loop {
        terminal.draw(|frame| app.render(frame))?;
        // One event awaited, then every one already waiting handled before the next draw: a
        // burst of typing (or a paste the terminal does not bracket) costs one redraw, not one
        // per key, and never outruns the input channel.
        let mut actions = Vec::new();
        tokio::select! {
            event = keys.recv() => {
                let mut event = Some(event);
                while let Some(received) = event {
                    actions.extend(terminal_event(&mut app, &mut terminal, received)?);
                    event = match keys.try_recv() {
                        Err(TryRecvError::Empty) => None,
                        Ok(next) => Some(Ok(next)),
                        Err(TryRecvError::Recv(error)) => Some(Err(error)),
                    };
                }
            }
            Some(update) = updated.recv() => {
                daemon_update(&mut app, update);
                while let Ok(update) = updated.try_recv() {
                    daemon_update(&mut app, update);
                }
            }
        }
        for action in actions {
            match action {
                Action::Quit => return Ok(()),
                Action::CopyAgain(stamp) => ask(
                    &socket,
                    &updates,
                    "copy failed",
                    move |mut client| async move { client.copy_again(stamp).await.map(|_| None) },
                ),
                Action::Copy(text) => ask(
                    &socket,
                    &updates,
                    "copy failed",
                    move |mut client| async move { client.copy(text).await.map(|_| None) },
                ),
                Action::ListDocuments => {
                    ask(&socket, &updates, "no documents", |mut client| async move {
                        client
                            .documents()
                            .await
                            .map(|names| Some(Update::Documents(names)))
                    })
                }
                // The replica of the document shown before is dropped with its connection.
                Action::Open(name) => edits = open_replica(&socket, name, &updates),
                Action::Send(updates) => {
                    for update in updates {
                        let _ = edits.send(Outbound::Update(update));
                    }
                }
            }
        }
        // Where the cursor is now, if that changed: for the other editors.
        if let Some(cursor) = app.moved_cursor() {
            let _ = edits.send(Outbound::Presence(cursor));
        }
    }
}

/// What the loop sends on a replica's stream.
enum Outbound {
    /// An update the replica made.
    Update(Vec<u8>),
    /// Where the cursor is.
    Presence(Option<rrt_sync::Cursor>),
}

/// Asks the daemon something on a connection of its own, off the loop: what it answers goes to
/// the loop as an update, a failure as a line on the status bar.
fn ask<Asked>(
    socket: &Path,
    updates: &mpsc::UnboundedSender<Update>,
    failed: &'static str,
    request: impl FnOnce(AsyncClient) -> Asked + Send + 'static,
) where
    Asked: Future<Output = Result<Option<Update>, ControlError>> + Send,
{
    let socket = socket.to_owned();
    let updates = updates.clone();
    tokio::spawn(async move {
        let answer = match AsyncClient::connect_socket(&socket).await {
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

/// Starts keeping a replica of document `name`; where its edits go.
fn open_replica(
    socket: &Path,
    name: String,
    updates: &mpsc::UnboundedSender<Update>,
) -> mpsc::UnboundedSender<Outbound> {
    let (edits, pending) = mpsc::unbounded_channel();
    tokio::spawn(keep_replica(
        socket.to_owned(),
        name,
        pending,
        updates.clone(),
    ));
    edits
}

/// What the terminal sent: a key, a paste, a resize.
fn terminal_event(
    app: &mut App,
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    event: Result<ReactorEvent<Event>, RecvError>,
) -> anyhow::Result<Option<Action>> {
    Ok(match event {
        Ok(ReactorEvent::Worker(Event::Key(key))) => app.key(key),
        Ok(ReactorEvent::Worker(Event::Paste(text))) => app.paste(&text),
        Ok(ReactorEvent::Worker(Event::Resize { .. })) => {
            terminal.autoresize()?;
            None
        }
        Ok(ReactorEvent::Shutdown(reason)) => bail!("terminal input ended: {reason:?}"),
        Ok(
            ReactorEvent::Worker(_)
            | ReactorEvent::Started { .. }
            | ReactorEvent::Restarting { .. },
        ) => None,
        Err(RecvError::Lagged { missed }) => {
            app.say(format!(
                "{missed} keys came faster than they could be read, and were lost"
            ));
            None
        }
        Err(error) => bail!("terminal input ended: {error}"),
    })
}

/// What a daemon connection reported.
fn daemon_update(app: &mut App, update: Update) {
    match update {
        Update::Peers(peers) => app.peers(&peers),
        Update::History(history) => app.history(&history),
        Update::Copied(entry) => app.copied(&entry),
        Update::Merge(name, update) => app.merge(&name, &update),
        Update::Reset(name, why) => {
            app.reset_scratch(&name);
            app.say(why);
        }
        Update::Documents(names) => app.documents(names),
        Update::Editors(name, editors) => app.editors(&name, editors),
        Update::Said(message) => app.say(message),
    }
}

/// Follows the clipboard into the loop.
async fn follow_clipboard(socket: PathBuf, updates: mpsc::UnboundedSender<Update>) {
    let watched = async {
        let mut events = AsyncClient::connect_socket(&socket).await?.watch().await?;
        while let Some(event) = events.next().await {
            let update = match event? {
                ClipboardEvent::Entry(entry) => Update::Copied(entry),
                // What was missed is in the history: read it whole again.
                ClipboardEvent::Lagged { .. } => Update::History(
                    AsyncClient::connect_socket(&socket)
                        .await?
                        .history()
                        .await?,
                ),
            };
            if updates.send(update).is_err() {
                return Ok(());
            }
        }
        Ok::<_, ControlError>(())
    };
    let said = match watched.await {
        Ok(()) => "the daemon went away".to_owned(),
        Err(error) => error.to_string(),
    };
    let _ = updates.send(Update::Said(said));
}

/// The history once, then the peers every [`PEERS_EVERY`].
async fn poll_peers(socket: PathBuf, updates: mpsc::UnboundedSender<Update>) {
    let mut client = None;
    let mut every = tokio::time::interval(PEERS_EVERY);
    let mut history_shown = false;
    loop {
        every.tick().await;
        let asked = async {
            let client = match &mut client {
                Some(client) => client,
                None => client.insert(AsyncClient::connect_socket(&socket).await?),
            };
            if !history_shown {
                let history = client.history().await?;
                history_shown = true;
                let _ = updates.send(Update::History(history));
            }
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

/// Keeps the scratch pane's replica in step with the daemon's document: the daemon's updates
/// into the loop, the replica's edits out, in order. A refused edit, or a lost connection,
/// starts the replica over from the daemon's document.
async fn keep_replica(
    socket: PathBuf,
    name: String,
    mut edits: mpsc::UnboundedReceiver<Outbound>,
    updates: mpsc::UnboundedSender<Update>,
) {
    loop {
        let (mut incoming, mut outgoing) = match AsyncClient::connect_socket(&socket).await {
            Ok(client) => match client.open(&name).await {
                Ok(halves) => halves,
                Err(error) => {
                    let _ = updates.send(Update::Said(error.to_string()));
                    return;
                }
            },
            Err(error) => {
                let _ = updates.send(Update::Said(error.to_string()));
                return;
            }
        };
        // Reading on a task of its own: a line read half when an edit is sent is not lost.
        let (lost, mut connection_lost) = tokio::sync::oneshot::channel();
        let reader = {
            let updates = updates.clone();
            let name = name.clone();
            tokio::spawn(async move {
                let why = loop {
                    match incoming.next().await {
                        Some(Ok(event)) => {
                            let update = match event {
                                ReplicaEvent::Update(update) => {
                                    Update::Merge(name.clone(), update.update)
                                }
                                ReplicaEvent::Editors(editors) => {
                                    Update::Editors(name.clone(), editors.editors)
                                }
                            };
                            if updates.send(update).is_err() {
                                return;
                            }
                        }
                        Some(Err(error)) => break format!("edit refused: {error}"),
                        None => break "the daemon went away".to_owned(),
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
                            Outbound::Update(update) => outgoing.send(update).await,
                            Outbound::Presence(cursor) => outgoing.presence(cursor).await,
                        };
                        if let Err(error) = sent {
                            break error.to_string();
                        }
                    }
                    None => {
                        reader.abort();
                        return;
                    }
                },
                why = &mut connection_lost => break why.unwrap_or_default(),
            }
        };
        reader.abort();
        if updates.send(Update::Reset(name.clone(), why)).is_err() {
            return;
        }
        // Edits made against the replica that is being dropped go with it.
        while edits.try_recv().is_ok() {}
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// How long the replica waits before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
