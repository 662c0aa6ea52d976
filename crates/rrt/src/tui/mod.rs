//! `rrt tui`: who is connected, what is on the shared clipboard, and a shared scratch document to
//! type in — live, in the terminal.
//!
//! Keys, pastes and resizes come from the terminal-input reactor (stdin and `SIGWINCH` owned by
//! one thread, as events); the daemon is reached with `rrt_control`'s async client ([`daemon`]:
//! a clipboard stream, a replica of the scratch document — `open`: CRDT updates both ways, so
//! typing never waits — and a peers query every second, each made again when lost, the daemon
//! found anew by name); ratatui draws. Everything meets in one `select!` loop
//! around the sans-IO [`app::App`], which handles every event already waiting before it draws.

mod app;
mod daemon;
mod documents;
mod editor;
mod scratch;

use std::io::{self, IsTerminal, Write};

use anyhow::{Context as _, bail};
use ratatui::{Terminal, backend::CrosstermBackend};
use rrt_reactor::{
    ReactorEvent, RecvError, TryRecvError,
    terminal::{RawMode, TerminalInput, terminput::Event},
};
use tokio::sync::mpsc;

use self::{
    app::{Action, App},
    daemon::{Outbound, Reach, Update, ask, open_replica},
};
use crate::{Locate, client};

/// The alternate screen and bracketed paste, on and off.
const ENTER: &str = "\x1b[?1049h\x1b[?2004h";
const LEAVE: &str = "\x1b[?2004l\x1b[?1049l\x1b[?25h";

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
    let reach = Reach::new(locate.mesh_daemons(), daemon.name);
    let result = runtime.block_on(event_loop(reach, scratch));
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

async fn event_loop(reach: Reach, scratch: String) -> anyhow::Result<()> {
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let mut app = App::new(reach.instance().to_owned(), scratch.clone());
    let (updates, mut updated) = mpsc::unbounded_channel();
    daemon::follow(&reach, &updates);
    let mut edits = open_replica(&reach, scratch, &updates);

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
                actions.extend(daemon_update(&mut app, update));
                while let Ok(update) = updated.try_recv() {
                    actions.extend(daemon_update(&mut app, update));
                }
            }
        }
        for action in actions {
            match action {
                Action::Quit => return Ok(()),
                Action::CopyAgain(stamp) => ask(
                    &reach,
                    &updates,
                    "copy failed",
                    move |mut client| async move { client.copy_again(stamp).await.map(|_| None) },
                ),
                Action::Copy(text) => ask(
                    &reach,
                    &updates,
                    "copy failed",
                    move |mut client| async move { client.copy(text).await.map(|_| None) },
                ),
                Action::ListDocuments => {
                    ask(&reach, &updates, "no documents", |mut client| async move {
                        client
                            .documents()
                            .await
                            .map(|names| Some(Update::Documents(names)))
                    })
                }
                // The replica of the document shown before is dropped with its connection.
                Action::Open(name) => edits = open_replica(&reach, name, &updates),
                Action::Send(generation, updates) => {
                    for update in updates {
                        let _ = edits.send(Outbound::Update(generation, update));
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

/// What a daemon connection reported; what to do about it.
fn daemon_update(app: &mut App, update: Update) -> Option<Action> {
    match update {
        Update::Peers(peers) => app.peers(&peers),
        Update::History(history) => app.history(&history),
        Update::Copied(entry) => app.copied(&entry),
        Update::Merge(name, update, generation) => app.merge(&name, &update, generation),
        Update::Reset(name, why) => {
            app.reset_scratch(&name);
            app.say(why);
        }
        Update::Offline(name, why) => app.offline(&name, &why),
        Update::Online(name) => return app.online(&name),
        Update::Documents(names) => app.documents(names),
        Update::Editors(name, editors) => app.editors(&name, editors),
        Update::Said(message) => app.say(message),
    }
    None
}
