//! The daemon's bridge between the mesh clipboard and the system clipboard
//! (`rrt daemon --system-clipboard auto|x11|wayland|osc52|off`).
//!
//! Text copied in the desktop goes to the mesh; every mesh value (from a peer, or `rrt clip copy`)
//! goes to the desktop. Echoes are cut on both sides: an adapter never reports a value it set
//! itself, and the node's announcement of a value the bridge itself copied from the desktop
//! (known by its stamp) is not set back — that would take ownership from the program the user
//! copied in, and under rapid copies put an older value back on the desktop.

use std::{collections::HashSet, io::Write};

use clap::ValueEnum;
use rrt_clipboard::{
    Backend, ClipboardCommand, ClipboardEvent, WaylandClipboard, X11Clipboard, osc52,
};
use rrt_mesh::{Node, NodeError, NodeEvent};
use rrt_reactor::{
    Config, ReactorEvent, RecvError as ReactorRecvError, Rrt, ShutdownReason, Worker,
};
use tokio::sync::broadcast::error::RecvError;

/// Which system clipboard the daemon follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SystemClipboard {
    /// Wayland when `WAYLAND_DISPLAY` is set (X11 if the compositor lacks data-control and
    /// `DISPLAY` is set), else X11 when `DISPLAY` is set, else OSC 52 when run in a terminal,
    /// else none.
    Auto,
    /// The X11 CLIPBOARD selection at `DISPLAY`.
    X11,
    /// The Wayland clipboard at `WAYLAND_DISPLAY`, through the wlr data-control protocol.
    Wayland,
    /// OSC 52 escape sequences to the daemon's terminal (values from the mesh only).
    Osc52,
    /// Leave the system clipboard alone.
    Off,
}

impl SystemClipboard {
    /// The backend to run, or why there is none.
    pub(crate) fn backend(self) -> anyhow::Result<Option<Backend>> {
        match self {
            Self::Auto => Ok(Backend::detect()),
            Self::X11 => Ok(Some(Backend::X11)),
            Self::Wayland => Ok(Some(Backend::Wayland)),
            Self::Osc52 => {
                anyhow::ensure!(
                    rustix::termios::isatty(std::io::stdout()),
                    "--system-clipboard osc52 needs the daemon's output to be a terminal \
                     (or run `rrt clip watch --osc52` in the terminal that should receive copies)"
                );
                Ok(Some(Backend::Osc52))
            }
            Self::Off => Ok(None),
        }
    }
}

/// Follows the system clipboard until the node stops. `fallback` allows X11 when Wayland's
/// clipboard cannot be opened (the automatic choice under XWayland).
pub(crate) async fn follow(node: Node, backend: Backend, fallback: bool) {
    match backend {
        Backend::Wayland => {
            let wayland = Rrt::with_config(WaylandClipboard::new, config("rrt-wayland"));
            let opened = bridge(&node, wayland, "Wayland").await;
            let has_x = std::env::var_os("DISPLAY").is_some_and(|display| !display.is_empty());
            if opened == Opened::No && fallback && has_x {
                tracing::info!("falling back to the X11 clipboard (XWayland)");
                bridge(&node, x11(), "X11").await;
            }
        }
        Backend::X11 => {
            bridge(&node, x11(), "X11").await;
        }
        Backend::Osc52 => follow_osc52(node).await,
    }
}

fn x11() -> Rrt<X11Clipboard> {
    Rrt::with_config(
        |registry| X11Clipboard::new(registry, None),
        config("rrt-x11"),
    )
}

/// The default restart policy (a display server that restarts within about 16 s is reconnected
/// to), under a thread name of its own.
fn config(thread_name: &str) -> Config {
    Config {
        thread_name: thread_name.to_owned(),
        ..Config::default()
    }
}

/// Whether an adapter ever ran.
#[derive(Debug, PartialEq, Eq)]
enum Opened {
    Yes,
    No,
}

/// Carries values both ways between `node` and a clipboard adapter until either ends.
async fn bridge<W>(node: &Node, adapter: Rrt<W>, name: &str) -> Opened
where
    W: Worker<Event = ClipboardEvent, Command = ClipboardCommand>,
{
    let mut adapter_events = adapter.subscribe();
    let mut node_events = node.subscribe();
    let mut opened = Opened::No;
    // Stamps of the values copied from the desktop whose announcement has not come back yet.
    let mut echoes = HashSet::new();
    loop {
        tokio::select! {
            event = adapter_events.recv() => match event {
                Ok(ReactorEvent::Worker(ClipboardEvent::Copied(text))) => {
                    match node.copy(text).await {
                        Ok(Some(entry)) => {
                            echoes.insert(entry.stamp);
                        }
                        Ok(None) => {}
                        Err(NodeError::TooLarge { len, max }) => {
                            tracing::warn!(len, max, "not sharing a system clipboard value over the frame limit");
                        }
                        Err(NodeError::Stopped) => return opened,
                        // (A full disk, say: this value is not shared; the next may be.)
                        Err(error) => {
                            tracing::warn!(%error, "could not share a system clipboard value");
                        }
                    }
                }
                Ok(ReactorEvent::Started { generation, .. }) => {
                    opened = Opened::Yes;
                    tracing::info!(generation, "following the {name} clipboard");
                }
                Ok(ReactorEvent::Restarting { attempt, cause, .. }) => {
                    tracing::warn!(attempt, %cause, "the {name} clipboard adapter is restarting");
                }
                Ok(ReactorEvent::Shutdown(reason)) => {
                    match reason {
                        ShutdownReason::Failed(error) => tracing::error!(
                            %error,
                            "the {name} clipboard is unavailable; the mesh clipboard goes on without it"
                        ),
                        other => tracing::info!(?other, "the {name} clipboard adapter stopped"),
                    }
                    return opened;
                }
                Err(ReactorRecvError::Lagged { missed }) => {
                    tracing::warn!(missed, "missed system clipboard changes");
                }
                Err(ReactorRecvError::Closed) => return opened,
            },
            event = node_events.recv() => match event {
                Ok(NodeEvent::Clipboard { entry }) => {
                    if !echoes.remove(&entry.stamp)
                        && let Err(error) = adapter.send(ClipboardCommand::Set(entry.text.to_string()))
                    {
                        tracing::warn!(command = ?error.0, "the {name} clipboard adapter is stopped");
                    }
                }
                Ok(_) => {}
                // Announcements were lost, echoes among them: forget them rather than keep them.
                Err(RecvError::Lagged(_)) => echoes.clear(),
                Err(RecvError::Closed) => return opened,
            },
        }
    }
}

/// Writes each value to the daemon's terminal. The terminal may stop reading (Ctrl-S, a stalled
/// ssh session), so writes happen on a blocking thread, one at a time, and values that arrive
/// meanwhile are coalesced into the newest — the async thread never waits for the terminal.
async fn follow_osc52(node: Node) {
    let mut node_events = node.subscribe();
    tracing::info!("sending clipboard values to this terminal with OSC 52");
    let mut newest: Option<String> = None;
    let mut writing: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;
    loop {
        if writing.is_none()
            && let Some(text) = newest.take()
        {
            writing = Some(tokio::task::spawn_blocking(move || {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(osc52(&text).as_bytes())?;
                stdout.flush()
            }));
        }
        tokio::select! {
            event = node_events.recv() => match event {
                Ok(NodeEvent::Clipboard { entry }) => newest = Some(entry.text.to_string()),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            written = async {
                match writing.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            } => {
                writing = None;
                if let Ok(Err(error)) | Err(error) = written.map_err(std::io::Error::other) {
                    tracing::warn!(%error, "could not write to the terminal; OSC 52 stops");
                    return;
                }
            }
        }
    }
}
