//! The daemon's bridge between the mesh clipboard and the system clipboard
//! (`rrt daemon --system-clipboard auto|x11|wayland|osc52|off`).
//!
//! Text copied in the desktop goes to the mesh; every mesh value (from a peer, or `rrt clip copy`)
//! goes to the desktop. Echoes are cut by content on both sides: the adapter never reports a
//! value it set itself, and a mesh value equal to the one just read from the desktop is not set
//! back (which would steal ownership from the program the user copied in).

use std::io::Write;

use clap::ValueEnum;
use rrt_clipboard::{Backend, ClipboardCommand, ClipboardEvent, Terminal, X11Clipboard, osc52};
use rrt_mesh::{Node, NodeError, NodeEvent};
use rrt_reactor::{ReactorEvent, RecvError as ReactorRecvError, Rrt, ShutdownReason};
use tokio::sync::broadcast::error::RecvError;

/// Which system clipboard the daemon follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SystemClipboard {
    /// X11 when `DISPLAY` is set (XWayland under Wayland), else OSC 52 when run in a terminal,
    /// else none.
    Auto,
    /// The X11 CLIPBOARD selection at `DISPLAY`.
    X11,
    /// Wayland's clipboard through the data-control protocol (not supported yet).
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
            Self::Osc52 => {
                anyhow::ensure!(
                    rustix::termios::isatty(std::io::stdout()),
                    "--system-clipboard osc52 needs the daemon's output to be a terminal \
                     (or run `rrt clip watch --osc52` in the terminal that should receive copies)"
                );
                Ok(Some(Backend::Osc52))
            }
            Self::Wayland => anyhow::bail!(
                "the Wayland clipboard is not supported yet; under XWayland use \
                 --system-clipboard x11"
            ),
            Self::Off => Ok(None),
        }
    }
}

/// Follows the system clipboard until the node stops.
pub(crate) async fn follow(node: Node, backend: Backend) {
    match backend {
        Backend::X11 => follow_x11(node).await,
        Backend::Osc52 => follow_osc52(node).await,
    }
}

async fn follow_x11(node: Node) {
    let adapter = Rrt::new(|registry| X11Clipboard::new(registry, None));
    let mut adapter_events = adapter.subscribe();
    let mut node_events = node.subscribe();
    // The last value read from the desktop: the mesh's echo of it is not set back.
    let mut from_desktop: Option<String> = None;
    loop {
        tokio::select! {
            event = adapter_events.recv() => match event {
                Ok(ReactorEvent::Worker(ClipboardEvent::Copied(text))) => {
                    from_desktop = Some(text.clone());
                    match node.copy(text).await {
                        Ok(_) => {}
                        Err(NodeError::TooLarge { len, max }) => {
                            tracing::warn!(len, max, "not sharing a system clipboard value over the frame limit");
                        }
                        Err(error) => {
                            tracing::warn!(%error, "could not share the system clipboard");
                            return;
                        }
                    }
                }
                Ok(ReactorEvent::Started { generation, .. }) => {
                    tracing::info!(generation, "following the X11 clipboard");
                }
                Ok(ReactorEvent::Restarting { attempt, cause, .. }) => {
                    tracing::warn!(attempt, %cause, "the X11 clipboard adapter is restarting");
                }
                Ok(ReactorEvent::Shutdown(reason)) => {
                    match reason {
                        ShutdownReason::Failed(error) => {
                            tracing::error!(%error, "the X11 clipboard is unavailable; the mesh clipboard goes on without it");
                        }
                        other => tracing::info!(?other, "the X11 clipboard adapter stopped"),
                    }
                    return;
                }
                Err(ReactorRecvError::Lagged { missed }) => {
                    tracing::warn!(missed, "missed system clipboard changes");
                }
                Err(ReactorRecvError::Closed) => return,
            },
            event = node_events.recv() => match event {
                Ok(NodeEvent::Clipboard { entry }) => {
                    let echo = from_desktop.take().is_some_and(|text| text == entry.text);
                    if !echo
                        && let Err(error) = adapter.send(ClipboardCommand::Set(entry.text))
                    {
                        tracing::warn!(command = ?error.0, "the X11 clipboard adapter is stopped");
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
        }
    }
}

async fn follow_osc52(node: Node) {
    let terminal = Terminal::detect();
    let mut node_events = node.subscribe();
    tracing::info!(
        ?terminal,
        "sending clipboard values to this terminal with OSC 52"
    );
    loop {
        match node_events.recv().await {
            Ok(NodeEvent::Clipboard { entry }) => {
                let mut stdout = std::io::stdout().lock();
                let written = stdout
                    .write_all(osc52(&entry.text, terminal).as_bytes())
                    .and_then(|()| stdout.flush());
                if let Err(error) = written {
                    tracing::warn!(%error, "could not write to the terminal; OSC 52 stops");
                    return;
                }
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
