//! What can go wrong talking to a daemon, as the client sees it.

use std::{io, path::PathBuf};

use crate::answer::{ErrorKind, Refusal};

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No daemon runs on the mesh.
    #[error(
        "no rrt daemon runs on mesh {mesh:?} (in {}); start one with `rrt daemon` \
         (from a checkout: `cargo run --release -- daemon`)",
        dir.display()
    )]
    NoDaemon {
        /// The mesh.
        mesh: String,
        /// Its directory.
        dir: PathBuf,
    },
    /// No daemon of that name runs on the mesh.
    #[error("no rrt daemon named {name:?} runs on mesh {mesh:?}; `rrt peers` lists the others")]
    NoSuchDaemon {
        /// The name asked for.
        name: String,
        /// The mesh.
        mesh: String,
    },
    /// The mesh directory cannot be used (it is not ours, say).
    #[error(transparent)]
    MeshDir(#[from] rrt_mesh::DirError),
    /// The registry of daemons cannot be read.
    #[error("reading the registry in {}: {source}", dir.display())]
    Registry {
        /// The mesh directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The daemon's socket cannot be reached, or another user serves it.
    #[error("reaching the daemon: {0}")]
    Connect(#[from] rrt_mesh::same_user::PeerError),
    /// Reading or writing the connection failed.
    #[error("talking to the daemon: {0}")]
    Io(#[from] io::Error),
    /// The daemon closed the connection before answering.
    #[error("the daemon closed the connection without an answer")]
    Closed,
    /// The daemon answered something this client does not understand (another version?).
    #[error("the daemon's answer is not understood: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The daemon refused the request or could not do it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A raw answer ended before its announced size.
    #[error("the daemon sent {got} of {expected} bytes; the value is incomplete")]
    Incomplete {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
}

impl ControlError {
    /// The daemon's kind of refusal, when it refused.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Refused(refusal) => Some(refusal.kind),
            _ => None,
        }
    }
}
