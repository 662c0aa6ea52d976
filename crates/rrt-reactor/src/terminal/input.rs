//! The worker that owns a terminal's input side.

use std::{
    convert::Infallible,
    io,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use mio::{Interest, Registry, Token, event::Event as Readiness, unix::SourceFd};
use rustix::{
    fs::{OFlags, fcntl_getfl, fcntl_setfl},
    io::Errno,
    termios,
};
use signal_hook::consts::SIGWINCH;
use signal_hook_mio::v1_0::Signals;
use terminput::Event;

use super::parser::{ESCAPE_TIMEOUT, InputParser};
use crate::{
    rrt::{Config, Rrt},
    worker::{Context, Control, Worker},
};

const INPUT: Token = Token(0);
const SIGNALS: Token = Token(1);
/// One read's worth: at most this many events (a byte is at least one event's worth), so a read
/// is only made while the subscribers have room for that many.
const READ_BUFFER: usize = 512;
/// While the subscribers have no room for a read, the input is looked at again this often; it
/// waits in the terminal's buffer meanwhile (nothing typed is lost).
const RETRY_WHILE_FULL: Duration = Duration::from_millis(2);

/// Owns a terminal's input (stdin by default) and `SIGWINCH`, and publishes decoded [`Event`]s.
///
/// The descriptor is switched to non-blocking while the worker lives and restored when it is
/// dropped. End of input stops the reactor ([`Control::Stop`]); a hang-up of the terminal (`EIO`)
/// counts as end of input; any other read error restarts the worker.
///
/// Keys are never dropped: while the subscribers are too far behind to take another read's
/// worth of events ([`Context::room`]), the worker leaves the input in the terminal's buffer
/// and looks again shortly; a typist (or a program writing to the terminal) then waits, as it
/// would for any slow reader.
pub struct TerminalInput {
    fd: OwnedFd,
    original_flags: OFlags,
    signals: Signals,
    parser: InputParser,
    escape_deadline: Option<Instant>,
    /// Set while input waits for the subscribers to catch up: when to look again.
    resume_at: Option<Instant>,
    buffer: Box<[u8]>,
}

impl std::fmt::Debug for TerminalInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalInput")
            .field("fd", &self.fd)
            .field("parser", &self.parser)
            .field("escape_deadline", &self.escape_deadline)
            .finish_non_exhaustive()
    }
}

impl TerminalInput {
    /// A reactor reading this process's stdin. No thread runs until it is subscribed to.
    pub fn reactor() -> Rrt<Self> {
        let config = Config {
            thread_name: "rrt-terminal-input".to_owned(),
            // Room for several reads while the subscriber is busy drawing.
            capacity: 8 * READ_BUFFER,
            ..Config::default()
        };
        Rrt::with_config(Self::stdin, config)
    }

    /// A worker reading stdin (through a duplicate of its descriptor).
    pub fn stdin(registry: &Registry) -> io::Result<Self> {
        Self::new(registry, io::stdin().as_fd().try_clone_to_owned()?)
    }

    /// A worker reading `fd` (a terminal, a pseudo-terminal, or a pipe) and registering it on
    /// `registry`.
    pub fn new(registry: &Registry, fd: OwnedFd) -> io::Result<Self> {
        let signals = Signals::new([SIGWINCH])?;
        let original_flags = fcntl_getfl(&fd)?;
        fcntl_setfl(&fd, original_flags | OFlags::NONBLOCK)?;
        // From here on, dropping `worker` restores the flags, whatever fails next.
        let mut worker = Self {
            fd,
            original_flags,
            signals,
            parser: InputParser::default(),
            escape_deadline: None,
            resume_at: None,
            buffer: vec![0; READ_BUFFER].into_boxed_slice(),
        };
        let raw_fd = worker.fd.as_raw_fd();
        registry.register(&mut SourceFd(&raw_fd), INPUT, Interest::READABLE)?;
        registry.register(&mut worker.signals, SIGNALS, Interest::READABLE)?;
        Ok(worker)
    }

    fn read_input(&mut self, ctx: &Context<'_, Event>) -> Control {
        self.resume_at = None;
        let control = loop {
            if ctx.room() < READ_BUFFER {
                self.resume_at = Some(Instant::now() + RETRY_WHILE_FULL);
                break Control::Continue;
            }
            match rustix::io::read(&self.fd, &mut self.buffer[..]) {
                Ok(0) => break Control::Stop,
                Ok(read) => {
                    self.parser.feed(&self.buffer[..read]);
                    self.publish(ctx);
                }
                Err(Errno::AGAIN) => break Control::Continue,
                Err(Errno::INTR) => continue,
                // A pseudo-terminal whose other side closed reads as EIO: the terminal is gone.
                Err(Errno::IO) => break Control::Stop,
                Err(error) => {
                    tracing::warn!(%error, "reading terminal input failed");
                    break Control::Restart;
                }
            }
        };
        self.publish(ctx);
        self.escape_deadline = self
            .parser
            .is_awaiting_timeout()
            .then(|| Instant::now() + ESCAPE_TIMEOUT);
        control
    }

    fn publish(&mut self, ctx: &Context<'_, Event>) {
        while let Some(event) = self.parser.next_event() {
            ctx.emit(event);
        }
    }

    fn read_signals(&mut self, ctx: &Context<'_, Event>) {
        let resized = self.signals.pending().any(|signal| signal == SIGWINCH);
        if !resized {
            return;
        }
        match termios::tcgetwinsize(&self.fd) {
            Ok(size) => ctx.emit(Event::Resize {
                rows: size.ws_row.into(),
                cols: size.ws_col.into(),
            }),
            // Input that is not a terminal (a pipe) has no size to report.
            Err(error) => tracing::debug!(%error, "SIGWINCH, but the input has no window size"),
        }
    }
}

impl Worker for TerminalInput {
    type Event = Event;
    type Command = Infallible;

    fn on_ready(&mut self, readiness: &Readiness, ctx: &mut Context<'_, Event>) -> Control {
        match readiness.token() {
            INPUT => self.read_input(ctx),
            SIGNALS => {
                self.read_signals(ctx);
                Control::Continue
            }
            _ => Control::Continue,
        }
    }

    fn on_command(&mut self, command: Infallible, _: &mut Context<'_, Event>) -> Control {
        match command {}
    }

    fn deadline(&self) -> Option<Instant> {
        match (self.escape_deadline, self.resume_at) {
            (Some(escape), Some(resume)) => Some(escape.min(resume)),
            (escape, resume) => escape.or(resume),
        }
    }

    fn on_deadline(&mut self, now: Instant, ctx: &mut Context<'_, Event>) -> Control {
        if self.resume_at.is_some_and(|at| at <= now) {
            // Reading may complete an escape sequence, so it comes before the flush below.
            return self.read_input(ctx);
        }
        self.escape_deadline = None;
        self.parser.flush();
        self.publish(ctx);
        Control::Continue
    }
}

impl Drop for TerminalInput {
    fn drop(&mut self) {
        if let Err(error) = fcntl_setfl(&self.fd, self.original_flags) {
            tracing::warn!(%error, "could not restore the input's blocking mode");
        }
    }
}
