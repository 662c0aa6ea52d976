//! Serving the value rrt owns to other X11 programs, as a sans-IO state machine: which targets
//! there are, what each is answered with, and the INCR transfers of values larger than one
//! chunk. The driver performs the [`Action`]s it queues.
//!
//! ```text
//!  SelectionRequest ─▶ TARGETS: the offered types (and text's aliases) ─▶ Notify
//!                      ≤ one chunk: Write ─▶ Notify
//!                      larger: Watch the requestor's window, Write INCR(size) ─▶ Notify
//!                        PropertyNotify(deleted) ─▶ Write the next chunk … an empty one: done
//!                      Source::Later: Wanted ─▶ waits … Provide ─▶ served as above, or refused
//! ```
//!
//! Chunks are at most [`MAX_CHUNK`] (and what the server takes in one request): a large value
//! never sits whole in the server or, served from a file, in this process, and transfers to
//! several programs interleave, each advancing as its program takes a chunk. A transfer whose
//! program stops taking chunks is dropped after [`SEND_TIMEOUT`]; one whose file fails to read
//! is dropped at once (its program is left to its own timeout: an empty chunk would tell it the
//! value was whole).

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use x11rb::{
    NONE,
    protocol::xproto::{Atom, Timestamp, Window},
};

use crate::{
    Offer, Source, TEXT,
    later::{Asked, Later},
    source::Body,
};

/// The largest chunk of a value written at once (GTK's choice too).
pub(crate) const MAX_CHUNK: usize = 256 * 1024;

/// How long a program may take to take one chunk of an INCR transfer.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The most INCR transfers at once; more requests are refused.
const MAX_SENDING: usize = 32;

/// The atoms the owner answers with, interned by the driver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnerAtoms {
    pub(crate) clipboard: Atom,
    pub(crate) targets: Atom,
    pub(crate) incr: Atom,
    pub(crate) atom: Atom,
    /// Text's names: `UTF8_STRING`, `STRING`, `TEXT`, `text/plain;charset=utf-8`.
    pub(crate) utf8_string: Atom,
    pub(crate) string: Atom,
    pub(crate) text: Atom,
    pub(crate) text_plain_utf8: Atom,
}

/// A program's request for the selection (a `SelectionRequest`), as much as answering needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) requestor: Window,
    pub(crate) selection: Atom,
    pub(crate) target: Atom,
    /// Where the answer goes (`NONE` from obsolete programs, which expect the target's name).
    pub(crate) property: Atom,
    pub(crate) time: Timestamp,
}

/// What the driver does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Replace `property` of `requestor` with 8-bit `data` of type `kind`.
    Write8 {
        requestor: Window,
        property: Atom,
        kind: Atom,
        data: Vec<u8>,
    },
    /// Replace `property` of `requestor` with 32-bit `data` of type `kind`.
    Write32 {
        requestor: Window,
        property: Atom,
        kind: Atom,
        data: Vec<u32>,
    },
    /// Follow property changes of `window` (or, `false`, stop).
    Watch { window: Window, on: bool },
    /// Tell the requestor its request is answered in `property`, or refused (`NONE`).
    Notify { request: Request, property: Atom },
    /// Publish [`ClipboardEvent::Wanted`](crate::ClipboardEvent::Wanted).
    Wanted { request: u64, mime: String },
}

/// A paste waiting for a [`Source::Later`]: the request and the type to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiting {
    request: Request,
    kind: Atom,
}

/// An INCR transfer under way.
#[derive(Debug)]
struct Sending {
    body: Body,
    kind: Atom,
    until: Instant,
}

/// The value rrt owns and the transfers of it.
#[derive(Debug)]
pub(crate) struct Owner {
    atoms: OwnerAtoms,
    /// Our own window: a request from it is our reader converting a clipboard we own (a copy
    /// elsewhere overtaken by our own `Set`), refused at once — served, it would ask the mesh for
    /// a `Later` value nobody pasted and send an INCR to ourselves.
    window: Window,
    chunk: usize,
    /// The offers with their targets' atoms, while rrt owns the clipboard.
    offers: Option<Vec<(Atom, Offer)>>,
    later: Later<Waiting>,
    /// By requestor window and property.
    sending: HashMap<(Window, Atom), Sending>,
    actions: VecDeque<Action>,
}

impl Owner {
    /// An owner of nothing yet, writing chunks of at most `max_request` bytes (less the
    /// request's header) and [`MAX_CHUNK`].
    pub(crate) fn new(atoms: OwnerAtoms, window: Window, max_request: usize) -> Self {
        Self {
            atoms,
            window,
            chunk: max_request.saturating_sub(64).clamp(1, MAX_CHUNK),
            offers: None,
            later: Later::default(),
            sending: HashMap::new(),
            actions: VecDeque::new(),
        }
    }

    /// rrt owns the clipboard with these offers (each with its type's atom). Pastes waiting for
    /// the previous value are refused; transfers under way go on.
    pub(crate) fn set(&mut self, offers: Vec<(Atom, Offer)>) {
        self.refuse_waiting();
        self.offers = Some(offers);
    }

    /// Another program owns the clipboard.
    pub(crate) fn cleared(&mut self) {
        self.refuse_waiting();
        self.offers = None;
    }

    /// Whether rrt owns the clipboard.
    pub(crate) fn owns(&self) -> bool {
        self.offers.is_some()
    }

    /// A program asks for the selection.
    pub(crate) fn request(&mut self, request: Request, now: Instant) {
        let request = Request {
            property: if request.property == NONE {
                request.target
            } else {
                request.property
            },
            ..request
        };
        if request.selection != self.atoms.clipboard || request.requestor == self.window {
            return self.refuse(request);
        }
        if request.target == self.atoms.targets
            && let Some(targets) = self.targets()
        {
            self.actions.push_back(Action::Write32 {
                requestor: request.requestor,
                property: request.property,
                kind: self.atoms.atom,
                data: targets,
            });
            return self.answered(request);
        }
        let Some((offer, kind)) = self
            .find(request.target)
            .map(|(offer, kind)| (offer.clone(), kind))
        else {
            return self.refuse(request);
        };
        let waiting = Waiting { request, kind };
        match offer.source {
            Source::Later => match self.later.ask(&offer.mime, waiting, now) {
                Asked::Publish(id) => self.actions.push_back(Action::Wanted {
                    request: id,
                    mime: offer.mime,
                }),
                Asked::Wait => {}
                Asked::Serve(waiting, source) => self.serve(waiting, &source, now),
                Asked::Refuse(waiting) => self.refuse(waiting.request),
            },
            Source::Bytes(bytes) if request.target == self.atoms.string => {
                let (kind, source) = match latin1(&bytes) {
                    Some(latin1) => (self.atoms.string, Source::Bytes(latin1.into())),
                    None => (kind, Source::Bytes(bytes)),
                };
                self.serve(Waiting { request, kind }, &source, now);
            }
            source => self.serve(waiting, &source, now),
        }
    }

    /// `property` of `window` was deleted: a requestor took an INCR chunk (or the announcement).
    pub(crate) fn deleted(&mut self, window: Window, property: Atom, now: Instant) {
        let key = (window, property);
        let Some(sending) = self.sending.get_mut(&key) else {
            return;
        };
        let data = match sending.body.peek(self.chunk) {
            Ok(bytes) => bytes.to_vec(),
            Err(error) => {
                tracing::warn!(%error, "reading a value being pasted failed; transfer dropped");
                return self.end(key);
            }
        };
        sending.body.consume(data.len());
        sending.until = now + SEND_TIMEOUT;
        let last = data.is_empty();
        self.actions.push_back(Action::Write8 {
            requestor: window,
            property,
            kind: sending.kind,
            data,
        });
        if last {
            self.end(key);
        }
    }

    /// The answer to a [`Action::Wanted`] request.
    pub(crate) fn provide(&mut self, request: u64, source: Option<Source>, now: Instant) {
        let Some((waiting, source)) = self.later.provide(request, source) else {
            tracing::debug!(request, "an answer to a request no paste waits for");
            return;
        };
        for waiting in waiting {
            match &source {
                Some(source) => self.serve(waiting, source, now),
                None => self.refuse(waiting.request),
            }
        }
    }

    /// When [`Owner::on_deadline`] is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let sending = self.sending.values().map(|sending| sending.until).min();
        sending.into_iter().chain(self.later.deadline()).min()
    }

    /// Gives up on pastes waiting too long for the mesh and on programs that stopped taking
    /// chunks.
    pub(crate) fn on_deadline(&mut self, now: Instant) {
        for (mime, waiting) in self.later.expire(now) {
            tracing::warn!(
                mime,
                "the mesh did not provide a pasted value in time; the paste is refused"
            );
            for waiting in waiting {
                self.refuse(waiting.request);
            }
        }
        let stalled: Vec<_> = self
            .sending
            .iter()
            .filter(|(_, sending)| sending.until <= now)
            .map(|(key, _)| *key)
            .collect();
        for key in stalled {
            tracing::debug!(
                requestor = key.0,
                "a program stopped taking what it pasted; transfer dropped"
            );
            self.end(key);
        }
    }

    /// The next thing for the driver to do.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The targets answered to `TARGETS`, while rrt owns the clipboard.
    fn targets(&self) -> Option<Vec<Atom>> {
        let atoms = &self.atoms;
        let mut targets = vec![atoms.targets];
        for (atom, offer) in self.offers.as_ref()? {
            let names = if offer.mime == TEXT {
                vec![
                    atoms.utf8_string,
                    atoms.string,
                    atoms.text,
                    atoms.text_plain_utf8,
                ]
            } else {
                vec![*atom]
            };
            for name in names {
                if !targets.contains(&name) {
                    targets.push(name);
                }
            }
        }
        Some(targets)
    }

    /// The offer that answers `target`, and the type to answer with.
    fn find(&self, target: Atom) -> Option<(&Offer, Atom)> {
        let atoms = &self.atoms;
        let offers = self.offers.as_ref()?;
        let text_names = [
            atoms.utf8_string,
            atoms.string,
            atoms.text,
            atoms.text_plain_utf8,
        ];
        if text_names.contains(&target)
            && let Some((_, text)) = offers.iter().find(|(_, offer)| offer.mime == TEXT)
        {
            return Some((text, atoms.utf8_string));
        }
        offers
            .iter()
            .find(|(atom, _)| *atom == target)
            .map(|(atom, offer)| (offer, *atom))
    }

    fn serve(&mut self, waiting: Waiting, source: &Source, now: Instant) {
        let Waiting { request, kind } = waiting;
        let opened = Body::open(source, self.chunk).and_then(|body| {
            let Some(body) = body else {
                return Ok(None);
            };
            let remaining = body.remaining()?;
            Ok(Some((body, remaining)))
        });
        let (mut body, remaining) = match opened {
            Ok(Some(opened)) => opened,
            Ok(None) => return self.refuse(request),
            Err(error) => {
                tracing::warn!(%error, ?source, "cannot read a value to paste; refused");
                return self.refuse(request);
            }
        };
        if remaining <= self.chunk as u64 {
            let mut data = Vec::new();
            let read = std::io::Read::read_to_end(
                &mut std::io::Read::take(&mut body, self.chunk as u64),
                &mut data,
            );
            if let Err(error) = read {
                tracing::warn!(%error, ?source, "cannot read a value to paste; refused");
                return self.refuse(request);
            }
            self.actions.push_back(Action::Write8 {
                requestor: request.requestor,
                property: request.property,
                kind,
                data,
            });
            return self.answered(request);
        }
        let key = (request.requestor, request.property);
        if self.sending.len() >= MAX_SENDING || self.sending.contains_key(&key) {
            tracing::warn!("too many pastes under way at once; refused");
            return self.refuse(request);
        }
        if !self
            .sending
            .keys()
            .any(|(window, _)| *window == request.requestor)
        {
            self.actions.push_back(Action::Watch {
                window: request.requestor,
                on: true,
            });
        }
        self.actions.push_back(Action::Write32 {
            requestor: request.requestor,
            property: request.property,
            kind: self.atoms.incr,
            // A lower bound, as INCR's size may be.
            data: vec![u32::try_from(remaining).unwrap_or(u32::MAX)],
        });
        self.sending.insert(
            key,
            Sending {
                body,
                kind,
                until: now + SEND_TIMEOUT,
            },
        );
        self.answered(request);
    }

    fn end(&mut self, key: (Window, Atom)) {
        self.sending.remove(&key);
        let window = key.0;
        if !self.sending.keys().any(|(other, _)| *other == window) {
            self.actions.push_back(Action::Watch { window, on: false });
        }
    }

    fn refuse_waiting(&mut self) {
        for waiting in self.later.clear() {
            self.refuse(waiting.request);
        }
    }

    fn answered(&mut self, request: Request) {
        let property = request.property;
        self.actions.push_back(Action::Notify { request, property });
    }

    fn refuse(&mut self, request: Request) {
        self.actions.push_back(Action::Notify {
            request,
            property: NONE,
        });
    }
}

/// `bytes` in ISO 8859-1 (X11's `STRING`), when they are UTF-8 text with no other characters.
fn latin1(bytes: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(bytes)
        .ok()?
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::{io::Write, sync::Arc};

    use super::*;

    const ATOMS: OwnerAtoms = OwnerAtoms {
        clipboard: 1,
        targets: 2,
        incr: 3,
        atom: 4,
        utf8_string: 5,
        string: 6,
        text: 7,
        text_plain_utf8: 8,
    };
    const PNG: Atom = 20;
    const HTML: Atom = 21;
    const PRIMARY: Atom = 30;
    const PROPERTY: Atom = 40;
    /// Our own window.
    const OURS: Window = 99;

    fn request(requestor: Window, target: Atom) -> Request {
        Request {
            requestor,
            selection: ATOMS.clipboard,
            target,
            property: PROPERTY,
            time: 0,
        }
    }

    fn bytes(data: &[u8]) -> Source {
        Source::Bytes(Arc::from(data))
    }

    fn offer(mime: &str, source: Source) -> Offer {
        Offer {
            mime: mime.to_owned(),
            source,
        }
    }

    fn actions(owner: &mut Owner) -> Vec<Action> {
        std::iter::from_fn(|| owner.poll_action()).collect()
    }

    fn answered(request: Request) -> Action {
        Action::Notify {
            request,
            property: request.property,
        }
    }

    fn refused(request: Request) -> Action {
        Action::Notify {
            request,
            property: NONE,
        }
    }

    fn write8(requestor: Window, kind: Atom, data: &[u8]) -> Action {
        Action::Write8 {
            requestor,
            property: PROPERTY,
            kind,
            data: data.to_vec(),
        }
    }

    /// An owner of text and a PNG, writing chunks of 100 bytes.
    fn owner_of_text_and_png(png: Source) -> Owner {
        let mut owner = Owner::new(ATOMS, OURS, 164);
        owner.set(vec![
            (PNG, offer("image/png", png)),
            (ATOMS.text_plain_utf8, offer(TEXT, bytes("café".as_bytes()))),
        ]);
        owner
    }

    #[test]
    fn targets_list_every_offer_and_text_under_all_its_names() {
        let now = Instant::now();
        let mut owner = owner_of_text_and_png(bytes(b"png"));
        let asked = request(9, ATOMS.targets);
        owner.request(asked, now);
        assert_eq!(
            actions(&mut owner),
            [
                Action::Write32 {
                    requestor: 9,
                    property: PROPERTY,
                    kind: ATOMS.atom,
                    data: vec![2, PNG, 5, 6, 7, 8],
                },
                answered(asked)
            ]
        );
    }

    #[test]
    fn small_values_are_written_whole_text_under_any_name() {
        let now = Instant::now();
        let mut owner = owner_of_text_and_png(bytes(b"png"));
        for (target, kind, data) in [
            (PNG, PNG, b"png".as_slice()),
            (ATOMS.utf8_string, ATOMS.utf8_string, "café".as_bytes()),
            (ATOMS.text, ATOMS.utf8_string, "café".as_bytes()),
            (ATOMS.string, ATOMS.string, b"caf\xe9"),
        ] {
            let asked = request(9, target);
            owner.request(asked, now);
            assert_eq!(
                actions(&mut owner),
                [write8(9, kind, data), answered(asked)]
            );
        }
        let html = request(9, HTML);
        owner.request(html, now);
        assert_eq!(actions(&mut owner), [refused(html)], "not offered");
        let primary = Request {
            selection: PRIMARY,
            ..request(9, PNG)
        };
        owner.request(primary, now);
        assert_eq!(actions(&mut owner), [refused(primary)], "not our selection");
    }

    #[test]
    fn text_beyond_latin1_is_served_as_utf8_to_string_requests() {
        let mut owner = Owner::new(ATOMS, OURS, 164);
        owner.set(vec![(
            ATOMS.text_plain_utf8,
            offer(TEXT, bytes("✓".as_bytes())),
        )]);
        let asked = request(9, ATOMS.string);
        owner.request(asked, Instant::now());
        assert_eq!(
            actions(&mut owner),
            [
                write8(9, ATOMS.utf8_string, "✓".as_bytes()),
                answered(asked)
            ]
        );
    }

    /// Takes every chunk of the INCR transfer to `requestor` as the program would.
    fn take_chunks(owner: &mut Owner, requestor: Window, now: Instant) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        loop {
            owner.deleted(requestor, PROPERTY, now);
            let mut last = false;
            for action in actions(owner) {
                match action {
                    Action::Write8 { data, kind, .. } => {
                        assert_eq!(kind, PNG);
                        last = data.is_empty();
                        chunks.push(data);
                    }
                    Action::Watch { window, on: false } => assert_eq!(window, requestor),
                    other => panic!("unexpected {other:?}"),
                }
            }
            if last {
                return chunks;
            }
        }
    }

    #[test]
    fn a_large_value_goes_in_incr_chunks_and_transfers_interleave() {
        let now = Instant::now();
        let png: Vec<u8> = (0..250u8).collect();
        let mut owner = owner_of_text_and_png(bytes(&png));
        let (first, second) = (request(9, PNG), request(10, PNG));
        owner.request(first, now);
        owner.request(second, now);
        let incr = |requestor| Action::Write32 {
            requestor,
            property: PROPERTY,
            kind: ATOMS.incr,
            data: vec![250],
        };
        let watch = |window| Action::Watch { window, on: true };
        assert_eq!(
            actions(&mut owner),
            [
                watch(9),
                incr(9),
                answered(first),
                watch(10),
                incr(10),
                answered(second)
            ]
        );
        owner.deleted(9, PROPERTY, now);
        assert_eq!(actions(&mut owner), [write8(9, PNG, &png[..100])]);
        owner.deleted(9, 99, now);
        assert!(actions(&mut owner).is_empty(), "another property");
        let rest = take_chunks(&mut owner, 10, now);
        assert_eq!(rest.concat(), png);
        assert_eq!(rest.len(), 4, "three chunks and the empty one");
        let rest = take_chunks(&mut owner, 9, now);
        assert_eq!([&png[..100], &rest.concat()].concat(), png);
        assert_eq!(owner.deadline(), None);
    }

    #[test]
    fn a_file_is_served_in_chunks_and_a_missing_one_is_refused() {
        let now = Instant::now();
        let png: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut file = tempfile::NamedTempFile::new().expect("a file");
        file.write_all(&png).expect("write");
        let mut owner = owner_of_text_and_png(Source::File(file.path().to_owned()));
        owner.request(request(9, PNG), now);
        actions(&mut owner);
        assert_eq!(take_chunks(&mut owner, 9, now).concat(), png);

        let mut missing = owner_of_text_and_png(Source::File("/nonexistent/png".into()));
        let asked = request(9, PNG);
        missing.request(asked, now);
        assert_eq!(actions(&mut missing), [refused(asked)]);
    }

    #[test]
    fn a_program_that_stops_taking_chunks_is_dropped() {
        let now = Instant::now();
        let mut owner = owner_of_text_and_png(bytes(&[7; 250]));
        owner.request(request(9, PNG), now);
        actions(&mut owner);
        assert_eq!(owner.deadline(), Some(now + SEND_TIMEOUT));
        owner.on_deadline(now + SEND_TIMEOUT);
        assert_eq!(
            actions(&mut owner),
            [Action::Watch {
                window: 9,
                on: false
            }]
        );
        assert_eq!(owner.deadline(), None);
    }

    fn later_owner() -> Owner {
        let mut owner = Owner::new(ATOMS, OURS, 164);
        owner.set(vec![
            (PNG, offer("image/png", Source::Later)),
            (HTML, offer("text/html", Source::Later)),
        ]);
        owner
    }

    fn wanted(owner: &mut Owner) -> u64 {
        match actions(owner).as_slice() {
            [Action::Wanted { request, mime }] if mime == "image/png" => *request,
            other => panic!("expected Wanted for image/png, got {other:?}"),
        }
    }

    #[test]
    fn later_values_are_asked_for_once_and_serve_every_waiting_paste() {
        let now = Instant::now();
        let mut owner = later_owner();
        let (first, second) = (request(9, PNG), request(10, PNG));
        owner.request(first, now);
        let id = wanted(&mut owner);
        owner.request(second, now);
        assert!(actions(&mut owner).is_empty(), "waits for the same answer");
        owner.provide(id, Some(bytes(b"png")), now);
        assert_eq!(
            actions(&mut owner),
            [
                write8(9, PNG, b"png"),
                answered(first),
                write8(10, PNG, b"png"),
                answered(second)
            ]
        );
        let third = request(11, PNG);
        owner.request(third, now);
        assert_eq!(
            actions(&mut owner),
            [write8(11, PNG, b"png"), answered(third)],
            "what was provided serves later pastes"
        );
    }

    #[test]
    fn later_values_not_provided_in_time_or_at_all_are_refused() {
        let now = Instant::now();
        let mut owner = later_owner();
        let first = request(9, PNG);
        owner.request(first, now);
        let id = wanted(&mut owner);
        owner.provide(id, None, now);
        assert_eq!(actions(&mut owner), [refused(first)]);
        owner.provide(id, Some(bytes(b"late")), now);
        assert!(actions(&mut owner).is_empty(), "answered once");

        let second = request(9, PNG);
        owner.request(second, now);
        wanted(&mut owner);
        assert_eq!(owner.deadline(), Some(now + crate::later::LATER_TIMEOUT));
        owner.on_deadline(now + crate::later::LATER_TIMEOUT);
        assert_eq!(actions(&mut owner), [refused(second)]);
    }

    #[test]
    fn a_new_value_or_a_new_owner_refuses_waiting_pastes() {
        let now = Instant::now();
        let mut owner = later_owner();
        let first = request(9, PNG);
        owner.request(first, now);
        let id = wanted(&mut owner);
        owner.set(vec![(PNG, offer("image/png", bytes(b"new")))]);
        assert_eq!(actions(&mut owner), [refused(first)]);
        owner.provide(id, Some(bytes(b"old")), now);
        assert!(actions(&mut owner).is_empty());

        let mut owner = later_owner();
        let second = request(9, PNG);
        owner.request(second, now);
        wanted(&mut owner);
        owner.cleared();
        assert!(!owner.owns());
        assert_eq!(actions(&mut owner), [refused(second)]);
        let third = request(9, ATOMS.targets);
        owner.request(third, now);
        assert_eq!(actions(&mut owner), [refused(third)]);
    }

    #[test]
    fn a_request_from_our_own_window_is_refused_and_asks_the_mesh_nothing() {
        let now = Instant::now();
        let mut owner = owner_of_text_and_png(Source::Later);
        let ours = request(OURS, PNG);
        owner.request(ours, now);
        assert_eq!(actions(&mut owner), [refused(ours)]);
    }
}
