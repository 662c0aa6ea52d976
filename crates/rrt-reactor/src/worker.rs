//! What a worker is: the code that owns the OS resources and reacts to their readiness.
//!
//! The driver calls exactly one method per cause of a wake-up (a ready source, a command, a
//! passed deadline) and the worker answers with a [`Control`] telling the driver what to do next.
//! That keeps workers free of any knowledge of threads, channels or restarts.

use std::time::Instant;

use mio::{Registry, Token, event::Event};
use tokio::sync::broadcast;

use crate::event::ReactorEvent;

/// The token of the reactor's own [`mio::Waker`]; workers must not register a source with it.
pub const WAKE_TOKEN: Token = Token(usize::MAX);

/// Code that runs on a reactor thread and owns the sources it registered there.
///
/// A worker is created by the factory given to [`Rrt::new`](crate::Rrt::new), on the reactor
/// thread, with the [`Registry`] of a fresh [`mio::Poll`]; it registers its sources there and is
/// dropped (closing them) when the driver stops or restarts it. It never needs to be `Send`.
///
/// mio is edge-triggered: [`Worker::on_ready`] must drain a source until `WouldBlock`.
pub trait Worker: 'static {
    /// What the worker publishes to subscribers.
    type Event: Clone + Send + 'static;
    /// What async code sends to the worker through [`Rrt::send`](crate::Rrt::send).
    type Command: Send + 'static;

    /// One of the worker's sources is ready.
    fn on_ready(&mut self, event: &Event, ctx: &mut Context<'_, Self::Event>) -> Control;

    /// A command arrived. Commands are delivered one at a time, in the order they were sent.
    fn on_command(&mut self, command: Self::Command, ctx: &mut Context<'_, Self::Event>)
    -> Control;

    /// The next instant the worker wants [`Worker::on_deadline`] called (heartbeats, handshake
    /// deadlines); the poll sleeps at most until then. `None`, the default, sleeps until a source
    /// is ready.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// The instant returned by [`Worker::deadline`] has passed.
    fn on_deadline(&mut self, now: Instant, ctx: &mut Context<'_, Self::Event>) -> Control {
        let _ = (now, ctx);
        Control::Continue
    }
}

/// What the driver does after a worker method returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep polling.
    Continue,
    /// Drop the worker and stop the thread ([`ShutdownReason::Stopped`](crate::ShutdownReason)).
    Stop,
    /// Drop the worker and create a new one after the [`RestartPolicy`](crate::RestartPolicy)'s
    /// backoff delay.
    Restart,
}

/// The worker's view of the reactor during one call: where to register new sources and where to
/// publish events.
pub struct Context<'a, E> {
    registry: &'a Registry,
    events: &'a broadcast::Sender<ReactorEvent<E>>,
    capacity: usize,
}

impl<'a, E> Context<'a, E> {
    pub(crate) fn new(
        registry: &'a Registry,
        events: &'a broadcast::Sender<ReactorEvent<E>>,
        capacity: usize,
    ) -> Self {
        Self {
            registry,
            events,
            capacity,
        }
    }

    /// The registry of the reactor's poll, for sources the worker opens later (accepted
    /// connections, outgoing dials).
    pub fn registry(&self) -> &Registry {
        self.registry
    }

    /// How many more events can be published before the slowest subscriber starts missing
    /// some. A worker whose source can wait (a terminal keeps what was typed in its buffer, and
    /// the typist's side blocks when that is full) stops reading while this is small, so that
    /// nothing is lost; one whose source cannot wait publishes anyway.
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.events.len())
    }

    /// Publishes an event to every current subscriber. Never blocks: a subscriber that falls more
    /// than the channel capacity behind is told how many events it missed.
    pub fn emit(&self, event: E) {
        // An error only means nobody subscribes right now, which is not the worker's concern.
        let _ = self.events.send(ReactorEvent::Worker(event));
    }
}
