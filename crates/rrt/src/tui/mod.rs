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
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use ratatui::{Terminal, backend::CrosstermBackend};
use rrt_mesh::same_user;
use rrt_reactor::{
    ReactorEvent,
    terminal::{RawMode, TerminalInput, terminput::Event},
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::UnixStream,
    sync::mpsc,
};

use self::{
    app::{Action, App},
    editor::Edit,
};
use crate::{
    Locate, client,
    control::{Request, Response},
};

/// How often the peers pane is refreshed (round trips and "last seen" change continuously).
const PEERS_EVERY: Duration = Duration::from_secs(1);

/// The alternate screen and bracketed paste, on and off.
const ENTER: &str = "\x1b[?1049h\x1b[?2004h";
const LEAVE: &str = "\x1b[?2004l\x1b[?1049l\x1b[?25h";

/// What the daemon connections report to the loop.
enum Update {
    Peers(Value),
    History(Value),
    Copied(Value),
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
    tokio::spawn(follow(
        socket.clone(),
        Request::Watch,
        updates.clone(),
        Update::Copied,
    ));
    tokio::spawn(follow(
        socket.clone(),
        Request::ScratchWatch {
            name: scratch.clone(),
        },
        updates.clone(),
        |line| Update::Scratch(line["text"].as_str().unwrap_or_default().to_owned()),
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
                    let Ok(stamp) = serde_json::from_value(stamp) else {
                        let _ = updates.send(Update::Said("copy failed: not a stamp".to_owned()));
                        return;
                    };
                    if let Err(error) = ask(&socket, &Request::CopyAgain { stamp }).await {
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

/// A connection to the daemon's control socket, refused if another user serves it (see
/// `rrt_mesh::same_user`): nothing is sent before the check.
async fn connect(socket: &Path) -> Result<UnixStream, String> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|error| format!("the daemon is gone: {error}"))?;
    same_user::verify(socket, &stream).map_err(|error| error.to_string())?;
    Ok(stream)
}

/// One request, one answer, on a connection of its own.
async fn ask(socket: &Path, request: &Request) -> Result<Value, String> {
    let stream = connect(socket).await?;
    exchange(&mut BufReader::new(stream), request).await
}

/// Sends `request` and reads its answer.
async fn exchange(lines: &mut BufReader<UnixStream>, request: &Request) -> Result<Value, String> {
    send(lines.get_mut(), request).await?;
    read_answer(lines).await
}

async fn send(stream: &mut UnixStream, request: &Request) -> Result<(), String> {
    let mut line = serde_json::to_vec(request).map_err(|error| error.to_string())?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .await
        .map_err(|error| format!("the daemon is gone: {error}"))
}

async fn read_answer(lines: &mut BufReader<UnixStream>) -> Result<Value, String> {
    let mut line = String::new();
    match lines.read_line(&mut line).await {
        Ok(0) | Err(_) => Err("the daemon is gone".to_owned()),
        Ok(_) => match serde_json::from_str(&line) {
            Ok(Response::Ok(value)) => Ok(value),
            Ok(Response::Error(error)) => Err(error),
            Err(error) => Err(format!("a bad answer: {error}")),
        },
    }
}

/// Streams a `watch`-like request's lines into the loop as updates.
async fn follow(
    socket: PathBuf,
    request: Request,
    updates: mpsc::UnboundedSender<Update>,
    update: impl Fn(Value) -> Update,
) {
    let mut stream = match connect(&socket).await {
        Ok(stream) => stream,
        Err(error) => {
            let _ = updates.send(Update::Said(error));
            return;
        }
    };
    if send(&mut stream, &request).await.is_err() {
        return;
    }
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if updates.send(update(value)).is_err() {
            return;
        }
    }
    let _ = updates.send(Update::Said("the daemon went away".to_owned()));
}

/// The history once, then the peers every [`PEERS_EVERY`].
async fn poll_peers(socket: PathBuf, updates: mpsc::UnboundedSender<Update>) {
    if let Ok(history) = ask(&socket, &Request::History).await {
        let _ = updates.send(Update::History(history));
    }
    let mut every = tokio::time::interval(PEERS_EVERY);
    loop {
        every.tick().await;
        let Ok(peers) = ask(&socket, &Request::Peers).await else {
            continue;
        };
        if updates.send(Update::Peers(peers)).is_err() {
            return;
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
    let mut connection = None;
    while let Some(edit) = pending.recv().await {
        let request = match edit {
            Edit::Insert { at, text, base } => Request::ScratchInsert {
                name: name.clone(),
                at,
                text,
                base: Some(base),
            },
            Edit::Delete { at, len, base } => Request::ScratchDelete {
                name: name.clone(),
                at,
                len,
                base: Some(base),
            },
        };
        let answer = match &mut connection {
            Some(lines) => exchange(lines, &request).await,
            None => match connect(&socket).await {
                Ok(stream) => exchange(connection.insert(BufReader::new(stream)), &request).await,
                Err(error) => Err(error),
            },
        };
        let answer = match answer {
            Ok(text) => Ok(text.as_str().unwrap_or_default().to_owned()),
            Err(error) => {
                connection = None;
                // The text as it is, so the refused edit leaves the screen.
                let current = ask(&socket, &Request::ScratchCat { name: name.clone() }).await;
                Err((
                    error,
                    current
                        .ok()
                        .and_then(|text| text.as_str().map(str::to_owned)),
                ))
            }
        };
        if updates.send(Update::EditAnswered(answer)).is_err() {
            return;
        }
    }
}
