//! The X11 clipboard, owned by a reactor thread: the X connection's socket is one mio source.
//!
//! * **Change events, not polling**: XFixes reports every new owner of `CLIPBOARD`; the worker
//!   then reads the value and publishes it. Ownership it took itself is ignored. The sans-IO
//!   [`reader`] decides what to ask and what an answer means (one read at a time; a read
//!   overtaken by a new owner is dropped and redone, one overtaken by a value set here is
//!   dropped; a request from our own window is refused), through the
//!   single-value [`transfer`], which converts the selection to each type worth reading in turn
//!   (see [`crate::read`]): values are taken whole or in INCR chunks, as large as
//!   [`ReadLimits::max_bytes`] per type.
//! * **Never steals focus**: the worker's window is an unmapped 1×1 input-only window.
//! * **Setting** ([`ClipboardCommand::Set`]) takes ownership of `CLIPBOARD` and answers other
//!   programs' requests through the sans-IO [`owner`] until another program takes it: `TARGETS`
//!   lists every offered type (text also as `UTF8_STRING`, `STRING`, `TEXT` and
//!   `text/plain;charset=utf-8`); values larger than one chunk go by INCR, a chunk at a time as
//!   each program takes them, so several programs pasting at once do not wait for each other;
//!   [`Source::Later`](crate::Source::Later) values are asked for
//!   ([`ClipboardEvent::Wanted`]) while the program waits.
//! * **Secrets stay**: a value whose owner offers `x-kde-passwordManagerHint` is never read.
//! * A lost X connection (the server went away) ends the worker with [`Control::Restart`], so the
//!   reactor reconnects with backoff. An X error (a requestor's window gone, say) only ends the
//!   transfer it concerns, by that transfer's timeout.
//!
//! x11rb buffers events it reads while waiting for a reply, so after every call the worker drains
//! [`Connection::poll_for_event`] before going back to sleep in epoll.

mod owner;
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
            Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux,
            EventMask, GetPropertyReply, PropMode, Property, SELECTION_NOTIFY_EVENT,
            SelectionNotifyEvent, Window, WindowClass,
        },
    },
    rust_connection::RustConnection,
    wrapper::ConnectionExt as _,
};

use self::{
    owner::{Action, Owner, OwnerAtoms, Request},
    reader::{Ask, Reader, Step},
    transfer::Outcome,
};
use crate::{
    ClipboardCommand, ClipboardEvent, Offer, ReadLimits,
    read::{fingerprint, fingerprint_of_offers},
    source::usable,
};

const X: Token = Token(0);

/// The most targets of an owner looked at (their names cost a request each).
const MAX_TARGETS: usize = 256;
/// The longest TARGETS list read (in atoms); a longer one is not read at all.
const MAX_TARGET_ATOMS: u32 = 4096;

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        CLIPBOARD,
        TARGETS,
        UTF8_STRING,
        TEXT,
        INCR,
        TEXT_PLAIN_UTF8: b"text/plain;charset=utf-8",
        PASSWORD_HINT: b"x-kde-passwordManagerHint",
        RRT_SELECTION_0,
        RRT_SELECTION_1,
        RRT_SELECTION_2,
        RRT_SELECTION_3,
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
    /// What this worker serves, and the transfers of it.
    owner: Owner,
    /// Reads of the clipboard, one at a time.
    reader: Reader,
    /// The targets of the value being read, by atom and name.
    read_targets: Vec<(Atom, String)>,
    limits: ReadLimits,
    /// A fingerprint of the value read (or set) last, so an owner re-asserting it is not news.
    last_read: Option<u64>,
    /// The class (`WM_CLASS`) of the application owning the value being read, if it has one.
    owner_class: Option<String>,
    /// The property the current read's answers arrive in: each read takes the next of four,
    /// so an answer (or an INCR chunk) a previous owner sends late is not taken for this one's.
    property: Atom,
}

impl std::fmt::Debug for X11Clipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Clipboard")
            .field("window", &self.window)
            .field("owns", &self.owner.owns())
            .finish_non_exhaustive()
    }
}

impl X11Clipboard {
    /// Connects to `display` (`None`: `$DISPLAY`), makes the worker's window and subscribes to
    /// `CLIPBOARD` changes; what someone copies is read within `limits`.
    pub fn new(
        registry: &Registry,
        display: Option<&str>,
        limits: ReadLimits,
    ) -> Result<Self, X11Error> {
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
        let owner_atoms = OwnerAtoms {
            clipboard: atoms.CLIPBOARD,
            targets: atoms.TARGETS,
            incr: atoms.INCR,
            atom: AtomEnum::ATOM.into(),
            utf8_string: atoms.UTF8_STRING,
            string: AtomEnum::STRING.into(),
            text: atoms.TEXT,
            text_plain_utf8: atoms.TEXT_PLAIN_UTF8,
        };
        let owner = Owner::new(owner_atoms, window, conn.maximum_request_bytes());
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
            owner,
            reader: Reader::new(limits.max_bytes),
            read_targets: Vec::new(),
            limits,
            last_read: None,
            owner_class: None,
            property: atoms.RRT_SELECTION_0,
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
        self.control(result.map_err(|error| error.to_string()))
    }

    /// Continue, or reconnect after a failure of the connection.
    fn control(&self, result: Result<(), String>) -> Control {
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
        let now = Instant::now();
        match event {
            XEvent::XfixesSelectionNotify(notify) if notify.selection == self.atoms.CLIPBOARD => {
                if notify.owner == self.window || notify.owner == NONE {
                    return Ok(());
                }
                // (What we serve is dropped only on SelectionClear: this notice may predate a
                // value we set since.)
                self.owner_class = self.class_of(notify.owner);
                let step = self.reader.new_owner(now);
                self.follow(step, notify.timestamp, ctx)?;
            }
            XEvent::SelectionNotify(answer)
                if answer.requestor == self.window
                    && answer.selection == self.atoms.CLIPBOARD
                    && (answer.property == NONE || answer.property == self.property) =>
            {
                match self.ask_for(answer.target) {
                    Some(ask) if self.reader.awaits(&ask) => {
                        self.on_answer(&ask, answer.property, answer.time, ctx)?;
                    }
                    _ => tracing::debug!(target = answer.target, "an answer nobody awaits"),
                }
            }
            XEvent::PropertyNotify(change)
                if change.window == self.window
                    && change.atom == self.property
                    && change.state == Property::NEW_VALUE
                    && self.reader.awaits_chunks() =>
            {
                let chunk = self.take_property()?;
                let step = self.reader.chunk(&chunk.value, now);
                self.follow(step, CURRENT_TIME, ctx)?;
            }
            XEvent::PropertyNotify(change) if change.state == Property::DELETE => {
                self.owner.deleted(change.window, change.atom, now);
                self.perform(ctx)?;
            }
            XEvent::SelectionRequest(request) => {
                self.owner.request(
                    Request {
                        requestor: request.requestor,
                        selection: request.selection,
                        target: request.target,
                        property: request.property,
                        time: request.time,
                    },
                    now,
                );
                self.perform(ctx)?;
            }
            XEvent::SelectionClear(clear) if clear.selection == self.atoms.CLIPBOARD => {
                // A notice that predates a value we set since is not about it.
                let owner = self
                    .conn
                    .get_selection_owner(self.atoms.CLIPBOARD)?
                    .reply()?;
                if owner.owner != self.window {
                    self.owner.cleared();
                    self.perform(ctx)?;
                }
            }
            XEvent::Error(error) => tracing::debug!(?error, "X error"),
            _ => {}
        }
        Ok(())
    }

    /// Does what the owner machine asks.
    fn perform(&mut self, ctx: &mut Context<'_, ClipboardEvent>) -> Result<(), ConnectionError> {
        while let Some(action) = self.owner.poll_action() {
            match action {
                Action::Write8 {
                    requestor,
                    property,
                    kind,
                    data,
                } => {
                    self.conn.change_property8(
                        PropMode::REPLACE,
                        requestor,
                        property,
                        kind,
                        &data,
                    )?;
                }
                Action::Write32 {
                    requestor,
                    property,
                    kind,
                    data,
                } => {
                    self.conn.change_property32(
                        PropMode::REPLACE,
                        requestor,
                        property,
                        kind,
                        &data,
                    )?;
                }
                Action::Watch { window, on } => {
                    let mask = if on {
                        EventMask::PROPERTY_CHANGE
                    } else {
                        EventMask::NO_EVENT
                    };
                    let aux = ChangeWindowAttributesAux::new().event_mask(mask);
                    self.conn.change_window_attributes(window, &aux)?;
                }
                Action::Notify { request, property } => {
                    let notify = SelectionNotifyEvent {
                        response_type: SELECTION_NOTIFY_EVENT,
                        sequence: 0,
                        time: request.time,
                        requestor: request.requestor,
                        selection: request.selection,
                        target: request.target,
                        property,
                    };
                    self.conn
                        .send_event(false, request.requestor, EventMask::NO_EVENT, notify)?;
                }
                Action::Wanted { request, mime } => {
                    ctx.emit(ClipboardEvent::Wanted { request, mime });
                }
            }
        }
        Ok(())
    }

    /// The target atom of a conversion the reader asks for.
    fn target_of(&self, ask: &Ask) -> Option<Atom> {
        match ask {
            Ask::Targets => Some(self.atoms.TARGETS),
            Ask::Target(name) => self
                .read_targets
                .iter()
                .find(|(_, known)| known == name)
                .map(|(atom, _)| *atom),
        }
    }

    /// The conversion an answer's target atom belongs to, if one of ours.
    fn ask_for(&self, target: Atom) -> Option<Ask> {
        if target == self.atoms.TARGETS {
            return Some(Ask::Targets);
        }
        self.read_targets
            .iter()
            .find(|(atom, _)| *atom == target)
            .map(|(_, name)| Ask::Target(name.clone()))
    }

    /// Reads and deletes our property (deleting asks an INCR owner for the next chunk). A value
    /// longer than the cap is deleted without being read whole.
    fn take_property(&self) -> Result<GetPropertyReply, ReplyError> {
        let length = u32::try_from(self.limits.max_bytes / 4 + 1).unwrap_or(u32::MAX);
        self.take_property_of(length)
    }

    /// [`take_property`](Self::take_property) of at most `length` 32-bit words.
    fn take_property_of(&self, length: u32) -> Result<GetPropertyReply, ReplyError> {
        let reply = self
            .conn
            .get_property(true, self.window, self.property, AtomEnum::ANY, 0, length)?
            .reply()?;
        if reply.bytes_after > 0 {
            self.conn.delete_property(self.window, self.property)?;
        }
        Ok(reply)
    }

    /// The names of the owner's targets (at most [`MAX_TARGETS`]), asked for all at once.
    fn target_names(&self, targets: &[Atom]) -> Result<Vec<(Atom, String)>, ReplyError> {
        let cookies = targets
            .iter()
            .take(MAX_TARGETS)
            .map(|&atom| Ok((atom, self.conn.get_atom_name(atom)?)))
            .collect::<Result<Vec<_>, ConnectionError>>()?;
        let mut named = Vec::with_capacity(cookies.len());
        for (atom, cookie) in cookies {
            match cookie.reply() {
                Ok(reply) => named.push((atom, String::from_utf8_lossy(&reply.name).into_owned())),
                // An atom that does not exist names nothing worth reading.
                Err(ReplyError::X11Error(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(named)
    }

    fn on_answer(
        &mut self,
        ask: &Ask,
        property: Atom,
        time: u32,
        ctx: &mut Context<'_, ClipboardEvent>,
    ) -> Result<(), ReplyOrIdError> {
        let now = Instant::now();
        if property == NONE {
            let step = self.reader.refused(now);
            return Ok(self.follow(step, time, ctx)?);
        }
        let step = if *ask == Ask::Targets {
            // A list longer than any program offers is not read (nor its names asked for).
            let reply = self.take_property_of(MAX_TARGET_ATOMS)?;
            if reply.type_ == Atom::from(AtomEnum::ATOM) && reply.bytes_after == 0 {
                let targets: Vec<Atom> = reply.value32().into_iter().flatten().collect();
                let mut named = self.target_names(&targets)?;
                // The secret's mark counts wherever it is in the list, named or not.
                let hint = self.atoms.PASSWORD_HINT;
                if targets.contains(&hint) && !named.iter().any(|(atom, _)| *atom == hint) {
                    named.push((hint, crate::read::SECRET_HINT.to_owned()));
                }
                let names: Vec<&str> = named.iter().map(|(_, name)| name.as_str()).collect();
                let step = self.reader.targets(&names, now);
                self.read_targets = named;
                step
            } else {
                self.reader.refused(now)
            }
        } else {
            let reply = self.take_property()?;
            self.value_answer(&reply, now)
        };
        Ok(self.follow(step, time, ctx)?)
    }

    /// What a value's answer means to the reader: a value, the start of an INCR transfer, or
    /// one over the cap.
    fn value_answer(&mut self, reply: &GetPropertyReply, now: Instant) -> Step {
        if reply.type_ == self.atoms.INCR {
            let announced = reply.value32().and_then(|mut size| size.next());
            let announced = announced.map_or(0, |size| usize::try_from(size).unwrap_or(usize::MAX));
            self.reader.value(&[], Some(announced), now)
        } else if reply.bytes_after > 0 {
            // More than was asked for, which is already more than the cap.
            let len = reply
                .value
                .len()
                .saturating_add(usize::try_from(reply.bytes_after).unwrap_or(usize::MAX));
            self.reader.oversize(len, now)
        } else {
            self.reader.value(&reply.value, None, now)
        }
    }

    fn follow(
        &mut self,
        mut step: Step,
        time: u32,
        ctx: &mut Context<'_, ClipboardEvent>,
    ) -> Result<(), ConnectionError> {
        loop {
            match step {
                Step::Convert(ask) => {
                    if ask == Ask::Targets {
                        self.start_read();
                    }
                    match self.target_of(&ask) {
                        Some(target) => return self.convert(target, time),
                        // (Never: the reader names only targets the owner listed.)
                        None => step = self.reader.refused(Instant::now()),
                    }
                }
                Step::Wait => return Ok(()),
                Step::Done { outcome, reread } => {
                    if reread {
                        self.start_read();
                        self.convert(self.atoms.TARGETS, CURRENT_TIME)?;
                    }
                    self.report(outcome, ctx);
                    return Ok(());
                }
            }
        }
    }

    /// A new read begins: no targets are known but the one asked of owners that cannot list
    /// theirs.
    fn start_read(&mut self) {
        self.read_targets = vec![(self.atoms.UTF8_STRING, "UTF8_STRING".to_owned())];
        let ring = [
            self.atoms.RRT_SELECTION_0,
            self.atoms.RRT_SELECTION_1,
            self.atoms.RRT_SELECTION_2,
            self.atoms.RRT_SELECTION_3,
        ];
        let at = ring
            .iter()
            .position(|atom| *atom == self.property)
            .unwrap_or(0);
        self.property = ring[(at + 1) % ring.len()];
    }

    fn convert(&self, target: Atom, time: u32) -> Result<(), ConnectionError> {
        self.conn.convert_selection(
            self.window,
            self.atoms.CLIPBOARD,
            target,
            self.property,
            time,
        )?;
        Ok(())
    }

    /// The class of the application owning `window`: the `WM_CLASS` (its class string, else
    /// its instance string) of the window or of its nearest ancestor that has one, looking at
    /// most 8 windows up (a toolkit may own the selection with a hidden child window). Unknown
    /// when a request fails (the window is gone) or none has one; at most 256 bytes read.
    fn class_of(&self, mut window: Window) -> Option<String> {
        for _ in 0..8 {
            let class = self
                .conn
                .get_property(false, window, AtomEnum::WM_CLASS, AtomEnum::STRING, 0, 64)
                .ok()?
                .reply()
                .ok()?;
            if !class.value.is_empty() {
                let mut names = class
                    .value
                    .split(|byte| *byte == 0)
                    .filter(|name| !name.is_empty())
                    .map(|name| String::from_utf8_lossy(name).into_owned());
                let instance = names.next();
                return names.next().or(instance);
            }
            let tree = self.conn.query_tree(window).ok()?.reply().ok()?;
            if tree.parent == NONE || tree.parent == tree.root {
                return None;
            }
            window = tree.parent;
        }
        None
    }

    fn report(&mut self, outcome: Option<Outcome>, ctx: &mut Context<'_, ClipboardEvent>) {
        match outcome {
            Some(Outcome::Read(read)) if read.is_empty() => {
                tracing::debug!("the clipboard holds nothing rrt shares");
            }
            Some(Outcome::Read(read)) => {
                let print = fingerprint(read.iter().map(|r| (r.mime.as_str(), &r.data[..])));
                if self.last_read != Some(print) {
                    self.last_read = Some(print);
                    ctx.emit(ClipboardEvent::Copied {
                        representations: read,
                        application: self.owner_class.clone(),
                    });
                }
            }
            Some(Outcome::Secret) => {
                tracing::info!("a password manager's secret is on the clipboard; not shared");
            }
            None => tracing::debug!("the clipboard changed while it was read"),
        }
    }

    /// Owns the clipboard with `offers`.
    fn set(&mut self, offers: Vec<Offer>) -> Result<(), ReplyError> {
        let offers = usable(offers);
        let cookies = offers
            .iter()
            .map(|offer| self.conn.intern_atom(false, offer.mime.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut atoms = Vec::with_capacity(cookies.len());
        for cookie in cookies {
            atoms.push(cookie.reply()?.atom);
        }
        self.reader.set();
        // What the mesh sends is not news when it comes back from X.
        self.last_read = Some(fingerprint_of_offers(&offers));
        self.owner.set(atoms.into_iter().zip(offers).collect());
        self.conn
            .set_selection_owner(self.window, self.atoms.CLIPBOARD, CURRENT_TIME)?;
        Ok(())
    }
}

impl Worker for X11Clipboard {
    type Event = ClipboardEvent;
    type Command = ClipboardCommand;

    /// An owner that never answers does not stop the clipboard from being followed; a program
    /// that never takes what it pasted, or a mesh that never provides it, holds nothing forever.
    fn deadline(&self) -> Option<Instant> {
        self.reader
            .deadline()
            .into_iter()
            .chain(self.owner.deadline())
            .min()
    }

    fn on_deadline(&mut self, now: Instant, ctx: &mut Context<'_, ClipboardEvent>) -> Control {
        if self
            .reader
            .deadline()
            .is_some_and(|deadline| deadline <= now)
        {
            tracing::debug!("the clipboard's owner did not answer; giving up on that value");
            let step = self.reader.timed_out(now);
            if let Err(error) = self.follow(step, CURRENT_TIME, ctx) {
                return self.control(Err(error.to_string()));
            }
        }
        if self
            .owner
            .deadline()
            .is_some_and(|deadline| deadline <= now)
        {
            self.owner.on_deadline(now);
            if let Err(error) = self.perform(ctx) {
                return self.control(Err(error.to_string()));
            }
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
        let result = match command {
            ClipboardCommand::Set(offers) => self.set(offers).map_err(|error| error.to_string()),
            ClipboardCommand::Provide { request, source } => {
                self.owner.provide(request, source, Instant::now());
                Ok(())
            }
        };
        let result = result.and_then(|()| self.perform(ctx).map_err(|error| error.to_string()));
        match self.control(result) {
            Control::Continue => self.pump(ctx),
            other => other,
        }
    }
}
