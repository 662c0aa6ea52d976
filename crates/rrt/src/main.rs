//! `rrt`: keep your clipboard and scratch documents in sync across every terminal and machine
//! you own. This binary is the daemon and the command line; the work is done by the `rrt-*`
//! library crates.

mod accept_backoff;
mod client;
mod clip_client;
mod config;
mod content_requests;
mod control;
mod daemon;
mod file_tree;
mod file_uris;
mod frame;
mod keys;
mod manuals;
mod metrics;
mod never_share;
mod pair;
mod relay;
mod replica;
mod request_reader;
mod service;
mod system_clipboard;
mod trust;
mod tui;
mod upload;

use std::{ffi::OsString, io::IsTerminal, path::PathBuf, process::ExitCode};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
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
    /// The config file: every daemon flag and the global ones, by their long names; flags given
    /// here override it [default: $XDG_CONFIG_HOME/rrt/config.toml, if it exists]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl Locate {
    fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(default_state_dir)
    }
}

/// `$XDG_STATE_HOME/rrt`, else `$HOME/.local/state/rrt`, else `<temp dir>/rrt`: the binary's
/// choice (the library picks no place on disk for an application).
fn default_state_dir() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", ".local/state")
        .unwrap_or_else(std::env::temp_dir)
        .join("rrt")
}

/// An XDG base directory: `$variable` if set and not empty, else `$HOME/under_home`; `None`
/// when neither is set.
fn xdg_dir(variable: &str, under_home: &str) -> Option<PathBuf> {
    let env = |name| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    env(variable).or_else(|| env("HOME").map(|home| home.join(under_home)))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an instance in the foreground: join the mesh and share its clipboard (logs to stderr;
    /// RUST_LOG=debug for more).
    Daemon(Box<daemon::DaemonArgs>),
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
    /// Show the effective settings and where each came from, or where the config file is.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the daemon as a service of your session: started at login, restarted when it fails
    /// (a systemd user unit; a launchd agent on macOS).
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Print shell completions for rrt.
    Completions(manuals::CompletionsArgs),
    /// Print rrt's manual page (or write one per subcommand into a directory).
    Man(manuals::ManArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// The settings `rrt daemon` would run with (given these flags too), each with where it came
    /// from: a flag, the config file (and its line), or the default. Printed as TOML.
    Show {
        /// JSON instead of TOML.
        #[arg(long)]
        json: bool,
        /// Read from the command line, and shown with the rest.
        #[command(flatten)]
        daemon: Box<daemon::DaemonArgs>,
    },
    /// Print the config file's path.
    Path,
}

/// The config file in use: where it is (`--config` or the default), and what it holds.
pub(crate) struct Config {
    path: PathBuf,
    /// Whether it was named with `--config` (then it must exist).
    explicit: bool,
    file: Option<config::ConfigFile>,
}

impl Config {
    /// The file as it is now (re-read on SIGHUP).
    pub(crate) fn reread(&self) -> Result<Option<config::ConfigFile>, config::ConfigError> {
        config::read(&self.path, self.explicit)
    }

    pub(crate) fn file(&self) -> Option<&config::ConfigFile> {
        self.file.as_ref()
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The file as read again.
    pub(crate) fn replace_file(&mut self, file: Option<config::ConfigFile>) {
        self.file = file;
    }
}

/// The daemon's settings from this process's command line and `file` (as read again on
/// SIGHUP): the flags given still override it.
pub(crate) fn daemon_settings(
    file: Option<&config::ConfigFile>,
) -> anyhow::Result<daemon::DaemonArgs> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let given = Cli::command().try_get_matches_from(args.clone())?;
    let args = match file {
        Some(file) => file.apply(args, &given),
        None => args,
    };
    match Cli::try_parse_from(args)?.command {
        Command::Daemon(settings) => Ok(*settings),
        _ => anyhow::bail!("not a daemon's command line"),
    }
}

/// The command line with the config file's settings applied; the matches of the command line
/// alone; the config file. Exits (as clap does) on a command line or config file in error.
fn command_line() -> Result<(Cli, clap::ArgMatches, clap::ArgMatches, Config), ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let given = Cli::command().get_matches_from(args.clone());
    let cli = Cli::from_arg_matches(&given).unwrap_or_else(|error| error.exit());
    let (path, explicit) = match &cli.locate.config {
        Some(path) => (path.clone(), true),
        None => (config::default_path(), false),
    };
    let file = config::read(&path, explicit).map_err(|error| {
        eprintln!("rrt: {error}");
        ExitCode::from(2)
    })?;
    let config = Config {
        path,
        explicit,
        file,
    };
    let Some(file) = config.file() else {
        return Ok((cli, given.clone(), given, config));
    };
    let effective = Cli::command()
        .try_get_matches_from(file.apply(args, &given))
        .unwrap_or_else(|error| {
            eprintln!("rrt: with the settings of {}:", file.path.display());
            error.exit()
        });
    let cli = Cli::from_arg_matches(&effective).unwrap_or_else(|error| error.exit());
    Ok((cli, given, effective, config))
}

fn main() -> ExitCode {
    let (cli, given, effective, config) = match command_line() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
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
        Command::Daemon(args) => daemon::run(&locate, *args, config),
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
        Command::Config(ConfigCommand::Show { json, .. }) => {
            config::show(&config, &given, &effective, json)
        }
        Command::Service(command) => service::run(&locate, command),
        Command::Completions(args) => manuals::completions(&args),
        Command::Man(args) => manuals::man(&args),
        Command::Config(ConfigCommand::Path) => {
            println!("{}", config.path.display());
            Ok(())
        }
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
