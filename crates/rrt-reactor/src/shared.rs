//! The state shared by an [`Rrt`](crate::Rrt) handle, its subscriptions and its thread.
//!
//! One mutex guards everything that must change together — the state, the subscriber count, the
//! current waker and the command queue — so "the last subscriber left" and "a new one arrived",
//! or "the thread stopped" and "a command was queued", can never interleave badly. The worker runs
//! outside the lock; the lock is held only for a few field updates.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use mio::{Registry, Waker};
use tokio::sync::{broadcast, watch};

use crate::{
    error::{BoxError, ReactorError, SendError},
    event::{ReactorEvent, ShutdownReason},
    policy::RestartPolicy,
    status::{State, Status},
    worker::Worker,
};

/// Creates a worker on the reactor thread.
pub(crate) type Factory<W> = Box<dyn Fn(&Registry) -> Result<W, BoxError> + Send + Sync>;

pub(crate) struct Shared<W: Worker> {
    pub(crate) factory: Factory<W>,
    pub(crate) policy: RestartPolicy,
    pub(crate) thread_name: String,
    pub(crate) events: broadcast::Sender<ReactorEvent<W::Event>>,
    /// How many events `events` keeps for a subscriber that has not read them.
    pub(crate) capacity: usize,
    /// Set (and the waker woken) when the last subscriber leaves; the driver confirms under the
    /// lock before it exits, since a new subscriber may have arrived meanwhile.
    stop_requested: AtomicBool,
    /// Returns of `Poll::poll`, for proving that an idle reactor does not wake up.
    pub(crate) wakeups: AtomicU64,
    lifecycle: Mutex<Lifecycle<W::Command>>,
    status: watch::Sender<Status>,
}

struct Lifecycle<C> {
    state: State,
    generation: u64,
    restarts: u32,
    subscribers: usize,
    last_error: Option<ReactorError>,
    waker: Option<Arc<Waker>>,
    commands: VecDeque<C>,
}

/// What [`Shared::subscribe`] asks the caller to do.
pub(crate) enum Subscribed {
    /// A thread runs (or is about to exit and will relaunch itself).
    Joined,
    /// The reactor was stopped: launch a thread for this new generation.
    Launch,
}

/// What the thread does after its driver returned.
pub(crate) enum AfterExit {
    /// Subscribers arrived while the last generation was winding down: run again.
    Relaunch,
    /// The reactor is stopped; end the thread.
    End,
}

impl<W: Worker> Shared<W> {
    pub(crate) fn new(
        factory: Factory<W>,
        policy: RestartPolicy,
        thread_name: String,
        capacity: usize,
    ) -> Self {
        let lifecycle = Lifecycle {
            state: State::Stopped,
            generation: 0,
            restarts: 0,
            subscribers: 0,
            last_error: None,
            waker: None,
            commands: VecDeque::new(),
        };
        let (status, _) = watch::channel(lifecycle.snapshot());
        Self {
            factory,
            policy,
            thread_name,
            events: broadcast::channel(capacity).0,
            capacity,
            stop_requested: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
            lifecycle: Mutex::new(lifecycle),
            status,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lifecycle<W::Command>> {
        // Workers never run under this lock, so a poisoned lock only means a panic between two
        // field updates of ours; the fields are still each valid.
        self.lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, lifecycle: &Lifecycle<W::Command>) {
        self.status.send_replace(lifecycle.snapshot());
    }

    pub(crate) fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    pub(crate) fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// A new subscriber: its receiver, and whether a thread must be launched. The receiver is
    /// made under the lock the thread publishes its lifecycle events under, so a subscriber never
    /// sees the end of a generation it did not belong to.
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<ReactorEvent<W::Event>>, Subscribed) {
        let mut lifecycle = self.lock();
        let receiver = self.events.subscribe();
        lifecycle.subscribers += 1;
        self.stop_requested.store(false, Ordering::SeqCst);
        let launch = lifecycle.state == State::Stopped;
        if launch {
            lifecycle.begin_generation();
        }
        self.publish(&lifecycle);
        let subscribed = if launch {
            Subscribed::Launch
        } else {
            Subscribed::Joined
        };
        (receiver, subscribed)
    }

    /// A thread could not be spawned for the generation [`Shared::subscribe`] began.
    pub(crate) fn launch_failed(&self, error: std::io::Error) {
        let mut lifecycle = self.lock();
        let error = ReactorError::Setup(Arc::new(error));
        self.stop(&mut lifecycle, ShutdownReason::Failed(error));
    }

    pub(crate) fn unsubscribe(&self) {
        let mut lifecycle = self.lock();
        lifecycle.subscribers = lifecycle.subscribers.saturating_sub(1);
        if lifecycle.subscribers == 0 && lifecycle.state != State::Stopped {
            self.stop_requested.store(true, Ordering::SeqCst);
            lifecycle.wake();
        }
        self.publish(&lifecycle);
    }

    /// Whether the driver should wind down because nobody listens any more.
    pub(crate) fn should_exit(&self) -> bool {
        if !self.stop_requested.load(Ordering::SeqCst) {
            return false;
        }
        let lifecycle = self.lock();
        if lifecycle.subscribers > 0 {
            self.stop_requested.store(false, Ordering::SeqCst);
        }
        lifecycle.subscribers == 0
    }

    pub(crate) fn send(&self, command: W::Command) -> Result<(), SendError<W::Command>> {
        let mut lifecycle = self.lock();
        if lifecycle.state == State::Stopped {
            return Err(SendError(command));
        }
        lifecycle.commands.push_back(command);
        lifecycle.wake();
        Ok(())
    }

    pub(crate) fn pop_command(&self) -> Option<W::Command> {
        self.lock().commands.pop_front()
    }

    /// The driver made a new poll: commands from now on wake it.
    pub(crate) fn install_waker(&self, waker: Arc<Waker>) {
        self.lock().waker = Some(waker);
    }

    pub(crate) fn set_running(&self) {
        let mut lifecycle = self.lock();
        lifecycle.state = State::Running;
        self.publish(&lifecycle);
        let started = ReactorEvent::Started {
            generation: lifecycle.generation,
            restarts: lifecycle.restarts,
        };
        let _ = self.events.send(started);
    }

    pub(crate) fn set_restarting(&self, event: ReactorEvent<W::Event>) {
        let mut lifecycle = self.lock();
        lifecycle.state = State::Restarting;
        lifecycle.restarts += 1;
        self.publish(&lifecycle);
        let _ = self.events.send(event);
    }

    /// The driver returned: either relaunch (subscribers came back while it wound down) or stop.
    pub(crate) fn exited(&self, reason: ShutdownReason) -> AfterExit {
        let mut lifecycle = self.lock();
        lifecycle.waker = None;
        if matches!(reason, ShutdownReason::NoSubscribers) && lifecycle.subscribers > 0 {
            self.stop_requested.store(false, Ordering::SeqCst);
            lifecycle.begin_generation();
            self.publish(&lifecycle);
            return AfterExit::Relaunch;
        }
        self.stop(&mut lifecycle, reason);
        AfterExit::End
    }

    fn stop(&self, lifecycle: &mut Lifecycle<W::Command>, reason: ShutdownReason) {
        lifecycle.state = State::Stopped;
        lifecycle.waker = None;
        if let ShutdownReason::Failed(error) = &reason {
            lifecycle.last_error = Some(error.clone());
        }
        self.publish(lifecycle);
        let _ = self.events.send(ReactorEvent::Shutdown(reason));
    }
}

impl<C> Lifecycle<C> {
    fn snapshot(&self) -> Status {
        Status {
            state: self.state,
            generation: self.generation,
            restarts: self.restarts,
            subscribers: self.subscribers,
            last_error: self.last_error.clone(),
        }
    }

    fn begin_generation(&mut self) {
        self.state = State::Starting;
        self.generation += 1;
        self.restarts = 0;
        self.last_error = None;
    }

    fn wake(&self) {
        if let Some(waker) = &self.waker
            && let Err(error) = waker.wake()
        {
            // An eventfd write only fails when its counter is saturated, i.e. already woken.
            tracing::debug!(%error, "waking the reactor failed");
        }
    }
}
