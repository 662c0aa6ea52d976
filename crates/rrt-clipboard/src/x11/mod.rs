//! The X11 clipboard, owned by a reactor thread: the X connection's socket is one mio source.
//!
//! * **Change events, not polling**: XFixes reports every new owner of `CLIPBOARD`; the worker
//!   then reads the value ([`transfer`]) and publishes it. Ownership it took itself is ignored.
//!   One read at a time (answers are matched to the conversion in flight); a read overtaken by a
//!   new owner, or by a value set meanwhile, is dropped and the clipboard read again.
//! * **Never steals focus**: the worker's window is an unmapped 1×1 input-only window.
//! * **Setting** ([`ClipboardCommand::Set`]) takes ownership of `CLIPBOARD` and answers other
//!   programs' requests (`TARGETS`, `UTF8_STRING`, `STRING`, `TEXT`, `text/plain;charset=utf-8`)
//!   until another program takes it.
//! * **Secrets stay**: a value whose owner offers `x-kde-passwordManagerHint` is never read.
//! * A lost X connection (the server went away) ends the worker with [`Control::Restart`], so the
//!   reactor reconnects with backoff.
//!
//! x11rb buffers events it reads while waiting for a reply, so after every call the worker drains
//! [`Connection::poll_for_event`] before going back to sleep in epoll.

mod transfer;

use std::{
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use mio::{Interest, Registry, Token, event::Event, unix::SourceFd};
use rrt_reactor::{Context, Control, Worker};
use x11rb::{
    CURRENT_TIME, NONE,
    connection::{Connection, RequestConnection},
    errors::{ConnectError, ConnectionError, ReplyError, ReplyOrIdError},
    protocol::{
        Event as XEvent,
        xfixes::{self, ConnectionExt as _, SelectionEventMask},
        xproto::{
            Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, Property,
            SELECTION_NOTIFY_EVENT, SelectionNotifyEvent, SelectionRequestEvent, Window,
            WindowClass,
        },
    },
    rust_connection::RustConnection,
    wrapper::ConnectionExt as _,
};

use self::transfer::{Next, Offer, Outcome, TextTarget, Transfer};
use crate::{ClipboardCommand, ClipboardEvent, MAX_TEXT};

const X: Token = Token(0);
/// How long an owner may take to answer one request (each INCR chunk restarts it). An owner
/// that exits right after losing the clipboard can have its last answer dropped by the server.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        CLIPBOARD,
        TARGETS,
        UTF8_STRING,
        TEXT,
        INCR,
        TEXT_PLAIN_UTF8: b"text/plain;charset=utf-8",
        PASSWORD_HINT: b"x-kde-passwordManagerHint",
        RRT_SELECTION,
    }
}

/// Why the X11 clipboard could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum X11Error {
    /// No X server at `$DISPLAY`.
    #[error("cannot connect to the X server (is DISPLAY set?): {0}")]
    Connect(#[from] ConnectError),
    /// The server lacks the XFixes extension (needed for change events).
    #[error("the X server has no XFixes extension, needed to follow clipboard changes")]
    NoXfixes,
    /// The connection failed while setting up.
    #[error("the X connection failed: {0}")]
    Connection(String),
}

impl From<ConnectionError> for X11Error {
    fn from(error: ConnectionError) -> Self {
        Self::Connection(error.to_string())
    }
}

impl From<ReplyError> for X11Error {
    fn from(error: ReplyError) -> Self {
        Self::Connection(error.to_string())
    }
}

impl From<ReplyOrIdError> for X11Error {
    fn from(error: ReplyOrIdError) -> Self {
        Self::Connection(error.to_string())
    }
}

/// The X11 clipboard worker; run it in an [`Rrt`](rrt_reactor::Rrt).
pub struct X11Clipboard {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
    /// What this worker serves while it owns `CLIPBOARD`.
    owned: Option<Owned>,
    /// The read in progress (one at a time, so answers cannot be mixed up), and when it last
    /// made progress.
    reading: Option<Transfer>,
    reading_since: Instant,
    /// The target of the conversion in flight: an answer for any other is not ours to take.
    converting: Atom,
    /// The clipboard changed during the read (another owner, or a value we set): its result is
    /// not the clipboard's value and is dropped.
    stale: bool,
    /// Another program took the clipboard during the read: read again once it ends.
    reread: bool,
    /// The value read last, so an owner re-asserting the same value is not news.
    last_read: Option<String>,
}

impl std::fmt::Debug for X11Clipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Clipboard")
            .field("window", &self.window)
            .field("owns", &self.owned.is_some())
            .finish_non_exhaustive()
    }
}

impl X11Clipboard {
    /// Connects to `display` (`None`: `$DISPLAY`), makes the worker's window and subscribes to
    /// `CLIPBOARD` changes.
    pub fn new(registry: &Registry, display: Option<&str>) -> Result<Self, X11Error> {
        let (conn, screen) = RustConnection::connect(display)?;
        if conn
            .extension_information(xfixes::X11_EXTENSION_NAME)?
            .is_none()
        {
            return Err(X11Error::NoXfixes);
        }
        conn.xfixes_query_version(5, 0)?.reply()?;
        let atoms = Atoms::new(&conn)?.reply()?;
        let root = conn.setup().roots[screen].root;
        let window = conn.generate_id()?;
        conn.create_window(
            0,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        conn.xfixes_select_selection_input(
            window,
            atoms.CLIPBOARD,
            SelectionEventMask::SET_SELECTION_OWNER
                | SelectionEventMask::SELECTION_WINDOW_DESTROY
                | SelectionEventMask::SELECTION_CLIENT_CLOSE,
        )?;
        conn.flush()?;
        registry
            .register(
                &mut SourceFd(&conn.stream().as_raw_fd()),
                X,
                Interest::READABLE,
            )
            .map_err(|error| X11Error::Connection(error.to_string()))?;
        tracing::debug!(window, "X11 clipboard window created");
        Ok(Self {
            conn,
            window,
            atoms,
            owned: None,
            reading: None,
            reading_since: Instant::now(),
            converting: NONE,
            stale: false,
            reread: false,
            last_read: None,
        })
    }

    /// Handles every event x11rb has, read now or buffered earlier.
    fn pump(&mut self, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        let result = (|| -> Result<(), ReplyOrIdError> {
            loop {
                while let Some(event) = self.conn.poll_for_event()? {
                    self.handle(event, ctx)?;
                }
                // A flush that has to wait reads what arrives meanwhile into x11rb's queue,
                // where epoll cannot see it.
                self.conn.flush()?;
                match self.conn.poll_for_event()? {
                    Some(event) => self.handle(event, ctx)?,
                    None => return Ok(()),
                }
            }
        })();
        match result {
            Ok(()) => Control::Continue,
            Err(error) => {
                tracing::warn!(%error, "the X connection failed; reconnecting");
                Control::Restart
            }
        }
    }

    fn handle(
        &mut self,
        event: XEvent,
        ctx: &mut Context<'_, ClipboardEvent>,
    ) -> Result<(), ReplyOrIdError> {
        match event {
            XEvent::XfixesSelectionNotify(notify) if notify.selection == self.atoms.CLIPBOARD => {
                if notify.owner == self.window || notify.owner == NONE {
                    return Ok(());
                }
                // (What we serve is dropped only on SelectionClear: this notice may predate a
                // value we set since.)
                if self.reading.is_some() {
                    // One conversion at a time, so that answers cannot be mixed up; what the
                    // rest of this read would bring may come from the new owner, unchecked.
                    self.stale = true;
                    self.reread = true;
                } else {
                    self.start_reading(notify.timestamp)?;
                }
            }
            XEvent::SelectionNotify(answer)
                if answer.requestor == self.window
                    && answer.selection == self.atoms.CLIPBOARD
                    && answer.target == self.converting
                    && self.reading.is_some() =>
            {
                self.on_answer(answer.property, answer.time, ctx)?;
            }
            XEvent::PropertyNotify(change)
                if change.window == self.window
                    && change.atom == self.atoms.RRT_SELECTION
                    && change.state == Property::NEW_VALUE
                    && self.reading.as_ref().is_some_and(Transfer::awaits_chunks) =>
            {
                self.reading_since = Instant::now();
                let chunk = self.take_property()?;
                let next = self.reading_step(|transfer| transfer.on_chunk(&chunk.value));
                self.follow(next, CURRENT_TIME, ctx)?;
            }
            XEvent::SelectionRequest(request) => self.serve(&request)?,
            XEvent::SelectionClear(clear) if clear.selection == self.atoms.CLIPBOARD => {
                self.owned = None;
            }
            XEvent::Error(error) => tracing::debug!(?error, "X error"),
            _ => {}
        }
        Ok(())
    }

    fn start_reading(&mut self, time: u32) -> Result<(), ConnectionError> {
        self.reading = Some(Transfer::start(MAX_TEXT));
        self.reading_since = Instant::now();
        self.convert(self.atoms.TARGETS, time)
    }

    /// The read ended; if another program took the clipboard meanwhile, read it.
    fn end_reading(&mut self) -> Result<(), ConnectionError> {
        self.reading = None;
        self.converting = NONE;
        self.stale = false;
        if std::mem::take(&mut self.reread) {
            self.start_reading(CURRENT_TIME)?;
        }
        Ok(())
    }

    fn convert(&mut self, target: Atom, time: u32) -> Result<(), ConnectionError> {
        self.converting = target;
        self.conn.convert_selection(
            self.window,
            self.atoms.CLIPBOARD,
            target,
            self.atoms.RRT_SELECTION,
            time,
        )?;
        Ok(())
    }

    /// Reads and deletes our property (deleting asks an INCR owner for the next chunk).
    fn take_property(&self) -> Result<x11rb::protocol::xproto::GetPropertyReply, ReplyError> {
        let length = u32::try_from(MAX_TEXT / 4 + 1).unwrap_or(u32::MAX);
        self.conn
            .get_property(
                true,
                self.window,
                self.atoms.RRT_SELECTION,
                AtomEnum::ANY,
                0,
                length,
            )?
            .reply()
    }

    fn on_answer(
        &mut self,
        property: Atom,
        time: u32,
        ctx: &mut Context<'_, ClipboardEvent>,
    ) -> Result<(), ReplyOrIdError> {
        let Some(transfer) = self.reading.as_mut() else {
            return Ok(());
        };
        self.reading_since = Instant::now();
        if property == NONE {
            let next = transfer.on_refused();
            return self.follow(next, time, ctx);
        }
        let reply = self.take_property()?;
        let atoms = self.atoms;
        let asked_for_targets = self.converting == atoms.TARGETS;
        let next = self.reading_step(|transfer| {
            if asked_for_targets {
                if reply.type_ != Atom::from(AtomEnum::ATOM) {
                    return transfer.on_refused();
                }
                let targets: Vec<Atom> = reply.value32().into_iter().flatten().collect();
                transfer.on_targets(Offer {
                    utf8: targets.contains(&atoms.UTF8_STRING),
                    latin1: targets.contains(&AtomEnum::STRING.into()),
                    secret: targets.contains(&atoms.PASSWORD_HINT),
                })
            } else if reply.type_ == atoms.INCR {
                let announced = reply.value32().and_then(|mut size| size.next());
                transfer.on_value(&[], Some(announced.unwrap_or(0) as usize))
            } else if reply.bytes_after > 0 {
                // More than was asked for, which is already more than the cap.
                transfer.on_oversize(reply.value.len() + reply.bytes_after as usize)
            } else {
                transfer.on_value(&reply.value, None)
            }
        });
        self.follow(next, time, ctx)
    }

    fn reading_step(&mut self, step: impl FnOnce(&mut Transfer) -> Next) -> Next {
        match self.reading.as_mut() {
            Some(transfer) => step(transfer),
            None => Next::Done(Outcome::NoText),
        }
    }

    fn follow(
        &mut self,
        next: Next,
        time: u32,
        ctx: &mut Context<'_, ClipboardEvent>,
    ) -> Result<(), ReplyOrIdError> {
        match next {
            Next::Convert(TextTarget::Utf8) => self.convert(self.atoms.UTF8_STRING, time)?,
            Next::Convert(TextTarget::Latin1) => self.convert(AtomEnum::STRING.into(), time)?,
            Next::AwaitChunk => {}
            Next::Done(outcome) => {
                let stale = self.stale;
                self.end_reading()?;
                if stale {
                    tracing::debug!("the clipboard changed while it was read; read it again");
                    return Ok(());
                }
                match outcome {
                    Outcome::Text(text) => {
                        if self.last_read.as_ref() != Some(&text) {
                            self.last_read = Some(text.clone());
                            ctx.emit(ClipboardEvent::Copied(text));
                        }
                    }
                    Outcome::Secret => {
                        tracing::info!(
                            "a password manager's secret is on the clipboard; not shared"
                        );
                    }
                    Outcome::NoText => tracing::debug!("the clipboard holds no text"),
                    Outcome::TooLarge(len) => {
                        tracing::warn!(
                            len,
                            max = MAX_TEXT,
                            "the clipboard value is too large to share"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Answers another program's request for the value we own.
    fn serve(&self, request: &SelectionRequestEvent) -> Result<(), ConnectionError> {
        // Obsolete requestors leave the property unset and expect the target's name.
        let property = if request.property == NONE {
            request.target
        } else {
            request.property
        };
        let atoms = &self.atoms;
        let string = Atom::from(AtomEnum::STRING);
        let answered = match &self.owned {
            Some(Owned {
                utf8: value,
                latin1,
            }) if request.selection == atoms.CLIPBOARD => {
                let mut text_targets = vec![atoms.UTF8_STRING, atoms.TEXT, atoms.TEXT_PLAIN_UTF8];
                if latin1.is_some() {
                    text_targets.push(string);
                }
                if request.target == atoms.TARGETS {
                    let mut targets = vec![atoms.TARGETS];
                    targets.extend(&text_targets);
                    self.conn.change_property32(
                        PropMode::REPLACE,
                        request.requestor,
                        property,
                        AtomEnum::ATOM,
                        &targets,
                    )?;
                    true
                } else if text_targets.contains(&request.target) {
                    // Values over one request would need INCR; they are refused instead.
                    let fits = value.len() + 64 <= self.conn.maximum_request_bytes();
                    if fits {
                        let (kind, bytes) = match latin1 {
                            Some(latin1) if request.target == string => (string, latin1.as_slice()),
                            _ => (atoms.UTF8_STRING, value.as_slice()),
                        };
                        self.conn.change_property8(
                            PropMode::REPLACE,
                            request.requestor,
                            property,
                            kind,
                            bytes,
                        )?;
                    } else {
                        tracing::warn!(len = value.len(), "too large to hand to an X client");
                    }
                    fits
                } else {
                    false
                }
            }
            _ => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: request.time,
            requestor: request.requestor,
            selection: request.selection,
            target: request.target,
            property: if answered { property } else { NONE },
        };
        self.conn
            .send_event(false, request.requestor, EventMask::NO_EVENT, notify)?;
        Ok(())
    }
}

/// The value served while the worker owns `CLIPBOARD`, in the encodings it is asked for.
struct Owned {
    utf8: Vec<u8>,
    /// For STRING (ISO 8859-1), offered only for text that has no other characters.
    latin1: Option<Vec<u8>>,
}

impl Owned {
    fn new(text: String) -> Self {
        let latin1 = text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect();
        Self {
            utf8: text.into_bytes(),
            latin1,
        }
    }
}

impl Worker for X11Clipboard {
    type Event = ClipboardEvent;
    type Command = ClipboardCommand;

    /// An owner that never answers does not stop the clipboard from being followed.
    fn deadline(&self) -> Option<Instant> {
        self.reading
            .as_ref()
            .map(|_| self.reading_since + READ_TIMEOUT)
    }

    fn on_deadline(&mut self, _: Instant, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        tracing::debug!("the clipboard's owner did not answer; giving up on that value");
        if self.end_reading().is_err() {
            return Control::Restart;
        }
        self.pump(ctx)
    }

    fn on_ready(&mut self, _: &Event, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        self.pump(ctx)
    }

    fn on_command(
        &mut self,
        command: ClipboardCommand,
        ctx: &mut Context<'_, ClipboardEvent>,
    ) -> Control {
        let ClipboardCommand::Set(text) = command;
        // A read in flight would end with a value older than this one.
        if self.reading.is_some() {
            self.stale = true;
        }
        // What the mesh sends is not news when it comes back from X.
        self.last_read = Some(text.clone());
        self.owned = Some(Owned::new(text));
        if let Err(error) =
            self.conn
                .set_selection_owner(self.window, self.atoms.CLIPBOARD, CURRENT_TIME)
        {
            tracing::warn!(%error, "the X connection failed; reconnecting");
            return Control::Restart;
        }
        self.pump(ctx)
    }
}
