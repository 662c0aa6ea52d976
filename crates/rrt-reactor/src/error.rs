//! Typed errors of the reactor.
//!
//! Errors travel inside [`ReactorEvent`](crate::ReactorEvent)s, which a broadcast channel clones
//! for every subscriber, so every payload is cheap to clone (`Arc`).

use std::{error::Error, io, sync::Arc};

/// The error type a worker factory may return (anything that converts into it).
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a reactor stopped for good (until the next subscriber relaunches it).
///
/// In every case the reactor is [`State::Stopped`](crate::State::Stopped) afterwards, the worker
/// has been dropped, and queued commands are kept for the next generation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReactorError {
    /// The factory returned an error when creating the first worker of a generation.
    #[error("worker creation failed: {0}")]
    Create(#[source] Arc<dyn Error + Send + Sync + 'static>),
    /// The factory panicked when creating the first worker of a generation.
    #[error("worker creation panicked: {0}")]
    CreatePanicked(String),
    /// The worker panicked; the message is the panic payload.
    #[error("worker panicked: {0}")]
    Panicked(String),
    /// The reactor could not create its `mio::Poll` or `Waker` (out of file descriptors).
    #[error("could not set up the poll: {0}")]
    Setup(#[source] Arc<io::Error>),
    /// The worker kept failing: the restart policy allowed no further attempt.
    #[error("gave up after {attempts} restart attempts; last cause: {last}")]
    RestartBudgetExhausted {
        /// Restart attempts made since the last healthy run.
        attempts: u32,
        /// Why the last attempt was needed.
        last: RestartCause,
    },
}

/// Why the driver replaced a worker.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RestartCause {
    /// The worker returned [`Control::Restart`](crate::Control::Restart).
    #[error("the worker asked to restart")]
    Requested,
    /// `mio::Poll::poll` failed with something other than `EINTR`.
    #[error("poll failed: {0}")]
    PollFailed(#[source] Arc<io::Error>),
    /// Re-creating the worker during a restart failed; the driver backs off and tries again.
    #[error("re-creating the worker failed: {0}")]
    CreateFailed(#[source] Arc<dyn Error + Send + Sync + 'static>),
    /// Re-creating the worker during a restart panicked.
    #[error("re-creating the worker panicked: {0}")]
    CreatePanicked(String),
}

/// [`Rrt::send`](crate::Rrt::send) refused a command because the reactor is stopped; the command
/// is handed back untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reactor is stopped; subscribe to start it before sending commands")]
pub struct SendError<C>(pub C);
