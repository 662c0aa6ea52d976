//! A subscriber's end of the reactor: receives events and keeps the reactor alive.

use std::sync::Arc;

use tokio::sync::broadcast::{self, error};

use crate::{event::ReactorEvent, shared::Shared, worker::Worker};

/// Receives a reactor's events. The reactor runs while at least one subscription exists;
/// dropping the last one stops its thread.
pub struct Subscription<E> {
    receiver: broadcast::Receiver<ReactorEvent<E>>,
    membership: Arc<dyn Membership>,
}

/// The reactor as a subscription sees it: something to leave on drop.
pub(crate) trait Membership: Send + Sync {
    fn leave(&self);
}

impl<W: Worker> Membership for Shared<W> {
    fn leave(&self) {
        self.unsubscribe();
    }
}

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// This subscriber fell so far behind that the oldest `missed` events were dropped for it;
    /// the next receive returns the oldest event still kept.
    #[error("the subscriber lagged behind and missed {missed} events")]
    Lagged {
        /// How many events were lost for this subscriber.
        missed: u64,
    },
    /// The reactor's channel closed. A subscription keeps it open, so this is seen only while a
    /// process tears itself down.
    #[error("the reactor's event channel closed")]
    Closed,
}

/// Why [`Subscription::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// No event is waiting.
    #[error("no event is waiting")]
    Empty,
    /// See [`RecvError`].
    #[error(transparent)]
    Recv(#[from] RecvError),
}

impl<E: Clone> Subscription<E> {
    pub(crate) fn new(
        receiver: broadcast::Receiver<ReactorEvent<E>>,
        membership: Arc<dyn Membership>,
    ) -> Self {
        Self {
            receiver,
            membership,
        }
    }

    /// Waits for the next event.
    pub async fn recv(&mut self) -> Result<ReactorEvent<E>, RecvError> {
        self.receiver.recv().await.map_err(RecvError::from)
    }

    /// Waits for the next event, blocking the calling thread; for code outside an async runtime
    /// (it panics inside one, as [`broadcast::Receiver::blocking_recv`] does).
    pub fn blocking_recv(&mut self) -> Result<ReactorEvent<E>, RecvError> {
        self.receiver.blocking_recv().map_err(RecvError::from)
    }

    /// Returns the next event if one is waiting.
    pub fn try_recv(&mut self) -> Result<ReactorEvent<E>, TryRecvError> {
        self.receiver.try_recv().map_err(|error| match error {
            error::TryRecvError::Empty => TryRecvError::Empty,
            error::TryRecvError::Lagged(missed) => RecvError::Lagged { missed }.into(),
            error::TryRecvError::Closed => RecvError::Closed.into(),
        })
    }
}

impl From<error::RecvError> for RecvError {
    fn from(error: error::RecvError) -> Self {
        match error {
            error::RecvError::Lagged(missed) => Self::Lagged { missed },
            error::RecvError::Closed => Self::Closed,
        }
    }
}

impl<E> Drop for Subscription<E> {
    fn drop(&mut self) {
        self.membership.leave();
    }
}
