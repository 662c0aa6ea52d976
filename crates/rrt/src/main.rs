//! `rrt`: keep your clipboard and scratch documents in sync across every terminal and machine
//! you own. This binary is the daemon and the command line; the work is done by the `rrt-*`
//! library crates.

mod accept_backoff;
mod client;
mod clip_client;
mod content_requests;
mod control;
mod daemon;
mod file_tree;
mod file_uris;
mod frame;
mod keys;
mod pair;
mod relay;
mod replica;
mod request_reader;
mod system_clipboard;
mod trust;
mod tui;
mod upload;

use std::{io::IsTerminal, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Local-first clipboard sync across every terminal you own, built on Resilient Reactor Threads.
#[derive(Debug, Parser)]
#[command(name = "rrt", version, about)]
struct Cli {
    #[command(flatten)]
    locate: Locate,
    #[command(subcommand)]
    command: Command,
}

/// Which mesh, and which daemon of it.
#[derive(Debug, Clone, Args)]
pub(crate) struct Locate {
    /// The mesh: instances of different meshes never see each other.
    #[arg(long, global = true, default_value = "default")]
    mesh: String,
    /// The instance's name: for `daemon`, the name it runs under [default: HOST-PID]; for
    /// other commands, the daemon to ask [default: any daemon of the mesh].
    #[arg(long, global = true)]
    instance: Option<String>,
    /// Where mesh directories live [default: $XDG_RUNTIME_DIR/rrt, else /tmp/rrt-UID]
    #[arg(long, global = true)]
    runtime_dir: Option<PathBuf>,
    /// Where the clipboard, this device's key and the trusted devices are kept
    /// [default: $XDG_STATE_HOME/rrt]
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
}

impl Locate {
    fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(default_state_dir)
    }
}

/// `$XDG_STATE_HOME/rrt`, else `$HOME/.local/state/rrt`, else `<temp dir>/rrt`: the binary's
/// choice (the library picks no place on disk for an application).
fn default_state_dir() -> PathBuf {
    let env = |name| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_STATE_HOME")
        .or_else(|| env("HOME").map(|home| home.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rrt")
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an instance in the foreground: join the mesh and share its clipboard (logs to stderr;
    /// RUST_LOG=debug for more).
    Daemon(daemon::DaemonArgs),
    /// List the peers the daemon is connected to.
    Peers {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the daemon's identity, mesh, and state.
    Status {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List, read, append to, edit and watch shared scratch documents.
    #[command(subcommand)]
    Scratch(client::ScratchCommand),
    /// Set, get, delete and watch the shared app state (a key-value map).
    #[command(subcommand)]
    State(client::StateCommand),
    /// Print this device's id, its Ed25519 public key (its identity to other hosts; created on first use).
    Id,
    /// Trust, list or forget other devices by id.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Invite a device to pair, across networks too: prints a one-time ticket (and a QR code),
    /// then shows a code to compare once the other device runs `rrt join`.
    Invite(pair::InviteArgs),
    /// Pair with the device whose `rrt invite` printed this ticket.
    Join(pair::JoinArgs),
    /// Run a relay server devices on different networks meet through (self-hosting what
    /// iroh's public relays do).
    Relay(relay::RelayArgs),
    /// Copy, paste, watch and list the shared clipboard.
    #[command(subcommand)]
    Clip(clip_client::ClipCommand),
    /// A terminal UI: peers, the clipboard history (Enter copies an entry again) and a shared
    /// scratch document to type in, all live.
    Tui {
        /// The scratch document to show and edit.
        #[arg(long, default_value = "scratch")]
        scratch: String,
    },
    /// Show what your terminal sends: every key, mouse action, paste and resize, decoded by the
    /// terminal-input reactor. Press q to quit.
    Keys,
    /// Convert between newline-delimited JSON and the wire protocol's frames, to drive a peer by
    /// hand with socat and read it with jq.
    #[command(subcommand)]
    Frame(frame::FrameCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Daemon(_) | Command::Relay(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let locate = cli.locate;
    let result = match cli.command {
        Command::Daemon(args) => daemon::run(&locate, args),
        Command::Peers { json } => client::peers(&locate, json),
        Command::Status { json } => client::status(&locate, json),
        Command::Clip(command) => clip_client::clip(&locate, command),
        Command::Scratch(command) => client::scratch(&locate, command),
        Command::State(command) => client::state(&locate, command),
        Command::Id => trust::id(&locate),
        Command::Trust(command) => trust::run(&locate, command),
        Command::Invite(args) => pair::invite(&locate, &args),
        Command::Join(args) => pair::join(&locate, &args),
        Command::Relay(args) => relay::run(args),
        Command::Keys => keys::run(),
        Command::Tui { scratch } => tui::run(&locate, scratch),
        Command::Frame(command) => frame::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rrt: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
