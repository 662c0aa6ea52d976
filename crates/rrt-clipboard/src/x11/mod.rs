//! The X11 clipboard, owned by a reactor thread: the X connection's socket is one mio source.
//!
//! * **Change events, not polling**: XFixes reports every new owner of `CLIPBOARD`; the worker
//!   then reads the value and publishes it. Ownership it took itself is ignored. The sans-IO
//!   [`reader`] decides what to ask and what an answer means (one read at a time; a read
//!   overtaken by a new owner or a value set meanwhile is dropped and redone), through the
//!   single-value [`transfer`]; this driver only performs X requests.
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

mod reader;
mod transfer;

use std::{os::fd::AsRawFd, time::Instant};

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

use self::{
    reader::{Ask, Reader, Step},
    transfer::{Offer, Outcome, TextTarget},
};
use crate::{ClipboardCommand, ClipboardEvent, MAX_TEXT};

const X: Token = Token(0);

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
    /// Reads of the clipboard, one at a time.
    reader: Reader,
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
            reader: Reader::new(MAX_TEXT),
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
                let step = self.reader.new_owner(Instant::now());
                self.follow(step, notify.timestamp, ctx)?;
            }
            XEvent::SelectionNotify(answer)
                if answer.requestor == self.window && answer.selection == self.atoms.CLIPBOARD =>
            {
                match self.ask_for(answer.target) {
                    Some(ask) if self.reader.awaits(ask) => {
                        self.on_answer(ask, answer.property, answer.time, ctx)?;
                    }
                    _ => tracing::debug!(target = answer.target, "an answer nobody awaits"),
                }
            }
            XEvent::PropertyNotify(change)
                if change.window == self.window
                    && change.atom == self.atoms.RRT_SELECTION
                    && change.state == Property::NEW_VALUE
                    && self.reader.awaits_chunks() =>
            {
                let chunk = self.take_property()?;
                let step = self.reader.chunk(&chunk.value, Instant::now());
                self.follow(step, CURRENT_TIME, ctx)?;
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

    /// The target atom of a conversion the reader asks for.
    fn target_of(&self, ask: Ask) -> Atom {
        match ask {
            Ask::Targets => self.atoms.TARGETS,
            Ask::Text(TextTarget::Utf8) => self.atoms.UTF8_STRING,
            Ask::Text(TextTarget::Latin1) => AtomEnum::STRING.into(),
        }
    }

    /// The conversion an answer's target atom belongs to, if one of ours.
    fn ask_for(&self, target: Atom) -> Option<Ask> {
        [
            Ask::Targets,
            Ask::Text(TextTarget::Utf8),
            Ask::Text(TextTarget::Latin1),
        ]
        .into_iter()
        .find(|ask| self.target_of(*ask) == target)
    }

    fn convert(&self, ask: Ask, time: u32) -> Result<(), ConnectionError> {
        self.conn.convert_selection(
            self.window,
            self.atoms.CLIPBOARD,
            self.target_of(ask),
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
        ask: Ask,
        property: Atom,
        time: u32,
        ctx: &mut Context<'_, ClipboardEvent>,
    ) -> Result<(), ReplyOrIdError> {
        let now = Instant::now();
        if property == NONE {
            let step = self.reader.refused(now);
            return Ok(self.follow(step, time, ctx)?);
        }
        let reply = self.take_property()?;
        let atoms = self.atoms;
        let step = if ask == Ask::Targets {
            if reply.type_ == Atom::from(AtomEnum::ATOM) {
                let targets: Vec<Atom> = reply.value32().into_iter().flatten().collect();
                let offer = Offer {
                    utf8: targets.contains(&atoms.UTF8_STRING),
                    latin1: targets.contains(&AtomEnum::STRING.into()),
                    secret: targets.contains(&atoms.PASSWORD_HINT),
                };
                self.reader.targets(offer, now)
            } else {
                self.reader.refused(now)
            }
        } else if reply.type_ == atoms.INCR {
            let announced = reply.value32().and_then(|mut size| size.next());
            self.reader
                .value(&[], Some(announced.unwrap_or(0) as usize), now)
        } else if reply.bytes_after > 0 {
            // More than was asked for, which is already more than the cap.
            let len = reply.value.len() + reply.bytes_after as usize;
            self.reader.oversize(len, now)
        } else {
            self.reader.value(&reply.value, None, now)
        };
        Ok(self.follow(step, time, ctx)?)
    }

    fn follow(
        &mut self,
        step: Step,
        time: u32,
        ctx: &mut Context<'_, ClipboardEvent>,
    ) -> Result<(), ConnectionError> {
        match step {
            Step::Convert(ask) => self.convert(ask, time)?,
            Step::Wait => {}
            Step::Done { outcome, reread } => {
                if reread {
                    self.convert(Ask::Targets, CURRENT_TIME)?;
                }
                match outcome {
                    Some(Outcome::Text(text)) => {
                        if self.last_read.as_ref() != Some(&text) {
                            self.last_read = Some(text.clone());
                            ctx.emit(ClipboardEvent::Copied(text));
                        }
                    }
                    Some(Outcome::Secret) => {
                        tracing::info!(
                            "a password manager's secret is on the clipboard; not shared"
                        );
                    }
                    Some(Outcome::NoText) => tracing::debug!("the clipboard holds no text"),
                    Some(Outcome::TooLarge(len)) => {
                        tracing::warn!(
                            len,
                            max = MAX_TEXT,
                            "the clipboard value is too large to share"
                        );
                    }
                    None => tracing::debug!("the clipboard changed while it was read"),
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
        self.reader.deadline()
    }

    fn on_deadline(&mut self, now: Instant, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        tracing::debug!("the clipboard's owner did not answer; giving up on that value");
        let step = self.reader.timed_out(now);
        if self.follow(step, CURRENT_TIME, ctx).is_err() {
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
        self.reader.set();
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
