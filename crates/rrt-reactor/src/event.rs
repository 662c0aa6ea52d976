//! What subscribers receive: the worker's own events interleaved with lifecycle events.

use std::time::Duration;

use crate::error::{ReactorError, RestartCause};

/// One item of a [`Subscription`](crate::Subscription).
#[derive(Debug, Clone)]
pub enum ReactorEvent<E> {
    /// Published by the worker through [`Context::emit`](crate::Context::emit).
    Worker(E),
    /// A worker was created and the reactor is [`Running`](crate::State::Running).
    Started {
        /// Which launch of the thread this is (1 for the first).
        generation: u64,
        /// Restarts within this generation so far (0 for its first worker).
        restarts: u32,
    },
    /// The worker was dropped and a new one will be created after `delay`.
    Restarting {
        /// Consecutive restart attempt, 1-based; reset after a healthy run.
        attempt: u32,
        /// Backoff before the new worker is created.
        delay: Duration,
        /// Why the worker is replaced.
        cause: RestartCause,
    },
    /// The thread ended; the reactor is [`Stopped`](crate::State::Stopped) until the next
    /// [`Rrt::subscribe`](crate::Rrt::subscribe).
    Shutdown(ShutdownReason),
}

/// Why a reactor thread ended.
#[derive(Debug, Clone)]
pub enum ShutdownReason {
    /// The worker returned [`Control::Stop`](crate::Control::Stop) (end of input, for example).
    Stopped,
    /// The last subscriber left.
    NoSubscribers,
    /// Something failed beyond what the restart policy repairs.
    Failed(ReactorError),
}
