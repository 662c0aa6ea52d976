//! `rrt tui`: who is connected, what is on the shared clipboard, and a shared scratch document to
//! type in — live, in the terminal.
//!
//! Keys, pastes and resizes come from the terminal-input reactor (stdin and `SIGWINCH` owned by
//! one thread, as events); the daemon is reached over its control socket — two streams
//! (clipboard changes, document changes), one ordered connection for edits, and a peers query
//! every second; ratatui draws. Everything meets in one `select!` loop around the sans-IO
//! [`app::App`].

mod app;
mod editor;

use std::{
    io::{self, IsTerminal, Write},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, bail};
use ratatui::{Terminal, backend::CrosstermBackend};
use rrt_control::{AsyncClient, ClipboardEvent, ControlError, HistoryEntry};
use rrt_mesh::MeshView;
use rrt_reactor::{
    ReactorEvent,
    terminal::{RawMode, TerminalInput, terminput::Event},
};
use rrt_sync::ClipEntry;
use tokio::sync::mpsc;

use self::{
    app::{Action, App},
    editor::Edit,
};
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
    Scratch(String),
    EditAnswered(Result<String, (String, Option<String>)>),
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
    tokio::spawn(follow_scratch(
        socket.clone(),
        scratch.clone(),
        updates.clone(),
    ));
    tokio::spawn(poll_peers(socket.clone(), updates.clone()));
    let (edits, pending) = mpsc::unbounded_channel();
    tokio::spawn(send_edits(
        socket.clone(),
        scratch,
        pending,
        updates.clone(),
    ));

    let input = TerminalInput::reactor();
    let mut keys = input.subscribe();
    loop {
        terminal.draw(|frame| app.render(frame))?;
        let action = tokio::select! {
            event = keys.recv() => match event? {
                ReactorEvent::Worker(Event::Key(key)) => app.key(key),
                ReactorEvent::Worker(Event::Paste(text)) => app.paste(&text),
                ReactorEvent::Worker(Event::Resize { .. }) => {
                    terminal.autoresize()?;
                    None
                }
                ReactorEvent::Shutdown(reason) => bail!("terminal input ended: {reason:?}"),
                ReactorEvent::Worker(_) | ReactorEvent::Started { .. } | ReactorEvent::Restarting { .. } => None,
            },
            Some(update) = updated.recv() => {
                match update {
                    Update::Peers(peers) => app.peers(&peers),
                    Update::History(history) => app.history(&history),
                    Update::Copied(entry) => app.copied(&entry),
                    Update::Scratch(text) => app.scratch_changed(&text),
                    Update::EditAnswered(answer) => app.edit_answered(answer),
                    Update::Said(message) => app.say(message),
                }
                None
            }
        };
        match action {
            Some(Action::Quit) => return Ok(()),
            Some(Action::CopyAgain(stamp)) => {
                let updates = updates.clone();
                let socket = socket.clone();
                tokio::spawn(async move {
                    let copied = match AsyncClient::connect_socket(&socket).await {
                        Ok(mut client) => client.copy_again(stamp).await.map(drop),
                        Err(error) => Err(error),
                    };
                    if let Err(error) = copied {
                        let _ = updates.send(Update::Said(format!("copy failed: {error}")));
                    }
                });
            }
            Some(Action::Edit(edit)) => {
                let _ = edits.send(edit);
            }
            None => {}
        }
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

/// Follows the scratch document's text into the loop.
async fn follow_scratch(socket: PathBuf, name: String, updates: mpsc::UnboundedSender<Update>) {
    let watched = async {
        let client = AsyncClient::connect_socket(&socket).await?;
        let mut events = client.watch_document(&name).await?;
        while let Some(event) = events.next().await {
            if updates.send(Update::Scratch(event?.text)).is_err() {
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

/// Sends the scratch edits in order on one connection, each answered before the next goes.
async fn send_edits(
    socket: PathBuf,
    name: String,
    mut pending: mpsc::UnboundedReceiver<Edit>,
    updates: mpsc::UnboundedSender<Update>,
) {
    let mut connection: Option<AsyncClient> = None;
    while let Some(edit) = pending.recv().await {
        let sent = async {
            let client = match &mut connection {
                Some(client) => client,
                None => connection.insert(AsyncClient::connect_socket(&socket).await?),
            };
            match edit {
                Edit::Insert { at, text, base } => {
                    client.insert(name.clone(), at, text, Some(base)).await
                }
                Edit::Delete { at, len, base } => {
                    client.delete(name.clone(), at, len, Some(base)).await
                }
            }
        };
        let answer = match sent.await {
            Ok(text) => Ok(text),
            Err(error) => {
                connection = None;
                // The text as it is, so the refused edit leaves the screen.
                let current = match AsyncClient::connect_socket(&socket).await {
                    Ok(mut client) => client.text(name.clone()).await.ok(),
                    Err(_) => None,
                };
                Err((error.to_string(), current))
            }
        };
        if updates.send(Update::EditAnswered(answer)).is_err() {
            return;
        }
    }
}
