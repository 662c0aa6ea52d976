//! `rrt`: keep your clipboard and scratch documents in sync across every terminal and machine
//! you own. This binary is the command line; the work is done by the `rrt-*` library crates.

mod frame;
mod keys;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Local-first clipboard and scratch sync, built on Resilient Reactor Threads.
#[derive(Debug, Parser)]
#[command(name = "rrt", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what your terminal sends: every key, mouse action, paste and resize, decoded by the
    /// terminal-input reactor. Press q to quit.
    Keys,
    /// Convert between newline-delimited JSON and the wire protocol's frames, to drive a peer by
    /// hand with socat and read it with jq.
    #[command(subcommand)]
    Frame(frame::FrameCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Keys => keys::run(),
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
