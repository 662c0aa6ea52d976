//! The Wayland clipboard, owned by a reactor thread, through the wlr data-control protocol (sway,
//! Hyprland, KDE and other wlroots compositors): a clipboard manager's view, so it needs no
//! window and no focus.
//!
//! * **Change events**: the compositor announces every new selection with its MIME types; the
//!   worker reads text through a pipe it registers in its own poll, so a slow or stuck source
//!   never blocks it.
//! * **Setting** ([`ClipboardCommand::Set`]) creates a data source offering the text types (and a
//!   private type by which the worker recognises its own selection when it is announced back) and
//!   writes the value to each requester's pipe, non-blocking, as the pipe drains.
//! * **Secrets stay**: a selection offering `x-kde-passwordManagerHint` is never read.
//! * A lost connection or a finished data device ends the worker with [`Control::Restart`].
//!
//! The wayland-client event queue is dispatched into [`Protocol`], which only records what
//! happened; the worker then acts on it with the poll registry and the event channel at hand.

mod offer;

use std::{
    collections::HashMap,
    io::{self, ErrorKind},
    os::fd::{AsFd, AsRawFd, OwnedFd},
    rc::Rc,
    time::{Duration, Instant},
};

use mio::{Interest, Registry, Token, event::Event, unix::SourceFd};
use rrt_reactor::{Context, Control, Worker};
use rustix::{
    fs::{OFlags, fcntl_getfl, fcntl_setfl},
    pipe::{PipeFlags, pipe_with},
};
use wayland_client::{
    Connection, Dispatch, EventQueue, Proxy, QueueHandle,
    backend::{ObjectId, WaylandError},
    event_created_child,
    globals::{GlobalListContents, registry_queue_init},
    protocol::{wl_registry::WlRegistry, wl_seat::WlSeat},
};
use wayland_protocols_wlr::data_control::v1::client::{
    zwlr_data_control_device_v1::{self, ZwlrDataControlDeviceV1},
    zwlr_data_control_manager_v1::ZwlrDataControlManagerV1,
    zwlr_data_control_offer_v1::{self, ZwlrDataControlOfferV1},
    zwlr_data_control_source_v1::{self, ZwlrDataControlSourceV1},
};

use self::offer::{Choice, RRT_SOURCE, TEXT_TYPES, choose};
use crate::{ClipboardCommand, ClipboardEvent, MAX_TEXT};

const WAYLAND: Token = Token(0);
/// How long a transfer through a pipe may take before it is given up on.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);

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

/// What the event queue reported, for the worker to act on.
#[derive(Default)]
struct Protocol {
    /// MIME types of each live offer.
    offers: HashMap<ObjectId, (ZwlrDataControlOfferV1, Vec<String>)>,
    /// The clipboard changed to this offer (`None`: cleared), not yet acted on.
    selection: Option<Option<ObjectId>>,
    /// The offer that is the clipboard now.
    current: Option<ObjectId>,
    /// Requests for a value we serve: which source, and the pipe to write it to.
    sends: Vec<(ObjectId, OwnedFd)>,
    /// Sources of ours that were replaced.
    cancelled: Vec<ObjectId>,
    /// The data device is gone (the seat went away).
    finished: bool,
}

/// A value being read from another program's pipe.
struct Reading {
    pipe: OwnedFd,
    bytes: Vec<u8>,
    /// A source that never finishes is given up on.
    until: Instant,
}

/// A value being written to another program's pipe.
struct Writing {
    pipe: OwnedFd,
    value: Rc<[u8]>,
    written: usize,
    /// A reader that never reads is given up on.
    until: Instant,
}

/// The Wayland clipboard worker; run it in an [`Rrt`](rrt_reactor::Rrt).
pub struct WaylandClipboard {
    conn: Connection,
    queue: EventQueue<Protocol>,
    protocol: Protocol,
    manager: ZwlrDataControlManagerV1,
    device: ZwlrDataControlDeviceV1,
    /// The source serving our value, and the value.
    source: Option<(ZwlrDataControlSourceV1, Rc<[u8]>)>,
    readings: HashMap<Token, Reading>,
    writings: HashMap<Token, Writing>,
    next_token: usize,
    /// The value read or set last, so the same value again is not news.
    last: Option<String>,
}

impl std::fmt::Debug for WaylandClipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaylandClipboard")
            .field("owns", &self.source.is_some())
            .field("reading", &self.readings.len())
            .field("writing", &self.writings.len())
            .finish_non_exhaustive()
    }
}

impl WaylandClipboard {
    /// Connects to `$WAYLAND_DISPLAY` and follows the seat's clipboard.
    pub fn new(registry: &Registry) -> Result<Self, WaylandClipboardError> {
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
            readings: HashMap::new(),
            writings: HashMap::new(),
            next_token: 1,
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
            if let Err(error) = self.act(ctx) {
                tracing::warn!(%error, "could not set up a clipboard transfer");
            }
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
    fn act(&mut self, ctx: &mut Context<'_, ClipboardEvent>) -> io::Result<()> {
        let registry = ctx.registry();
        for (from, pipe) in std::mem::take(&mut self.protocol.sends) {
            // A request to a source we replaced gets nothing (the pipe closes empty). Requests
            // are served before cancellations of the same batch, which came after them.
            let Some((_, value)) = self
                .source
                .as_ref()
                .filter(|(source, _)| source.id() == from)
            else {
                continue;
            };
            let value = Rc::clone(value);
            let token = self.token();
            set_nonblocking(&pipe)?;
            let mut writing = Writing {
                pipe,
                value,
                written: 0,
                until: Instant::now() + TRANSFER_TIMEOUT,
            };
            if !write_some(&mut writing) {
                registry.register(
                    &mut SourceFd(&writing.pipe.as_raw_fd()),
                    token,
                    Interest::WRITABLE,
                )?;
                self.writings.insert(token, writing);
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
            }
        }
        let Some(selection) = self.protocol.selection.take() else {
            return Ok(());
        };
        // A read still in progress is of an older value: it must not land after this one.
        for (_, reading) in self.readings.drain() {
            let _ = registry.deregister(&mut SourceFd(&reading.pipe.as_raw_fd()));
        }
        let Some((offer, types)) = selection.and_then(|id| self.protocol.offers.get(&id)) else {
            return Ok(());
        };
        let (offer, choice) = (offer.clone(), choose(types).owned());
        match choice {
            Choice::Read(mime) => {
                let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
                offer.receive(mime, write.as_fd());
                // Our end of the write side closes once the request has gone out.
                let _ = self.conn.flush();
                drop(write);
                let token = self.token();
                registry.register(&mut SourceFd(&read.as_raw_fd()), token, Interest::READABLE)?;
                self.readings.insert(
                    token,
                    Reading {
                        pipe: read,
                        bytes: Vec::new(),
                        until: Instant::now() + TRANSFER_TIMEOUT,
                    },
                );
            }
            Choice::Secret => {
                tracing::info!("a password manager's secret is on the clipboard; not shared");
            }
            Choice::Ours => {}
            Choice::NoText => tracing::debug!("the clipboard holds no text"),
        }
        Ok(())
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    fn on_pipe_readable(&mut self, token: Token, ctx: &mut Context<'_, ClipboardEvent>) {
        let Some(reading) = self.readings.get_mut(&token) else {
            return;
        };
        let mut chunk = [0; 64 * 1024];
        let done = loop {
            match rustix::io::read(&reading.pipe, &mut chunk) {
                Ok(0) => break true,
                Ok(read) => {
                    reading.bytes.extend_from_slice(&chunk[..read]);
                    if reading.bytes.len() > MAX_TEXT {
                        tracing::warn!(max = MAX_TEXT, "the clipboard value is too large to share");
                        self.finish_reading(token, ctx.registry());
                        return;
                    }
                }
                Err(rustix::io::Errno::AGAIN) => break false,
                Err(rustix::io::Errno::INTR) => {}
                Err(error) => {
                    tracing::warn!(%error, "reading the clipboard failed");
                    self.finish_reading(token, ctx.registry());
                    return;
                }
            }
        };
        if done && let Some(reading) = self.finish_reading(token, ctx.registry()) {
            let text = String::from_utf8_lossy(&reading.bytes).into_owned();
            if !text.is_empty() && self.last.as_ref() != Some(&text) {
                self.last = Some(text.clone());
                ctx.emit(ClipboardEvent::Copied(text));
            }
        }
    }

    fn finish_reading(&mut self, token: Token, registry: &Registry) -> Option<Reading> {
        let reading = self.readings.remove(&token)?;
        let _ = registry.deregister(&mut SourceFd(&reading.pipe.as_raw_fd()));
        Some(reading)
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
}

/// Writes what the pipe takes; true once the transfer is over (all written, or the reader left).
fn write_some(writing: &mut Writing) -> bool {
    loop {
        if writing.written == writing.value.len() {
            return true;
        }
        match rustix::io::write(&writing.pipe, &writing.value[writing.written..]) {
            Ok(written) => writing.written += written,
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
        let readings = self.readings.values().map(|reading| reading.until);
        let writings = self.writings.values().map(|writing| writing.until);
        readings.chain(writings).min()
    }

    fn on_deadline(&mut self, now: Instant, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        let registry = ctx.registry();
        self.readings.retain(|_, reading| {
            let alive = reading.until > now;
            if !alive {
                tracing::debug!("a clipboard source did not finish sending; given up");
                let _ = registry.deregister(&mut SourceFd(&reading.pipe.as_raw_fd()));
            }
            alive
        });
        self.writings.retain(|_, writing| {
            let alive = writing.until > now;
            if !alive {
                tracing::debug!("a program did not read what it pasted; given up");
                let _ = registry.deregister(&mut SourceFd(&writing.pipe.as_raw_fd()));
            }
            alive
        });
        Control::Continue
    }

    fn on_ready(&mut self, event: &Event, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        match event.token() {
            WAYLAND => self.pump(ctx),
            token if self.readings.contains_key(&token) => {
                self.on_pipe_readable(token, ctx);
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
        let ClipboardCommand::Set(text) = command;
        // A read in flight is of a value older than this one.
        for (_, reading) in self.readings.drain() {
            let _ = ctx
                .registry()
                .deregister(&mut SourceFd(&reading.pipe.as_raw_fd()));
        }
        let source = self.manager.create_data_source(&self.queue.handle(), ());
        for mime in TEXT_TYPES.into_iter().chain([RRT_SOURCE]) {
            source.offer(mime.to_owned());
        }
        self.device.set_selection(Some(&source));
        let value: Rc<[u8]> = Rc::from(text.as_bytes());
        self.last = Some(text);
        if let Some((old, _)) = self.source.replace((source, value)) {
            old.destroy();
        }
        self.pump(ctx)
    }
}

impl Dispatch<WlRegistry, GlobalListContents> for Protocol {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: wayland_client::protocol::wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<WlSeat, ()> for Protocol {
    fn event(
        _: &mut Self,
        _: &WlSeat,
        _: wayland_client::protocol::wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<ZwlrDataControlManagerV1, ()> for Protocol {
    fn event(
        _: &mut Self,
        _: &ZwlrDataControlManagerV1,
        _: wayland_protocols_wlr::data_control::v1::client::zwlr_data_control_manager_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<ZwlrDataControlDeviceV1, ()> for Protocol {
    fn event(
        protocol: &mut Self,
        _: &ZwlrDataControlDeviceV1,
        event: zwlr_data_control_device_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwlr_data_control_device_v1::Event::DataOffer { id } => {
                protocol.offers.insert(id.id(), (id, Vec::new()));
            }
            zwlr_data_control_device_v1::Event::Selection { id } => {
                let id = id.map(|offer| offer.id());
                // The previous selection's offer is done with (offers announced since are not:
                // their selection event may come in a later batch).
                if let Some(previous) = std::mem::replace(&mut protocol.current, id.clone())
                    && Some(&previous) != id.as_ref()
                    && let Some((offer, _)) = protocol.offers.remove(&previous)
                {
                    offer.destroy();
                }
                protocol.selection = Some(id);
            }
            zwlr_data_control_device_v1::Event::PrimarySelection { id: Some(offer) } => {
                if let Some((offer, _)) = protocol.offers.remove(&offer.id()) {
                    offer.destroy();
                }
            }
            zwlr_data_control_device_v1::Event::Finished => protocol.finished = true,
            _ => {}
        }
    }

    event_created_child!(Protocol, ZwlrDataControlDeviceV1, [
        zwlr_data_control_device_v1::EVT_DATA_OFFER_OPCODE => (ZwlrDataControlOfferV1, ()),
    ]);
}

impl Dispatch<ZwlrDataControlOfferV1, ()> for Protocol {
    fn event(
        protocol: &mut Self,
        offer: &ZwlrDataControlOfferV1,
        event: zwlr_data_control_offer_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zwlr_data_control_offer_v1::Event::Offer { mime_type } = event
            && let Some((_, types)) = protocol.offers.get_mut(&offer.id())
        {
            types.push(mime_type);
        }
    }
}

impl Dispatch<ZwlrDataControlSourceV1, ()> for Protocol {
    fn event(
        protocol: &mut Self,
        source: &ZwlrDataControlSourceV1,
        event: zwlr_data_control_source_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwlr_data_control_source_v1::Event::Send { fd, .. } => {
                protocol.sends.push((source.id(), fd));
            }
            zwlr_data_control_source_v1::Event::Cancelled => protocol.cancelled.push(source.id()),
            _ => {}
        }
    }
}
