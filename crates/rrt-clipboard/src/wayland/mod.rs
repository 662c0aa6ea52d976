//! The Wayland clipboard, owned by a reactor thread, through the wlr data-control protocol (sway,
//! Hyprland, KDE and other wlroots compositors): a clipboard manager's view, so it needs no
//! window and no focus.
//!
//! * **Change events**: the compositor announces every new selection with its MIME types; the
//!   worker [chooses](offer::choose) the types worth reading (see [`crate::read`]) and reads them
//!   one after the other, each through a pipe it registers in its own poll, so a slow or stuck
//!   source never blocks it; each is capped at [`ReadLimits::max_bytes`].
//! * **Setting** ([`ClipboardCommand::Set`]) creates a data source offering every type (text also
//!   under its other names, and a private type by which the worker recognises its own selection
//!   when it is announced back) and writes each paste to the requester's pipe, non-blocking, as
//!   the pipe drains — from memory, or from a file a chunk at a time. A
//!   [`Source::Later`] paste keeps its pipe open while the worker asks for the bytes
//!   ([`ClipboardEvent::Wanted`]); a pipe closed with nothing in it is the only refusal
//!   Wayland has.
//! * **Secrets stay**: a selection offering `x-kde-passwordManagerHint` is never read.
//! * A lost connection or a finished data device ends the worker with [`Control::Restart`]; a
//!   failed pipe ends only its transfer.
//!
//! The wayland-client event queue is dispatched into a [`Protocol`], which only records what
//! happened; the worker then acts on it with the poll registry and the event channel at hand.

mod offer;
mod protocol;

use std::{
    collections::HashMap,
    io::{self, ErrorKind},
    os::fd::{AsFd, AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use mio::{Interest, Registry, Token, event::Event, unix::SourceFd};
use rrt_reactor::{Context, Control, Worker};
use rustix::{
    fs::{OFlags, fcntl_getfl, fcntl_setfl},
    pipe::{PipeFlags, pipe_with},
};
use wayland_client::{
    Connection, EventQueue, Proxy, backend::WaylandError, globals::registry_queue_init,
    protocol::wl_seat::WlSeat,
};
use wayland_protocols_wlr::data_control::v1::client::{
    zwlr_data_control_device_v1::ZwlrDataControlDeviceV1,
    zwlr_data_control_manager_v1::ZwlrDataControlManagerV1,
    zwlr_data_control_offer_v1::ZwlrDataControlOfferV1,
    zwlr_data_control_source_v1::ZwlrDataControlSourceV1,
};

use self::{
    offer::{Choice, answering, choose, offered_types},
    protocol::Protocol,
};
use crate::{
    ClipboardCommand, ClipboardEvent, Offer, ReadLimits, Source,
    later::{Asked, Later},
    read::{Collector, fingerprint, fingerprint_of_offers},
    source::{Body, usable},
};

const WAYLAND: Token = Token(0);
/// How long a transfer through a pipe may go without progress before it is given up on.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes moved through a pipe at once (and a file's buffer while it is pasted).
const CHUNK: usize = 64 * 1024;
/// The most pastes written at once; more are refused.
const MAX_WRITINGS: usize = 32;

/// Why the Wayland clipboard could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum WaylandClipboardError {
    /// No compositor at `$WAYLAND_DISPLAY`.
    #[error("cannot connect to the Wayland compositor (is WAYLAND_DISPLAY set?): {0}")]
    Connect(#[from] wayland_client::ConnectError),
    /// The compositor does not offer the data-control protocol (GNOME's Mutter does not).
    #[error(
        "the compositor has no wlr data-control protocol (zwlr_data_control_manager_v1); \
         under XWayland use --system-clipboard x11"
    )]
    NoDataControl,
    /// The compositor has no seat.
    #[error("the compositor offers no seat")]
    NoSeat,
    /// The connection failed while setting up.
    #[error("the Wayland connection failed: {0}")]
    Connection(String),
}

/// A selection being read, one type at a time.
struct Reading {
    offer: ZwlrDataControlOfferV1,
    collector: Collector,
    /// The pipe of the type being read.
    pipe: Option<(Token, OwnedFd)>,
    /// A source that stops sending is given up on.
    until: Instant,
}

/// A paste being written to another program's pipe.
struct Writing {
    pipe: OwnedFd,
    body: Body,
    /// A reader that stops reading is given up on.
    until: Instant,
}

/// The Wayland clipboard worker; run it in an [`Rrt`](rrt_reactor::Rrt).
pub struct WaylandClipboard {
    conn: Connection,
    queue: EventQueue<Protocol>,
    protocol: Protocol,
    manager: ZwlrDataControlManagerV1,
    device: ZwlrDataControlDeviceV1,
    /// The source serving our value, and what it offers.
    source: Option<(ZwlrDataControlSourceV1, Vec<Offer>)>,
    /// Pastes of [`Source::Later`] types waiting for the mesh, by pipe.
    later: Later<OwnedFd>,
    reading: Option<Reading>,
    writings: HashMap<Token, Writing>,
    next_token: usize,
    limits: ReadLimits,
    /// A fingerprint of the value read or set last, so the same value again is not news.
    last: Option<u64>,
}

impl std::fmt::Debug for WaylandClipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaylandClipboard")
            .field("owns", &self.source.is_some())
            .field("reading", &self.reading.is_some())
            .field("writing", &self.writings.len())
            .finish_non_exhaustive()
    }
}

impl WaylandClipboard {
    /// Connects to `$WAYLAND_DISPLAY` and follows the seat's clipboard; what someone copies is
    /// read within `limits`.
    pub fn new(registry: &Registry, limits: ReadLimits) -> Result<Self, WaylandClipboardError> {
        let conn = Connection::connect_to_env()?;
        let failed =
            |error: &dyn std::fmt::Display| WaylandClipboardError::Connection(error.to_string());
        let (globals, mut queue) =
            registry_queue_init::<Protocol>(&conn).map_err(|error| failed(&error))?;
        let handle = queue.handle();
        let manager: ZwlrDataControlManagerV1 = globals
            .bind(&handle, 1..=2, ())
            .map_err(|_| WaylandClipboardError::NoDataControl)?;
        let seat: WlSeat = globals
            .bind(&handle, 1..=8, ())
            .map_err(|_| WaylandClipboardError::NoSeat)?;
        let device = manager.get_data_device(&seat, &handle, ());
        let mut protocol = Protocol::default();
        queue
            .roundtrip(&mut protocol)
            .map_err(|error| failed(&error))?;
        // The selection at start-up is not news: only changes from now on are shared.
        protocol.selection = None;
        let fd = conn.backend().poll_fd().as_raw_fd();
        registry
            .register(&mut SourceFd(&fd), WAYLAND, Interest::READABLE)
            .map_err(|error| failed(&error))?;
        tracing::debug!("bound the wlr data-control device");
        Ok(Self {
            conn,
            queue,
            protocol,
            manager,
            device,
            source: None,
            later: Later::default(),
            reading: None,
            writings: HashMap::new(),
            next_token: 1,
            limits,
            last: None,
        })
    }

    /// Reads and dispatches whatever the compositor sent, then acts on it.
    fn pump(&mut self, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        loop {
            if let Err(error) = self.queue.dispatch_pending(&mut self.protocol) {
                tracing::warn!(%error, "the Wayland connection failed; reconnecting");
                return Control::Restart;
            }
            self.act(ctx);
            if self.protocol.finished {
                tracing::warn!("the Wayland data device is gone; reconnecting");
                return Control::Restart;
            }
            match self.conn.flush() {
                Ok(()) => {}
                Err(WaylandError::Io(error)) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) => {
                    tracing::warn!(%error, "the Wayland connection failed; reconnecting");
                    return Control::Restart;
                }
            }
            let Some(guard) = self.queue.prepare_read() else {
                continue;
            };
            match guard.read() {
                Ok(_) => {}
                Err(WaylandError::Io(error)) if error.kind() == ErrorKind::WouldBlock => {
                    return Control::Continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "the Wayland connection failed; reconnecting");
                    return Control::Restart;
                }
            }
        }
    }

    /// Acts on what the last dispatch recorded.
    fn act(&mut self, ctx: &mut Context<'_, ClipboardEvent>) {
        let now = Instant::now();
        for (from, mime, pipe) in std::mem::take(&mut self.protocol.sends) {
            // A paste from a source we replaced gets nothing (the pipe closes empty). Pastes are
            // served before cancellations of the same batch, which came after them.
            let Some(offer) = self
                .source
                .as_ref()
                .filter(|(source, _)| source.id() == from)
                .and_then(|(_, offers)| answering(offers, &mime))
                .cloned()
            else {
                continue;
            };
            match offer.source {
                Source::Later => match self.later.ask(&offer.mime, pipe, now) {
                    Asked::Publish(request) => ctx.emit(ClipboardEvent::Wanted {
                        request,
                        mime: offer.mime,
                    }),
                    Asked::Serve(pipe, source) => self.write(pipe, &source, ctx.registry()),
                    Asked::Wait | Asked::Refuse(_) => {}
                },
                source => self.write(pipe, &source, ctx.registry()),
            }
        }
        for cancelled in std::mem::take(&mut self.protocol.cancelled) {
            if self
                .source
                .as_ref()
                .is_some_and(|(source, _)| source.id() == cancelled)
                && let Some((source, _)) = self.source.take()
            {
                source.destroy();
                // Another program owns the clipboard: pastes waiting for our value end empty.
                self.later.clear();
            }
        }
        let Some(selection) = self.protocol.selection.take() else {
            return;
        };
        // A read still in progress is of an older value: it must not land after this one.
        self.stop_reading(ctx.registry());
        let Some((offer, types)) = selection.and_then(|id| self.protocol.offers.get(&id)) else {
            return;
        };
        match choose(types) {
            Choice::Read(plan) => {
                self.reading = Some(Reading {
                    offer: offer.clone(),
                    collector: Collector::new(plan, self.limits.max_bytes),
                    pipe: None,
                    until: now + TRANSFER_TIMEOUT,
                });
                self.read_next(ctx);
            }
            Choice::Secret => {
                tracing::info!("a password manager's secret is on the clipboard; not shared");
            }
            Choice::Ours => {}
            Choice::Nothing => tracing::debug!("the clipboard holds nothing rrt shares"),
        }
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    /// Asks for the next type of the selection being read, or reports what was read once every
    /// type had its turn.
    fn read_next(&mut self, ctx: &mut Context<'_, ClipboardEvent>) {
        let token = self.token();
        let Some(reading) = self.reading.as_mut() else {
            return;
        };
        while let Some(want) = reading.collector.begin_next() {
            match receive(
                &self.conn,
                &reading.offer,
                &want.offered,
                ctx.registry(),
                token,
            ) {
                Ok(pipe) => {
                    reading.pipe = Some((token, pipe));
                    reading.until = Instant::now() + TRANSFER_TIMEOUT;
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "could not set up a clipboard read");
                    reading.collector.skip();
                }
            }
        }
        if let Some(mut reading) = self.reading.take() {
            self.report(reading.collector.take_read(), ctx);
        }
    }

    fn report(&mut self, read: Vec<crate::Representation>, ctx: &mut Context<'_, ClipboardEvent>) {
        if read.is_empty() {
            tracing::debug!("the clipboard holds nothing rrt shares");
            return;
        }
        let print = fingerprint(read.iter().map(|r| (r.mime.as_str(), &r.data[..])));
        if self.last != Some(print) {
            self.last = Some(print);
            // The protocol does not say which client offers: by design.
            ctx.emit(ClipboardEvent::Copied {
                representations: read,
                application: None,
            });
        }
    }

    /// Drops the read in progress, if any.
    fn stop_reading(&mut self, registry: &Registry) {
        if let Some(Reading {
            pipe: Some((_, pipe)),
            ..
        }) = self.reading.take()
        {
            let _ = registry.deregister(&mut SourceFd(&pipe.as_raw_fd()));
        }
    }

    fn on_pipe_readable(&mut self, ctx: &mut Context<'_, ClipboardEvent>) {
        let Some(reading) = self.reading.as_mut() else {
            return;
        };
        let Some((_, pipe)) = &reading.pipe else {
            return;
        };
        let mut chunk = vec![0; CHUNK];
        let ended = loop {
            match rustix::io::read(pipe, &mut chunk) {
                Ok(0) => {
                    reading.collector.complete();
                    break true;
                }
                Ok(read) => {
                    reading.until = Instant::now() + TRANSFER_TIMEOUT;
                    if !reading.collector.take(&chunk[..read]) {
                        break true;
                    }
                }
                Err(rustix::io::Errno::AGAIN) => break false,
                Err(rustix::io::Errno::INTR) => {}
                Err(error) => {
                    tracing::warn!(%error, "reading the clipboard failed");
                    reading.collector.skip();
                    break true;
                }
            }
        };
        if ended {
            if let Some((_, pipe)) = reading.pipe.take() {
                let _ = ctx.registry().deregister(&mut SourceFd(&pipe.as_raw_fd()));
            }
            self.read_next(ctx);
        }
    }

    /// Starts writing `source` to a paste's pipe (closing it at once when that cannot be).
    fn write(&mut self, pipe: OwnedFd, source: &Source, registry: &Registry) {
        if self.writings.len() >= MAX_WRITINGS {
            tracing::warn!("too many pastes under way at once; refused");
            return;
        }
        let body = match Body::open(source, CHUNK) {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, ?source, "cannot read a value to paste; refused");
                return;
            }
        };
        if let Err(error) = set_nonblocking(&pipe) {
            tracing::warn!(%error, "cannot write to a paste's pipe");
            return;
        }
        let mut writing = Writing {
            pipe,
            body,
            until: Instant::now() + TRANSFER_TIMEOUT,
        };
        if write_some(&mut writing) {
            return;
        }
        let token = self.token();
        let registered = registry.register(
            &mut SourceFd(&writing.pipe.as_raw_fd()),
            token,
            Interest::WRITABLE,
        );
        match registered {
            Ok(()) => {
                self.writings.insert(token, writing);
            }
            Err(error) => tracing::warn!(%error, "cannot follow a paste's pipe"),
        }
    }

    fn on_pipe_writable(&mut self, token: Token, registry: &Registry) {
        let Some(writing) = self.writings.get_mut(&token) else {
            return;
        };
        if write_some(writing)
            && let Some(writing) = self.writings.remove(&token)
        {
            let _ = registry.deregister(&mut SourceFd(&writing.pipe.as_raw_fd()));
        }
    }

    fn set(&mut self, offers: Vec<Offer>, ctx: &mut Context<'_, ClipboardEvent>) {
        // A read in flight is of a value older than this one; pastes waiting for the previous
        // value end empty.
        self.stop_reading(ctx.registry());
        self.later.clear();
        let offers = usable(offers);
        let source = self.manager.create_data_source(&self.queue.handle(), ());
        for mime in offered_types(&offers) {
            source.offer(mime.to_owned());
        }
        self.device.set_selection(Some(&source));
        self.last = Some(fingerprint_of_offers(&offers));
        if let Some((old, _)) = self.source.replace((source, offers)) {
            old.destroy();
        }
    }

    fn provide(&mut self, request: u64, source: Option<Source>, registry: &Registry) {
        let Some((pipes, source)) = self.later.provide(request, source) else {
            tracing::debug!(request, "an answer to a request no paste waits for");
            return;
        };
        if let Some(source) = source {
            for pipe in pipes {
                self.write(pipe, &source, registry);
            }
        }
    }
}

/// Asks `offer`'s owner for `mime` through a new pipe, whose read end is registered as `token`.
fn receive(
    conn: &Connection,
    offer: &ZwlrDataControlOfferV1,
    mime: &str,
    registry: &Registry,
    token: Token,
) -> io::Result<OwnedFd> {
    let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    offer.receive(mime.to_owned(), write.as_fd());
    // Our end of the write side closes once the request has gone out.
    let _ = conn.flush();
    drop(write);
    registry.register(&mut SourceFd(&read.as_raw_fd()), token, Interest::READABLE)?;
    Ok(read)
}

/// Writes what the pipe takes; true once the transfer is over (all written, the reader left, or
/// the source failed).
fn write_some(writing: &mut Writing) -> bool {
    loop {
        let bytes = match writing.body.peek(CHUNK) {
            Ok([]) => return true,
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, "reading a value being pasted failed");
                return true;
            }
        };
        match rustix::io::write(&writing.pipe, bytes) {
            Ok(written) => {
                writing.body.consume(written);
                writing.until = Instant::now() + TRANSFER_TIMEOUT;
            }
            Err(rustix::io::Errno::AGAIN) => return false,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return true,
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = fcntl_getfl(fd)?;
    fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
    Ok(())
}

impl Worker for WaylandClipboard {
    type Event = ClipboardEvent;
    type Command = ClipboardCommand;

    fn deadline(&self) -> Option<Instant> {
        let reading = self.reading.as_ref().map(|reading| reading.until);
        let writings = self.writings.values().map(|writing| writing.until);
        reading
            .into_iter()
            .chain(writings)
            .chain(self.later.deadline())
            .min()
    }

    fn on_deadline(&mut self, now: Instant, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        if self
            .reading
            .as_ref()
            .is_some_and(|reading| reading.until <= now)
            && let Some(mut reading) = self.reading.take()
        {
            // The source stopped sending: what it sent of the other types is still shared.
            tracing::debug!("a clipboard source did not finish sending; given up");
            if let Some((_, pipe)) = reading.pipe.take() {
                let _ = ctx.registry().deregister(&mut SourceFd(&pipe.as_raw_fd()));
            }
            reading.collector.skip();
            self.report(reading.collector.take_read(), ctx);
        }
        let registry = ctx.registry();
        self.writings.retain(|_, writing| {
            let alive = writing.until > now;
            if !alive {
                tracing::debug!("a program did not read what it pasted; given up");
                let _ = registry.deregister(&mut SourceFd(&writing.pipe.as_raw_fd()));
            }
            alive
        });
        for (mime, _pipes) in self.later.expire(now) {
            tracing::warn!(
                mime,
                "the mesh did not provide a pasted value in time; the paste is refused"
            );
        }
        Control::Continue
    }

    fn on_ready(&mut self, event: &Event, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        match event.token() {
            WAYLAND => self.pump(ctx),
            token
                if self
                    .reading
                    .as_ref()
                    .and_then(|reading| reading.pipe.as_ref())
                    .is_some_and(|(reading, _)| *reading == token) =>
            {
                self.on_pipe_readable(ctx);
                Control::Continue
            }
            token => {
                self.on_pipe_writable(token, ctx.registry());
                Control::Continue
            }
        }
    }

    fn on_command(
        &mut self,
        command: ClipboardCommand,
        ctx: &mut Context<'_, ClipboardEvent>,
    ) -> Control {
        match command {
            ClipboardCommand::Set(offers) => self.set(offers, ctx),
            ClipboardCommand::Provide { request, source } => {
                self.provide(request, source, ctx.registry());
            }
        }
        self.pump(ctx)
    }
}
