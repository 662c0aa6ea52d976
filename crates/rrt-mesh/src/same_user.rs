//! Same user only, in both directions: a daemon closes a connection from another uid without a
//! byte, and whoever connects — the CLI, the TUI, a daemon dialing a peer or its coordinator —
//! asks the kernel who listens (`SO_PEERCRED`) before it sends anything, and refuses another uid.
//!
//! A path names a socket only as long as its directory does: whoever can swap the directory (a
//! shared `/tmp` after a cleaner removed ours, a careless `chmod`) can put a socket of theirs
//! under the name we dial. A `clip copy` that connected to it would hand them the secret. The
//! credentials belong to the socket, not to its path, so no race between a check of the
//! directory and the connect can beat them.
//!
//! ```text
//! connect(path) ── SO_PEERCRED: uid ──▶ ours? ── yes ──▶ first byte
//!                                         └── no ──▶ close; PeerError::OtherUser
//! ```

use std::{
    io,
    os::{fd::AsFd, unix::net::UnixStream},
    path::{Path, PathBuf},
};

use rustix::{net::sockopt::socket_peercred, process::getuid};

/// Why a socket was not talked to. In every case nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The socket could not be reached.
    #[error("connecting to {socket}: {source}")]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The kernel would not say who listens (not a Unix socket?).
    #[error("reading who listens on {socket}: {source}")]
    Credentials {
        /// The socket.
        socket: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another user listens there: talking to it would hand them what we send, and let them
    /// answer for our daemon.
    #[error("{socket} is served by uid {theirs}, not by us (uid {ours}); refusing to talk to it")]
    OtherUser {
        /// The socket.
        socket: PathBuf,
        /// The uid of whoever listens.
        theirs: u32,
        /// Our uid.
        ours: u32,
    },
}

/// Our uid: the one every daemon and client of a mesh must share.
pub fn our_uid() -> u32 {
    getuid().as_raw()
}

/// The rule: a connection on `socket` whose other end runs as `theirs` may be used by a process
/// running as `ours` only if they are the same.
pub fn check(socket: &Path, theirs: u32, ours: u32) -> Result<(), PeerError> {
    if theirs == ours {
        Ok(())
    } else {
        Err(PeerError::OtherUser {
            socket: socket.to_owned(),
            theirs,
            ours,
        })
    }
}

/// Checks who is on the other end of `stream`, a connection just made to `socket`; on an error,
/// send nothing and drop the stream. Returns the other end's pid.
pub fn verify(socket: &Path, stream: impl AsFd) -> Result<u32, PeerError> {
    let credentials = socket_peercred(stream).map_err(|errno| PeerError::Credentials {
        socket: socket.to_owned(),
        source: errno.into(),
    })?;
    check(socket, credentials.uid.as_raw(), our_uid())?;
    Ok(credentials.pid.as_raw_nonzero().get().unsigned_abs())
}

/// Connects to `socket` and [`verify`]s it: a blocking stream to a process of our own uid.
pub fn connect(socket: &Path) -> Result<UnixStream, PeerError> {
    let stream = UnixStream::connect(socket).map_err(|source| PeerError::Connect {
        socket: socket.to_owned(),
        source,
    })?;
    verify(socket, &stream)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn only_our_own_uid_is_talked_to() {
        let socket = Path::new("/run/user/1000/rrt/default/control-7.sock");
        assert!(check(socket, 1000, 1000).is_ok());
        let error = check(socket, 4242, 1000).expect_err("another user");
        assert!(matches!(
            &error,
            PeerError::OtherUser {
                theirs: 4242,
                ours: 1000,
                ..
            }
        ));
        // The message names the socket and both uids.
        let message = error.to_string();
        for part in [socket.to_str().unwrap_or_default(), "uid 4242", "uid 1000"] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }

    #[test]
    fn a_socket_of_our_own_is_accepted_and_its_pid_known() {
        let dir = std::env::temp_dir().join(format!("rrt-same-user-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("directory");
        let path = dir.join("s.sock");
        let _listener = UnixListener::bind(&path).expect("bind");
        let stream = connect(&path).expect("ours");
        assert_eq!(verify(&path, &stream).expect("ours"), std::process::id());
        assert!(matches!(
            connect(&dir.join("missing.sock")),
            Err(PeerError::Connect { .. })
        ));
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
