//! The observable state of a reactor.

use crate::error::ReactorError;

/// Where a reactor is in its lifecycle (see the diagram in the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No thread runs. The next [`Rrt::subscribe`](crate::Rrt::subscribe) launches one.
    Stopped,
    /// A thread was launched and is creating its first worker.
    Starting,
    /// A worker runs.
    Running,
    /// A worker was dropped; the thread waits out the backoff before creating the next.
    Restarting,
}

/// A snapshot of a reactor, from [`Rrt::status`](crate::Rrt::status) or, on every change,
/// [`Rrt::watch_status`](crate::Rrt::watch_status).
#[derive(Debug, Clone)]
pub struct Status {
    /// Where the reactor is now.
    pub state: State,
    /// How many times a thread was launched (0 before the first subscriber).
    pub generation: u64,
    /// Restarts within the current (or last) generation.
    pub restarts: u32,
    /// Subscribers holding the reactor alive.
    pub subscribers: usize,
    /// Why the last generation failed, if it did; cleared when a new one starts.
    pub last_error: Option<ReactorError>,
}
