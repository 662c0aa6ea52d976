//! The handle applications hold: subscribe to start, send commands, observe the status.

use std::{
    any::type_name,
    fmt,
    sync::{Arc, atomic::Ordering},
};

use mio::Registry;
use tokio::sync::watch;

use crate::{
    driver,
    error::{BoxError, SendError},
    policy::RestartPolicy,
    shared::{Shared, Subscribed},
    status::Status,
    subscription::Subscription,
    worker::Worker,
};

/// How a reactor is set up; [`Config::default`] suits most workers.
#[derive(Debug, Clone)]
pub struct Config {
    /// When and how fast a failing worker is re-created.
    pub policy: RestartPolicy,
    /// Events each subscriber may fall behind before it starts missing them.
    pub capacity: usize,
    /// The name of the reactor thread (shown by `top -H`, debuggers and logs).
    pub thread_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            policy: RestartPolicy::default(),
            capacity: 1024,
            thread_name: "rrt-reactor".to_owned(),
        }
    }
}

/// A Resilient Reactor Thread running workers of type `W`. Cloning gives another handle to the
/// same reactor.
///
/// See the [crate docs](crate) for the lifecycle.
pub struct Rrt<W: Worker> {
    shared: Arc<Shared<W>>,
}

impl<W: Worker> Clone for Rrt<W> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<W: Worker> fmt::Debug for Rrt<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rrt")
            .field("worker", &type_name::<W>())
            .field("status", &self.status())
            .finish()
    }
}

impl<W: Worker> Rrt<W> {
    /// A stopped reactor whose workers `factory` creates, with the default [`Config`]. No thread
    /// runs until the first [`Rrt::subscribe`].
    ///
    /// The factory runs on the reactor thread each time a worker is needed (the first start,
    /// every restart, every new generation) and registers the worker's sources on `registry`.
    pub fn new<F, E>(factory: F) -> Self
    where
        F: Fn(&Registry) -> Result<W, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        Self::with_config(factory, Config::default())
    }

    /// Like [`Rrt::new`], with an explicit [`Config`].
    pub fn with_config<F, E>(factory: F, config: Config) -> Self
    where
        F: Fn(&Registry) -> Result<W, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        let factory = Box::new(move |registry: &Registry| factory(registry).map_err(Into::into));
        let shared = Shared::new(
            factory,
            config.policy,
            config.thread_name,
            config.capacity.max(1),
        );
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Subscribes to the reactor's events, launching its thread if it is stopped. The reactor
    /// keeps running while any subscription lives.
    ///
    /// Never blocks: if the worker cannot be created, the subscription receives a
    /// [`ReactorEvent::Shutdown`](crate::ReactorEvent::Shutdown) and the status says why.
    pub fn subscribe(&self) -> Subscription<W::Event> {
        // The receiver exists before a new thread can publish anything.
        let (receiver, subscribed) = self.shared.subscribe();
        if let Subscribed::Launch = subscribed
            && let Err(error) = driver::spawn(Arc::clone(&self.shared))
        {
            self.shared.launch_failed(error);
        }
        Subscription::new(receiver, Arc::clone(&self.shared) as _)
    }

    /// Queues a command for the worker and wakes the reactor thread.
    ///
    /// Commands are delivered in order. One sent while the worker restarts is delivered to the
    /// next worker. When the reactor is stopped the command is handed back in the error.
    pub fn send(&self, command: W::Command) -> Result<(), SendError<W::Command>> {
        self.shared.send(command)
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// A receiver that sees every status change, for waiting on a state.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.shared.watch_status()
    }

    /// How many times the reactor's poll has returned since the reactor was made. An idle
    /// reactor's count stands still: it sleeps in `epoll` until a source, a command or a deadline
    /// wakes it.
    pub fn wakeups(&self) -> u64 {
        self.shared.wakeups.load(Ordering::Relaxed)
    }
}
