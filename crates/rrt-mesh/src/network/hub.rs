//! The hub topology's coordinator role: won by whoever holds an exclusive `flock` on
//! `coordinator.lock` — the kernel releases it when the holder dies, even by `kill -9`, so the
//! next instance to try takes over without any timeout.
//!
//! ```text
//! leaf ──dial coordinator.sock──▶ coordinator ──forwards what is new to it──▶ every other leaf
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
use rrt_store::locked_file::PrivateDir;
use rustix::{
    fs::{FlockOperation, flock},
    io::Errno,
};
use serde::{Deserialize, Serialize};

use crate::{
    dir::{COORDINATOR_LOCK, MeshDir},
    proto::membership::LinkId,
    same_user,
};

/// The token of the coordinator's listener.
pub(super) const COORDINATOR: Token = Token(2);

/// How the instances of a mesh connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Every instance connects to every other; the lower pid dials.
    #[default]
    Mesh,
    /// Every instance connects to one coordinator, which relays.
    Hub,
}

/// What this instance is in its topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
struct Coordinator {
    _lock: File,
    listener: UnixListener,
    dir: MeshDir,
}

impl Coordinator {
    /// Takes the coordinator role if nobody holds it: `Ok(None)` when another instance does.
    fn try_acquire(dir: &MeshDir, registry: &Registry) -> io::Result<Option<Self>> {
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
struct HubAttempt {
    at: Instant,
    attempt: u32,
}

impl HubAttempt {
    fn now(now: Instant) -> Self {
        Self {
            at: now,
            attempt: 0,
        }
    }

    /// The attempt after this one failed: 25 ms, doubling, at most 500 ms apart — a leaf keeps
    /// trying for as long as it has no coordinator.
    fn next(self, now: Instant) -> Self {
        let delay = Duration::from_millis(25).saturating_mul(1 << self.attempt.min(5));
        Self {
            at: now + delay.min(Duration::from_millis(500)),
            attempt: self.attempt + 1,
        }
    }
}

/// What a hub leaf's attempt to reach the coordinator found.
pub(super) enum Reached {
    /// This instance took the role.
    Coordinator,
    /// The coordinator's socket, connected, and the process behind it.
    Leaf(UnixStream, u32),
    /// Nobody yet: the next attempt is scheduled.
    Nobody,
}

/// The hub topology's state in the worker: the coordinator role if held, else the leaf's link
/// to the coordinator or its next attempt to find one.
pub(super) struct Hub {
    topology: Topology,
    /// Held while this instance coordinates.
    coordinator: Option<Coordinator>,
    /// A leaf's link to the coordinator.
    link: Option<LinkId>,
    /// A leaf without a coordinator: when to try again.
    attempt: Option<HubAttempt>,
}

impl Hub {
    /// In the hub topology, contends for the coordinator role at once; a leaf that loses plans
    /// its first attempt to reach the winner at `now`.
    pub(super) fn new(
        topology: Topology,
        dir: &MeshDir,
        registry: &Registry,
        now: Instant,
    ) -> io::Result<Self> {
        let mut hub = Self {
            topology,
            coordinator: None,
            link: None,
            attempt: None,
        };
        if topology == Topology::Hub {
            hub.coordinator = Coordinator::try_acquire(dir, registry)?;
            if hub.coordinator.is_none() {
                hub.attempt = Some(HubAttempt::now(now));
            }
        }
        Ok(hub)
    }

    pub(super) fn role(&self) -> Role {
        match (self.topology, &self.coordinator) {
            (Topology::Mesh, _) => Role::Peer,
            (Topology::Hub, Some(_)) => Role::Coordinator,
            (Topology::Hub, None) => Role::Leaf,
        }
    }

    /// The coordinator's listener, while this instance coordinates.
    pub(super) fn listener(&self) -> Option<&UnixListener> {
        self.coordinator
            .as_ref()
            .map(|coordinator| &coordinator.listener)
    }

    /// When to try to reach the coordinator next, for a leaf without one.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.attempt.map(|attempt| attempt.at)
    }

    /// `coordinator.sock` appeared: a leaf looking for a coordinator tries at once.
    pub(super) fn coordinator_appeared(&mut self, now: Instant) {
        if self.attempt.is_some() {
            self.attempt = Some(HubAttempt::now(now));
        }
    }

    /// A leaf without a coordinator, when its attempt is due: take the role if it is free, else
    /// dial whoever has it.
    pub(super) fn reach(&mut self, dir: &MeshDir, registry: &Registry, now: Instant) -> Reached {
        let Some(attempt) = self.attempt.filter(|attempt| attempt.at <= now) else {
            return Reached::Nobody;
        };
        self.attempt = None;
        match Coordinator::try_acquire(dir, registry) {
            Ok(Some(coordinator)) => {
                self.coordinator = Some(coordinator);
                return Reached::Coordinator;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not contend for the coordinator role"),
        }
        let path = dir.coordinator_socket();
        match UnixStream::connect(&path) {
            Ok(stream) => match same_user::verify(&path, &stream) {
                Ok(pid) => return Reached::Leaf(stream, pid),
                // Not our coordinator: whoever holds the lock may still bind the real one (or
                // die and leave us the role).
                Err(error) => tracing::warn!(%error, "not dialing the coordinator socket"),
            },
            Err(error) => tracing::debug!(%error, "the coordinator is not reachable yet"),
        }
        self.attempt = Some(attempt.next(now));
        Reached::Nobody
    }

    /// The leaf's link to the coordinator is `link`, or could not be watched (`None`: try again).
    pub(super) fn linked(&mut self, link: Option<LinkId>, now: Instant) {
        self.link = link;
        if link.is_none() {
            self.attempt = Some(HubAttempt::now(now).next(now));
        }
    }

    /// `link` is gone: a leaf that lost its coordinator looks for the next one at once.
    pub(super) fn link_closed(&mut self, link: LinkId, now: Instant) {
        if self.link == Some(link) {
            self.link = None;
            self.attempt = Some(HubAttempt::now(now));
        }
    }

    /// Leaving: no successor search for a coordinator we are about to drop.
    pub(super) fn stop(&mut self) {
        self.attempt = None;
    }
}
