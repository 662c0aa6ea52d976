//! The reactor thread: creates workers, polls, dispatches, restarts, and reports how it ended.
//!
//! ```text
//! thread ── generation ──┬─ new Poll + Waker ── (backoff sleep) ── factory ── drive ─┐
//!   ▲                    └───────────────◀── Restart (attempt += 1) ◀────────────────┘
//!   └── relaunch if subscribers came back while it wound down; otherwise Stopped
//! ```
//!
//! Every attempt gets a fresh `Poll`: a restart after a poll error must not reuse a broken one,
//! and dropping the old worker before the new one is created guarantees no two workers ever hold
//! the same resource.

use std::{
    any::Any,
    io,
    panic::{self, AssertUnwindSafe},
    sync::{Arc, atomic::Ordering},
    thread,
    time::Instant,
};

use mio::{Events, Poll, Registry, Waker};

use crate::{
    error::{BoxError, ReactorError, RestartCause},
    event::{ReactorEvent, ShutdownReason},
    shared::{AfterExit, Shared},
    worker::{Context, Control, WAKE_TOKEN, Worker},
};

/// How many readiness events one `poll` returns at most.
const EVENTS_CAPACITY: usize = 256;

pub(crate) fn spawn<W: Worker>(shared: Arc<Shared<W>>) -> io::Result<()> {
    let name = shared.thread_name.clone();
    thread::Builder::new()
        .name(name)
        .spawn(move || run_thread(&shared))
        .map(drop)
}

fn run_thread<W: Worker>(shared: &Shared<W>) {
    loop {
        let reason = panic::catch_unwind(AssertUnwindSafe(|| run_generation(shared)))
            .unwrap_or_else(|payload| {
                ShutdownReason::Failed(ReactorError::Panicked(panic_message(&*payload)))
            });
        match &reason {
            ShutdownReason::Failed(error) => {
                tracing::error!(reactor = %shared.thread_name, %error, "reactor stopped")
            }
            reason => tracing::debug!(reactor = %shared.thread_name, ?reason, "reactor stopped"),
        }
        match shared.exited(reason) {
            AfterExit::Relaunch => continue,
            AfterExit::End => return,
        }
    }
}

/// Runs workers until one stops, nobody listens any more, or the restart budget is spent.
fn run_generation<W: Worker>(shared: &Shared<W>) -> ShutdownReason {
    let mut attempt = 0;
    let mut cause: Option<RestartCause> = None;
    loop {
        let (mut poll, registry) = match new_poll(shared) {
            Ok(poll) => poll,
            Err(error) => return ShutdownReason::Failed(ReactorError::Setup(Arc::new(error))),
        };
        let restarting = cause.is_some();
        if let Some(cause) = cause.take() {
            let Some(delay) = shared.policy.delay(attempt) else {
                let attempts = attempt - 1;
                return ShutdownReason::Failed(ReactorError::RestartBudgetExhausted {
                    attempts,
                    last: cause,
                });
            };
            tracing::warn!(reactor = %shared.thread_name, %cause, attempt, ?delay, "restarting worker");
            shared.set_restarting(ReactorEvent::Restarting {
                attempt,
                delay,
                cause,
            });
            if !sleep(&mut poll, delay, shared) {
                return ShutdownReason::NoSubscribers;
            }
        }
        let worker = match create(shared, &registry) {
            Ok(worker) => worker,
            Err(failure) if !restarting => return ShutdownReason::Failed(failure.into_error()),
            Err(failure) => {
                attempt += 1;
                cause = Some(failure.into_cause());
                continue;
            }
        };
        shared.set_running();
        let started = Instant::now();
        match drive(worker, &mut poll, &registry, shared) {
            Outcome::Stop => return ShutdownReason::Stopped,
            Outcome::Idle => return ShutdownReason::NoSubscribers,
            Outcome::Restart(why) => {
                if shared.policy.was_healthy(started.elapsed()) {
                    attempt = 0;
                }
                attempt += 1;
                cause = Some(why);
            }
        }
    }
}

/// A poll, a second handle on its registry for the worker, and the waker installed for senders.
fn new_poll<W: Worker>(shared: &Shared<W>) -> io::Result<(Poll, Registry)> {
    let poll = Poll::new()?;
    let registry = poll.registry().try_clone()?;
    let waker = Waker::new(&registry, WAKE_TOKEN)?;
    shared.install_waker(Arc::new(waker));
    Ok((poll, registry))
}

/// Waits out a backoff delay; `false` when the last subscriber left meanwhile.
fn sleep<W: Worker>(poll: &mut Poll, delay: std::time::Duration, shared: &Shared<W>) -> bool {
    let deadline = Instant::now() + delay;
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    loop {
        if shared.should_exit() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        // A failing poll here only shortens the backoff; the next attempt makes a new one.
        if let Err(error) = poll.poll(&mut events, Some(deadline - now))
            && error.kind() != io::ErrorKind::Interrupted
        {
            return true;
        }
    }
}

enum CreateFailure {
    Error(BoxError),
    Panic(String),
}

impl CreateFailure {
    fn into_error(self) -> ReactorError {
        match self {
            Self::Error(error) => ReactorError::Create(Arc::from(error)),
            Self::Panic(message) => ReactorError::CreatePanicked(message),
        }
    }

    fn into_cause(self) -> RestartCause {
        match self {
            Self::Error(error) => RestartCause::CreateFailed(Arc::from(error)),
            Self::Panic(message) => RestartCause::CreatePanicked(message),
        }
    }
}

fn create<W: Worker>(shared: &Shared<W>, registry: &Registry) -> Result<W, CreateFailure> {
    match panic::catch_unwind(AssertUnwindSafe(|| (shared.factory)(registry))) {
        Ok(Ok(worker)) => Ok(worker),
        Ok(Err(error)) => Err(CreateFailure::Error(error)),
        Err(payload) => Err(CreateFailure::Panic(panic_message(&*payload))),
    }
}

enum Outcome {
    Stop,
    Idle,
    Restart(RestartCause),
}

impl Outcome {
    fn of(control: Control) -> Option<Self> {
        match control {
            Control::Continue => None,
            Control::Stop => Some(Self::Stop),
            Control::Restart => Some(Self::Restart(RestartCause::Requested)),
        }
    }
}

/// Polls and dispatches until the worker or the subscribers end this run. Drops the worker.
fn drive<W: Worker>(
    mut worker: W,
    poll: &mut Poll,
    registry: &Registry,
    shared: &Shared<W>,
) -> Outcome {
    let mut ctx = Context::new(registry, &shared.events, shared.capacity);
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    // Commands may have queued while the worker was (re)created.
    let mut commands_pending = true;
    loop {
        if shared.should_exit() {
            return Outcome::Idle;
        }
        if commands_pending {
            commands_pending = false;
            while let Some(command) = shared.pop_command() {
                if let Some(outcome) = Outcome::of(worker.on_command(command, &mut ctx)) {
                    return outcome;
                }
            }
        }
        let timeout = worker
            .deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if let Err(error) = poll.poll(&mut events, timeout) {
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Outcome::Restart(RestartCause::PollFailed(Arc::new(error)));
        }
        shared.wakeups.fetch_add(1, Ordering::Relaxed);
        for event in events.iter() {
            if event.token() == WAKE_TOKEN {
                commands_pending = true;
            } else if let Some(outcome) = Outcome::of(worker.on_ready(event, &mut ctx)) {
                return outcome;
            }
        }
        let now = Instant::now();
        if worker.deadline().is_some_and(|deadline| now >= deadline)
            && let Some(outcome) = Outcome::of(worker.on_deadline(now, &mut ctx))
        {
            return outcome;
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
