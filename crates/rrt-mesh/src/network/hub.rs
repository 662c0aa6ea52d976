//! The hub topology's coordinator role: won by whoever holds an exclusive `flock` on
//! `coordinator.lock` — the kernel releases it when the holder dies, even by `kill -9`, so the
//! next instance to try takes over without any timeout.
//!
//! ```text
//! leaf ──dial coordinator.sock──▶ coordinator ──relays clipboard updates──▶ every other leaf
//! coordinator dies ─▶ leaves see EOF ─▶ each tries the lock ─▶ one binds coordinator.sock,
//!                                       the rest dial it (on its inotify event, or retrying)
//! ```

use std::{
    fs::{self, File},
    io,
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use mio::{
    Interest, Registry, Token,
    net::{UnixListener, UnixStream},
};
use rrt_sync::locked_file::PrivateDir;
use rrt_wire::Session;
use rustix::{
    fs::{FlockOperation, flock},
    io::Errno,
};
use serde::Serialize;

use super::{stream::Stream, worker::NetworkWorker};
use crate::{
    dir::{COORDINATOR_LOCK, MeshDir},
    membership::Direction,
    same_user,
};

/// The token of the coordinator's listener.
pub(crate) const COORDINATOR: Token = Token(2);

/// How the instances of a mesh connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Every instance connects to every other; the lower pid dials.
    #[default]
    Mesh,
    /// Every instance connects to one coordinator, which relays.
    Hub,
}

/// What this instance is in its topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A full-mesh peer.
    Peer,
    /// The hub's coordinator.
    Coordinator,
    /// A hub leaf, connected (or reconnecting) to the coordinator.
    Leaf,
}

/// The coordinator's lock and listener, held for as long as this instance coordinates.
pub(crate) struct Coordinator {
    _lock: File,
    pub(crate) listener: UnixListener,
    dir: MeshDir,
}

impl Coordinator {
    /// Takes the coordinator role if nobody holds it: `Ok(None)` when another instance does.
    pub(crate) fn try_acquire(dir: &MeshDir, registry: &Registry) -> io::Result<Option<Self>> {
        let lock = PrivateDir::open(dir.path())?.open_lock(COORDINATOR_LOCK)?;
        match flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => return Ok(None),
            Err(errno) => return Err(errno.into()),
        }
        // Whatever socket is there belongs to a dead coordinator: we hold the lock.
        let path = dir.coordinator_socket();
        match fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        let mut listener = UnixListener::bind(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        registry.register(&mut listener, COORDINATOR, Interest::READABLE)?;
        tracing::info!(socket = %path.display(), "this instance is the hub coordinator");
        Ok(Some(Self {
            _lock: lock,
            listener,
            dir: dir.clone(),
        }))
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        // Remove the socket before the lock goes, so a successor never finds ours.
        let _ = fs::remove_file(self.dir.coordinator_socket());
    }
}

/// A leaf's next attempt to reach (or become) the coordinator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HubAttempt {
    pub(crate) at: Instant,
    attempt: u32,
}

impl HubAttempt {
    pub(crate) fn now(now: Instant) -> Self {
        Self {
            at: now,
            attempt: 0,
        }
    }

    /// The attempt after this one failed: 25 ms, doubling, at most 500 ms apart — a leaf keeps
    /// trying for as long as it has no coordinator.
    pub(crate) fn next(self, now: Instant) -> Self {
        let delay = Duration::from_millis(25).saturating_mul(1 << self.attempt.min(5));
        Self {
            at: now + delay.min(Duration::from_millis(500)),
            attempt: self.attempt + 1,
        }
    }
}

impl NetworkWorker {
    pub(super) fn role(&self) -> Role {
        match (self.config.topology, &self.coordinator) {
            (Topology::Mesh, _) => Role::Peer,
            (Topology::Hub, Some(_)) => Role::Coordinator,
            (Topology::Hub, None) => Role::Leaf,
        }
    }

    /// A hub leaf without a coordinator: take the role if it is free, else dial whoever has it.
    pub(super) fn reach_coordinator(&mut self, registry: &Registry, now: Instant) {
        let attempt = self.hub_attempt.take().unwrap_or(HubAttempt::now(now));
        match Coordinator::try_acquire(&self.config.dir, registry) {
            Ok(Some(coordinator)) => {
                self.coordinator = Some(coordinator);
                self.membership.coordinate();
                return;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not contend for the coordinator role"),
        }
        let path = self.config.dir.coordinator_socket();
        match UnixStream::connect(&path) {
            Ok(stream) => match same_user::verify(&path, &stream) {
                Ok(pid) => {
                    let session = Session::dial(self.config.wire.clone(), now);
                    let stream = Stream::Unix(stream);
                    self.hub_link =
                        self.add_link(stream, session, Some(pid), Direction::Dialed, registry, now);
                    if let Some(link) = self.hub_link {
                        self.membership.follow(link);
                    }
                }
                // Not our coordinator: whoever holds the lock may still bind the real one (or
                // die and leave us the role).
                Err(error) => {
                    tracing::warn!(%error, "not dialing the coordinator socket");
                    self.hub_attempt = Some(attempt.next(now));
                }
            },
            Err(error) => {
                tracing::debug!(%error, "the coordinator is not reachable yet");
                self.hub_attempt = Some(attempt.next(now));
            }
        }
    }
}
