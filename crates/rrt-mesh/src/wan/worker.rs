//! The wide-area transport's Resilient Reactor Thread: a mio worker that holds the host's
//! `wan.lock`, runs the endpoint thread while it holds it, relays commands to it, publishes its
//! events, and asks the reactor for a restart (with the reactor's backoff) when that thread
//! ends on its own — an error binding, a panic.
//!
//! ```text
//!  Rrt::send(WanCommand) ─▶ on_command ─▶ tokio channel ─▶ endpoint thread
//!  endpoint thread ─▶ Outbox: event queue + a byte on a pipe ─▶ on_ready ─▶ emit(WanEvent)
//!  endpoint thread ends ─▶ pipe closes ─▶ on_ready ─▶ Control::Restart
//!  lock held by another instance ─▶ on_deadline every 2 s tries again
//! ```
//!
//! Why two threads: iroh is async (its endpoint wants a tokio runtime), and a runtime's thread
//! sleeps in its own epoll, which a mio poll cannot wait on. So the endpoint's thread is the
//! runtime's, and this worker gives it what every other resource of rrt has — a lifecycle,
//! restarts and a command queue that survives them — at the cost of one more sleeping thread.

use std::{
    fs::File,
    io::{self, Read},
    sync::mpsc as std_mpsc,
    thread,
    time::{Duration, Instant},
};

use mio::{Interest, Registry, Token, event::Event, unix::pipe};
use rrt_reactor::{Context, Control, Worker};
use rustix::fs::{FlockOperation, flock};
use tokio::sync::mpsc;

use super::{
    WanCommand, WanConfig, WanError, WanEvent, WanStatus,
    endpoint::{self, Outbox},
};

const WAKE: Token = Token(0);
/// How often an instance without the host's lock tries it again.
const RETRY_LOCK: Duration = Duration::from_secs(2);

/// The running endpoint thread.
struct Running {
    commands: mpsc::UnboundedSender<WanCommand>,
    events: std_mpsc::Receiver<WanEvent>,
    wake: pipe::Receiver,
    thread: thread::JoinHandle<(Result<(), WanError>, mpsc::UnboundedReceiver<WanCommand>)>,
}

/// The worker. Create it with [`WanWorker::new`] inside an [`Rrt`](rrt_reactor::Rrt) factory.
pub(crate) struct WanWorker {
    config: WanConfig,
    lock: File,
    running: Option<Running>,
    retry_at: Option<Instant>,
}

impl WanWorker {
    /// Opens the host's lock; runs the endpoint if it can take it, else tries again later.
    pub(crate) fn new(registry: &Registry, config: WanConfig) -> io::Result<Self> {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&config.lock)?;
        let mut worker = Self {
            config,
            lock,
            running: None,
            retry_at: None,
        };
        worker.try_start(registry)?;
        Ok(worker)
    }

    fn try_start(&mut self, registry: &Registry) -> io::Result<()> {
        if flock(&self.lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            if self.retry_at.is_none() {
                tracing::info!(
                    "another instance of this host runs the wide-area transport; this one reaches other networks through it"
                );
            }
            self.retry_at = Some(Instant::now() + RETRY_LOCK);
            return Ok(());
        }
        self.retry_at = None;
        let (wake, mut receiver) = pipe::new()?;
        registry.register(&mut receiver, WAKE, Interest::READABLE)?;
        let (events, inbox) = std_mpsc::channel();
        let (commands, queue) = mpsc::unbounded_channel();
        let config = self.config.clone();
        let outbox = Outbox::new(events, wake);
        let thread = thread::Builder::new()
            .name("rrt-wan".to_owned())
            .spawn(move || endpoint::run(config, queue, outbox))?;
        self.running = Some(Running {
            commands,
            events: inbox,
            wake: receiver,
            thread,
        });
        Ok(())
    }

    /// The endpoint thread ended: why, for the log. Commands it was handed and never read are
    /// answered here (refused: the next generation's endpoint may differ), so none hangs.
    fn ended(&mut self) -> String {
        let Some(running) = self.running.take() else {
            return "not running".to_owned();
        };
        drop(running.commands);
        let (why, unread) = match running.thread.join() {
            Ok((Ok(()), unread)) => ("it stopped".to_owned(), Some(unread)),
            Ok((Err(error), unread)) => (error.to_string(), Some(unread)),
            Err(_) => ("it panicked".to_owned(), None),
        };
        if let Some(mut unread) = unread {
            while let Ok(command) = unread.try_recv() {
                refuse(
                    command,
                    "the wide-area endpoint stopped and is restarting; try again",
                );
            }
        }
        why
    }
}

impl Drop for WanWorker {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            // The closed channel ends the endpoint's loop, which closes the endpoint.
            drop(running.commands);
            let _ = running.thread.join();
        }
    }
}

impl Worker for WanWorker {
    type Event = WanEvent;
    type Command = WanCommand;

    fn on_ready(&mut self, _: &Event, ctx: &mut Context<'_, WanEvent>) -> Control {
        let Some(running) = &mut self.running else {
            return Control::Continue;
        };
        let mut buffer = [0; 64];
        let closed = loop {
            match running.wake.read(&mut buffer) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        while let Ok(event) = running.events.try_recv() {
            ctx.emit(event);
        }
        if closed {
            let why = self.ended();
            tracing::error!(%why, "the wide-area endpoint stopped");
            return Control::Restart;
        }
        Control::Continue
    }

    fn on_command(&mut self, command: WanCommand, _: &mut Context<'_, WanEvent>) -> Control {
        match (&self.running, command) {
            (Some(running), command) => {
                if let Err(mpsc::error::SendError(command)) = running.commands.send(command) {
                    // The thread is ending; its pipe tells on_ready, which restarts.
                    refuse(command, "the wide-area endpoint is restarting; try again");
                }
            }
            (None, command) => refuse(command, NOT_HOLDER),
        }
        Control::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        self.retry_at
    }

    fn on_deadline(&mut self, _: Instant, ctx: &mut Context<'_, WanEvent>) -> Control {
        match self.try_start(ctx.registry()) {
            Ok(()) => Control::Continue,
            Err(error) => {
                tracing::error!(%error, "could not start the wide-area endpoint");
                Control::Restart
            }
        }
    }
}

/// Why an instance without the host's lock cannot pair.
const NOT_HOLDER: &str = "this instance does not run the wide-area transport: another instance of this host does (ask it with --instance)";

/// Answers a command this instance cannot carry out now.
fn refuse(command: WanCommand, reason: &str) {
    match command {
        WanCommand::Status(reply) => {
            let _ = reply.send(WanStatus {
                running: false,
                address: None,
            });
        }
        WanCommand::Invite { events, .. } | WanCommand::Join { events, .. } => {
            let _ = events.send(super::PairingEvent::Failed {
                reason: reason.to_owned(),
            });
        }
    }
}
