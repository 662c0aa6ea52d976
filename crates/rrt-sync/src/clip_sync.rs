//! The clipboard's sync session as a sans-IO machine, shaped like [`DocSync`](crate::DocSync):
//! the driver feeds local copies, peers' arrivals, departures and messages at `now`, and carries
//! out what [`ClipSync::poll_outgoing`] and [`ClipSync::poll_event`] return; it decides nothing.
//!
//! ```text
//! local copy ──▶ stage_copy ─▶ (driver saves the staged register) ─▶ commit ─▶ broadcast, event
//! peer up    ──▶ clipboard_have (it can say what it has) | the history, oldest first
//! peer's have ─▶ the entries it lacks, newest that fit 32 MiB, oldest first; once per link
//! update in  ──▶ merged (stamps beyond the clock bound refused, reported once per peer)
//!            └─▶ what changed the register is forwarded (see `outgoing`: every peer but its
//!                sender, and no clique member if it came from one)
//! ```
//!
//! What this replica *shows* — its shown value and history, and the `Changed` events — leaves out
//! what its [`Pauses`] hide; the register keeps and relays everything (see `pauses`).
//!
//! A local copy is two-phase because refused must mean not applied: the staged register is the
//! register as it would be, which the driver writes to disk; only once that succeeded does it
//! replace this one and go to peers. A failed save drops the staged register and nothing
//! changed, here or anywhere.

use std::collections::{BTreeSet, HashSet, VecDeque};

use uuid::Uuid;

use crate::{
    clip_message::{ClipMessage, ClipStamp},
    clipboard::{ClipEntry, Clipboard, Copied, Merge},
    content::{ContentError, check_content},
    hlc::{ClockError, Stamp, Timestamp},
    outgoing::{Arrival, Neighbour, Neighbours, Outgoing},
    pauses::{self, Pauses},
    provenance::Provenance,
};

/// The capability of a peer that says which clipboard entries it has on connect
/// ([`ClipMessage::ClipboardHave`]) and is sent only the others.
pub const CLIPBOARD_HAVE: &str = "clipboard_have";
/// The most stamps of a `clipboard_have` taken into account: a history is a few dozen entries.
const MAX_STAMPS: usize = 4096;
/// The most clipboard updates, in bytes of JSON, sent to one peer on connect.
const CATCH_UP_BUDGET: usize = 32 * 1024 * 1024;

/// What the driver must know of.
#[derive(Debug, Clone, PartialEq)]
pub enum ClipEvent {
    /// The clipboard has a new shown value: the newest its pauses do not hide.
    Changed(ClipEntry),
    /// A peer's entry was refused for its stamp; reported once per peer (a peer with a broken
    /// clock sends every update from the future).
    ClockRefused {
        /// The peer it came from.
        from: Uuid,
        /// The instance the entry names as its writer.
        origin: Uuid,
        /// Why.
        error: ClockError,
    },
    /// A peer's entry was refused for its content (a representation that is not what it says);
    /// reported once per peer.
    ContentRefused {
        /// The peer it came from.
        from: Uuid,
        /// Why.
        error: ContentError,
    },
}

/// A local copy that would not fit a frame: refused before anything changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a clipboard value of {len} bytes (as a message) is over the frame limit of {max}")]
pub struct TooLarge {
    /// The message's size.
    pub len: usize,
    /// The limit.
    pub max: u32,
}

/// A local copy, made on a copy of the register: see [`ClipSync::stage_copy`].
#[derive(Debug, Clone)]
pub struct Staged {
    entry: ClipEntry,
    register: Clipboard,
}

impl Staged {
    /// The register with the copy in it, to be saved before [`ClipSync::commit`].
    pub fn register(&self) -> &Clipboard {
        &self.register
    }

    /// The new entry.
    pub fn entry(&self) -> &ClipEntry {
        &self.entry
    }
}

/// One replica's clipboard and its sync state with every peer.
#[derive(Debug)]
pub struct ClipSync {
    clipboard: Clipboard,
    neighbours: Neighbours,
    /// Peers whose `clipboard_have` was answered on their current link.
    answered: BTreeSet<Uuid>,
    /// Peers already reported for a stamp beyond the clock bound.
    warned: BTreeSet<Uuid>,
    outgoing: VecDeque<Outgoing<ClipMessage>>,
    events: VecDeque<ClipEvent>,
    /// Whether peers changed the register since the last [`ClipSync::take_dirty`].
    dirty: bool,
    /// The stamp of the shown value last reported.
    shown: Option<Stamp>,
}

impl ClipSync {
    /// The session of `clipboard` (loaded from disk, say).
    pub fn new(clipboard: Clipboard) -> Self {
        Self::with_pauses(clipboard, Pauses::default())
    }

    /// The session of `clipboard` with these `pauses`.
    pub fn with_pauses(mut clipboard: Clipboard, pauses: Pauses) -> Self {
        clipboard.set_pauses(pauses);
        let mut sync = Self {
            clipboard,
            neighbours: Neighbours::default(),
            answered: BTreeSet::new(),
            warned: BTreeSet::new(),
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
            dirty: false,
            shown: None,
        };
        sync.shown = sync.shown().map(|entry| entry.stamp);
        sync
    }

    /// The register: every entry kept, shown or not.
    pub fn clipboard(&self) -> &Clipboard {
        &self.clipboard
    }

    /// The shown value: the newest entry the pauses do not hide.
    pub fn shown(&self) -> Option<&ClipEntry> {
        self.clipboard.shown_history().next()
    }

    /// The shown history, newest first.
    pub fn shown_history(&self) -> impl Iterator<Item = &ClipEntry> {
        self.clipboard.shown_history()
    }

    /// The pauses in effect.
    pub fn pauses(&self) -> &Pauses {
        self.clipboard.pauses()
    }

    /// New pauses: copies from now on are withheld from the new `send` devices, and the shown
    /// value is the newest the new rules do not hide — reported if it is another (a resumed
    /// device's newer value shows at once; pausing the device whose value shows puts the one
    /// before it back).
    pub fn set_pauses(&mut self, pauses: Pauses) {
        self.clipboard.set_pauses(pauses);
        if let Some(entry) = self.shown().filter(|entry| self.shown != Some(entry.stamp)) {
            self.report(entry.clone());
        }
    }

    /// Reports the shown value if it is newer than the one last reported. An older one (what
    /// shows once the shown value aged out or was unpinned) is not: the desktop keeps the value
    /// it has rather than going back to an old one.
    fn report_newer_shown(&mut self) {
        if let Some(entry) = self.shown().filter(|entry| self.shown < Some(entry.stamp)) {
            self.report(entry.clone());
        }
    }

    fn report(&mut self, entry: ClipEntry) {
        self.shown = Some(entry.stamp);
        self.events.push_back(ClipEvent::Changed(entry));
    }

    /// A local copy at wall-clock `now_ms`: stamped (the clock moves on, so copies
    /// staged together never share a stamp) and put in a copy of the register, for the driver to
    /// save; nothing else here changes until [`ClipSync::commit`], and other copies and peers'
    /// entries may come in meanwhile. It is withheld from the devices paused for sending.
    /// `None` when it already is the shown value (an echo);
    /// an error when its message would not fit a peer's frame of `max_frame` (large
    /// representations are announced, not inline, and do not count).
    pub fn stage_copy(
        &mut self,
        copied: Copied,
        now_ms: u64,
        max_frame: u32,
    ) -> Result<Option<Staged>, TooLarge> {
        if self.shown().is_some_and(|shown| shown.holds(&copied)) {
            return Ok(None);
        }
        let mut entry = self.clipboard.stamp(copied, now_ms);
        entry.withheld_from = self.pauses().withheld_from();
        let len = update_len(&entry);
        if len > max_frame as usize {
            return Err(TooLarge {
                len,
                max: max_frame,
            });
        }
        let mut register = self.clipboard.clone();
        register.keep(entry.clone());
        Ok(Some(Staged { entry, register }))
    }

    /// The staged copy is on disk: it joins the register (the current value, unless a newer
    /// entry came in while it was saved), goes to every peer, and is reported if current. If the
    /// register now holds more than what was saved (peers' entries, other copies that came in
    /// while it was written), it is dirty: a save of those, queued before this copy's commit,
    /// held the register without the copy, and the disk must end up with both.
    pub fn commit(&mut self, staged: Staged) -> ClipEntry {
        self.clipboard.keep(staged.entry.clone());
        let stamps = |register: &Clipboard| {
            register
                .history()
                .iter()
                .map(|entry| entry.stamp)
                .collect::<Vec<_>>()
        };
        if stamps(&self.clipboard) != stamps(&staged.register) {
            self.dirty = true;
        }
        self.outgoing.push_back(Outgoing::Broadcast {
            message: update(&staged.entry),
            except: None,
        });
        self.report_newer_shown();
        staged.entry
    }

    /// A peer came up over a link that sits in the mesh as `neighbour`: it gets what it lacks of
    /// the history — only that, if it can say what it has, everything otherwise (an older peer).
    pub fn peer_up(&mut self, peer: Uuid, neighbour: Neighbour, capabilities: &[String]) {
        self.neighbours.up(peer, neighbour);
        if capabilities.iter().any(|c| c == CLIPBOARD_HAVE) {
            let stamps = self.clipboard.history().iter().map(clip_stamp).collect();
            self.outgoing
                .push_back(Outgoing::To(peer, ClipMessage::ClipboardHave { stamps }));
        } else {
            self.send_history(peer, &HashSet::new());
        }
    }

    /// A peer went down: its next link starts afresh.
    pub fn peer_down(&mut self, peer: Uuid) {
        self.neighbours.down(peer);
        self.answered.remove(&peer);
        self.warned.remove(&peer);
    }

    /// A message from `from` at wall-clock `now_ms`: a `clipboard_update` or `clipboard_have`
    /// (others are ignored).
    pub fn handle(&mut self, from: Uuid, message: ClipMessage, now_ms: u64) {
        self.receive(from, message, Arrival::Direct, now_ms);
    }

    /// A message a broadcast tree delivered from `from` (its last hop): merged like
    /// [`ClipSync::handle`]'s, never forwarded — the tree carries it on.
    pub fn handle_spread(&mut self, from: Uuid, message: ClipMessage, now_ms: u64) {
        self.receive(from, message, Arrival::Spread, now_ms);
    }

    fn receive(&mut self, from: Uuid, message: ClipMessage, arrival: Arrival, now_ms: u64) {
        match message {
            ClipMessage::ClipboardUpdate {
                data,
                content,
                timestamp,
                counter,
                source_instance,
                provenance,
                withheld_from,
            } => {
                if let Err(error) = check_content(&content) {
                    if self.warned.insert(from) {
                        self.events
                            .push_back(ClipEvent::ContentRefused { from, error });
                    }
                    return;
                }
                let entry = ClipEntry {
                    text: data.into(),
                    content,
                    stamp: Stamp {
                        time: Timestamp {
                            wall_ms: timestamp,
                            counter,
                        },
                        origin: source_instance,
                    },
                    provenance: provenance.map(Provenance::bounded),
                    withheld_from: pauses::bounded(withheld_from),
                };
                self.merge(from, entry, arrival, now_ms);
            }
            // Once per link: each answer queues the history, which a peer must not be able to
            // ask for again and again with a few bytes.
            ClipMessage::ClipboardHave { stamps } if self.answered.insert(from) => {
                let has = stamps.into_iter().take(MAX_STAMPS).collect();
                self.send_history(from, &has);
            }
            _ => {}
        }
    }

    fn merge(&mut self, from: Uuid, entry: ClipEntry, arrival: Arrival, now_ms: u64) {
        let merged = match self.clipboard.merge(entry.clone(), now_ms) {
            Ok(merged) => merged,
            Err(error) => {
                if self.warned.insert(from) {
                    let origin = entry.stamp.origin;
                    self.events.push_back(ClipEvent::ClockRefused {
                        from,
                        origin,
                        error,
                    });
                }
                return;
            }
        };
        if matches!(merged, Merge::Stale | Merge::Duplicate) {
            return;
        }
        self.dirty = true;
        self.report_newer_shown();
        self.outgoing
            .extend(self.neighbours.forward(from, arrival, update(&entry)));
    }

    /// Queues for `to` what [`catch_up`] picks of the history, oldest first.
    fn send_history(&mut self, to: Uuid, has: &HashSet<ClipStamp>) {
        for entry in catch_up(self.clipboard.history(), has, CATCH_UP_BUDGET)
            .into_iter()
            .rev()
        {
            self.outgoing.push_back(Outgoing::To(to, update(entry)));
        }
    }

    /// The next message to send.
    pub fn poll_outgoing(&mut self) -> Option<Outgoing<ClipMessage>> {
        self.outgoing.pop_front()
    }

    /// The next thing the driver must know of.
    pub fn poll_event(&mut self) -> Option<ClipEvent> {
        self.events.pop_front()
    }

    /// Pins (or unpins) the entry with `stamp` on this replica: kept whatever its age. Returns
    /// whether anything changed; the register is then to be saved.
    pub fn set_pinned(&mut self, stamp: Stamp, pinned: bool) -> bool {
        let changed = if pinned {
            !self.clipboard.pinned().contains(&stamp) && self.clipboard.pin(stamp)
        } else {
            self.clipboard.unpin(&stamp)
        };
        self.dirty |= changed;
        changed
    }

    /// The register to persist, if peers changed it since the last call.
    pub fn take_dirty(&mut self) -> Option<Clipboard> {
        std::mem::take(&mut self.dirty).then(|| self.clipboard.clone())
    }
}

/// The entries of `history` (newest first) a peer that `has` these stamps lacks, newest first,
/// as many as fit `budget` bytes of JSON — and always the newest it lacks. The network thread
/// closes a link with more than 64 MiB unsent, so a history of large values sent whole would have
/// the link closed on every connect and never arrive; what is left out is the oldest history,
/// never the current value.
fn catch_up<'a>(
    history: &'a [ClipEntry],
    has: &HashSet<ClipStamp>,
    mut budget: usize,
) -> Vec<&'a ClipEntry> {
    let mut sending = Vec::new();
    for entry in history
        .iter()
        .filter(|entry| !has.contains(&clip_stamp(entry)))
    {
        // As JSON, the largest of the formats.
        let len = update_len(entry);
        if len > budget && !sending.is_empty() {
            tracing::warn!(
                sent = sending.len(),
                "the history is too large to send at once; sending only its newest entries"
            );
            break;
        }
        budget = budget.saturating_sub(len);
        sending.push(entry);
    }
    sending
}

/// The size of the JSON `clipboard_update` carrying `entry`, at most (whatever its stamp),
/// counted without building it: a copy of many megabytes is measured, not serialized, to see
/// whether it fits a frame.
fn update_len(entry: &ClipEntry) -> usize {
    /// Counts what is written.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let envelope = update(&ClipEntry {
        text: "".into(),
        content: Vec::new(),
        stamp: Stamp {
            time: Timestamp {
                wall_ms: u64::MAX,
                counter: u32::MAX,
            },
            origin: entry.stamp.origin,
        },
        provenance: entry.provenance.clone(),
        withheld_from: entry.withheld_from.clone(),
    });
    let mut count = Count(0);
    // Writing to a counter cannot fail; an error would only make the estimate larger.
    let envelope_len =
        serde_json::to_writer(&mut count, &envelope).map_or(usize::MAX, |()| count.0);
    let mut count = Count(0);
    let text_len = serde_json::to_writer(&mut count, &*entry.text).map_or(usize::MAX, |()| count.0);
    let mut count = Count(0);
    // `,"content":` and the list.
    let content_len = if entry.content.is_empty() {
        0
    } else {
        serde_json::to_writer(&mut count, &entry.content).map_or(usize::MAX, |()| count.0 + 11)
    };
    // The envelope already holds the empty string's two quotes.
    envelope_len
        .saturating_add(text_len)
        .saturating_add(content_len)
        .saturating_sub(2)
}

/// An entry's stamp as the wire carries it.
fn clip_stamp(entry: &ClipEntry) -> ClipStamp {
    ClipStamp {
        timestamp: entry.stamp.time.wall_ms,
        counter: entry.stamp.time.counter,
        source_instance: entry.stamp.origin,
    }
}

/// The wire message for a clipboard entry.
fn update(entry: &ClipEntry) -> ClipMessage {
    ClipMessage::ClipboardUpdate {
        data: entry.text.to_string(),
        content: entry.content.clone(),
        timestamp: entry.stamp.time.wall_ms,
        counter: entry.stamp.time.counter,
        source_instance: entry.stamp.origin,
        provenance: entry.provenance.clone(),
        withheld_from: entry.withheld_from.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Representation;

    const NOW: u64 = 1_000_000;
    const MAX_FRAME: u32 = 10 * 1024 * 1024;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn replica(n: u128) -> ClipSync {
        ClipSync::new(Clipboard::new(id(n), 10))
    }

    fn drain(sync: &mut ClipSync) -> Vec<Outgoing<ClipMessage>> {
        std::iter::from_fn(|| sync.poll_outgoing()).collect()
    }

    fn texts(outgoing: &[Outgoing<ClipMessage>]) -> Vec<String> {
        outgoing
            .iter()
            .filter_map(|out| match out {
                Outgoing::To(_, ClipMessage::ClipboardUpdate { data, .. })
                | Outgoing::Broadcast {
                    message: ClipMessage::ClipboardUpdate { data, .. },
                    ..
                } => Some(data.clone()),
                _ => None,
            })
            .collect()
    }

    fn copy(sync: &mut ClipSync, text: &str, now: u64) -> ClipEntry {
        let staged = sync
            .stage_copy(text.into(), now, MAX_FRAME)
            .expect("fits")
            .expect("new");
        sync.commit(staged)
    }

    #[test]
    fn a_staged_copy_changes_nothing_until_it_is_committed() {
        let mut sync = replica(1);
        let staged = sync
            .stage_copy("hello".into(), NOW, MAX_FRAME)
            .expect("fits")
            .expect("new");
        assert_eq!(staged.register().current(), Some(staged.entry()));
        let first_stamp = staged.entry().stamp;
        assert_eq!(sync.clipboard().current(), None, "not before the save");
        assert!(drain(&mut sync).is_empty());
        drop(staged); // the save failed
        let entry = copy(&mut sync, "hello", NOW);
        assert!(entry.stamp > first_stamp, "a stamp is never issued twice");
        assert_eq!(sync.clipboard().current(), Some(&entry));
        assert_eq!(texts(&drain(&mut sync)), ["hello"]);
        assert_eq!(sync.poll_event(), Some(ClipEvent::Changed(entry)));
        assert!(
            sync.stage_copy("hello".into(), NOW, MAX_FRAME)
                .expect("fits")
                .is_none(),
            "an echo"
        );
        assert!(matches!(
            sync.stage_copy("x".repeat(2000).into(), NOW, 1024),
            Err(TooLarge { max: 1024, .. })
        ));
    }

    /// A copy on the device `device` (by id), with the devices `pauses` of that replica.
    fn copy_on(sync: &mut ClipSync, device: &str, text: &str, now: u64) -> ClipEntry {
        let copied = Copied {
            text: text.into(),
            content: Vec::new(),
            provenance: Some(Provenance {
                device_id: Some(device.into()),
                ..Provenance::through("control")
            }),
        };
        let staged = sync
            .stage_copy(copied, now, MAX_FRAME)
            .expect("fits")
            .expect("new");
        sync.commit(staged)
    }

    fn pauses(device: &str, receive: &[&str], send: &[&str]) -> Pauses {
        let set = |devices: &[&str]| devices.iter().map(|d| (*d).to_owned()).collect();
        Pauses {
            device: Some(device.into()),
            receive: set(receive),
            send: set(send),
        }
    }

    fn events(sync: &mut ClipSync) -> Vec<ClipEvent> {
        std::iter::from_fn(|| sync.poll_event()).collect()
    }

    #[test]
    fn a_value_from_a_device_paused_for_receiving_is_relayed_but_not_shown() {
        let mut laptop = replica(1);
        let mine = copy_on(&mut laptop, "laptop", "mine", NOW);
        events(&mut laptop);
        laptop.set_pauses(pauses("laptop", &["work"], &[]));
        assert!(events(&mut laptop).is_empty(), "what shows did not change");
        for peer in [2, 3] {
            laptop.peer_up(id(peer), Neighbour::Other, &[CLIPBOARD_HAVE.into()]);
        }
        drain(&mut laptop);

        let work = copy_on(&mut replica(2), "work", "from work", NOW + 5);
        laptop.handle(id(2), update(&work), NOW + 5);
        assert_eq!(laptop.clipboard().current(), Some(&work), "kept");
        assert_eq!(
            drain(&mut laptop),
            [Outgoing::Broadcast {
                message: update(&work),
                except: Some(id(2))
            }],
            "and relayed: the phone behind this laptop gets it"
        );
        assert!(
            laptop.take_dirty().is_some(),
            "and stored, to offer on a reconnect"
        );
        assert!(events(&mut laptop).is_empty(), "but not shown");
        assert_eq!(laptop.shown(), Some(&mine));
        assert_eq!(laptop.shown_history().collect::<Vec<_>>(), [&mine]);

        // The same text copied here is a new value here, not an echo of what is hidden.
        let again = copy_on(&mut laptop, "laptop", "from work", NOW + 6);
        assert_eq!(events(&mut laptop), [ClipEvent::Changed(again.clone())]);

        // A newer value from elsewhere shows; resuming shows the paused device's newer one.
        let phone = copy_on(&mut replica(3), "phone", "from the phone", NOW + 7);
        laptop.handle(id(3), update(&phone), NOW + 7);
        assert_eq!(events(&mut laptop), [ClipEvent::Changed(phone.clone())]);
        let later = copy_on(&mut replica(2), "work", "later at work", NOW + 8);
        laptop.handle(id(2), update(&later), NOW + 8);
        assert!(events(&mut laptop).is_empty());
        laptop.set_pauses(pauses("laptop", &[], &[]));
        assert_eq!(events(&mut laptop), [ClipEvent::Changed(later)]);
    }

    #[test]
    fn a_paused_devices_values_never_push_this_devices_history_out_nor_bring_an_old_one_back() {
        let mut laptop = ClipSync::new(Clipboard::new(id(1), 1));
        laptop.set_pauses(pauses("laptop", &["work"], &[]));
        let pinned = copy_on(&mut laptop, "laptop", "pinned", NOW);
        assert!(laptop.set_pinned(pinned.stamp, true));
        let mine = copy_on(&mut laptop, "laptop", "mine", NOW + 1);
        events(&mut laptop);
        let mut work = replica(2);
        for n in 0..10 {
            let theirs = copy_on(&mut work, "work", &format!("work {n}"), NOW + 10 + n);
            laptop.handle(id(2), update(&theirs), NOW + 10 + n);
        }
        assert!(
            events(&mut laptop).is_empty(),
            "nothing to show, and no step back"
        );
        assert_eq!(laptop.shown_history().collect::<Vec<_>>(), [&mine, &pinned]);
        let hidden = laptop.clipboard().history().len() - 2;
        assert_eq!(hidden, 1, "the hidden side is held to the capacity too");
        // Unpinned, the old value leaves; what shows stays, and nothing is reported.
        laptop.set_pinned(pinned.stamp, false);
        assert_eq!(laptop.shown_history().collect::<Vec<_>>(), [&mine]);
        assert!(events(&mut laptop).is_empty());
    }

    #[test]
    fn a_copy_withheld_from_a_device_is_relayed_there_but_shown_only_elsewhere() {
        let mut laptop = replica(1);
        laptop.set_pauses(pauses("laptop", &[], &["work"]));
        let private = copy_on(&mut laptop, "laptop", "private", NOW);
        assert_eq!(private.withheld_from, ["work"]);
        let message = update(&private);
        let json = serde_json::to_value(&message).expect("serializes");
        assert_eq!(json["withheld_from"], serde_json::json!(["work"]));

        let mut work = ClipSync::with_pauses(Clipboard::new(id(2), 10), pauses("work", &[], &[]));
        work.peer_up(id(3), Neighbour::Other, &[CLIPBOARD_HAVE.into()]);
        drain(&mut work);
        work.handle(id(1), message.clone(), NOW);
        assert!(
            events(&mut work).is_empty(),
            "not shown on the device it is withheld from"
        );
        assert_eq!(work.shown(), None);
        assert_eq!(texts(&drain(&mut work)), ["private"], "yet relayed");

        let mut phone = ClipSync::with_pauses(Clipboard::new(id(3), 10), pauses("phone", &[], &[]));
        phone.handle(id(2), message, NOW);
        assert_eq!(events(&mut phone), [ClipEvent::Changed(private)]);

        // After a resume, copies go to it again.
        laptop.set_pauses(pauses("laptop", &[], &[]));
        let shared = copy_on(&mut laptop, "laptop", "shared", NOW + 1);
        assert!(shared.withheld_from.is_empty());
        work.handle(id(1), update(&shared), NOW + 1);
        assert_eq!(events(&mut work), [ClipEvent::Changed(shared)]);
    }

    #[test]
    fn what_arrives_while_a_copy_is_saved_is_kept_when_it_commits() {
        let mut here = replica(1);
        let staged = here
            .stage_copy("mine".into(), NOW, MAX_FRAME)
            .expect("fits")
            .expect("new");
        let later = here
            .stage_copy("mine, later".into(), NOW, MAX_FRAME)
            .expect("fits")
            .expect("new");
        // A peer's newer entry arrives before either save is done: its background save holds
        // the register without either copy.
        let theirs = copy(&mut replica(2), "theirs", NOW + 5);
        here.handle(id(2), update(&theirs), NOW + 5);
        let without_copies = here.take_dirty().expect("the peer's entry is to be saved");
        assert_eq!(without_copies.history().len(), 1);
        here.commit(later);
        here.commit(staged);
        let saved_last = here.take_dirty().expect("saved again with the copies");
        assert_eq!(
            saved_last.history().len(),
            3,
            "the disk ends up with everything"
        );
        let history: Vec<&str> = here
            .clipboard()
            .history()
            .iter()
            .map(|entry| &*entry.text)
            .collect();
        assert_eq!(history, ["theirs", "mine, later", "mine"]);
        assert_eq!(
            std::iter::from_fn(|| here.poll_event())
                .filter(|event| matches!(event, ClipEvent::Changed(_)))
                .count(),
            1,
            "only the peer's entry became current"
        );
    }

    #[test]
    fn on_connect_a_peer_that_says_what_it_has_gets_only_what_it_lacks() {
        let mut here = replica(1);
        for (n, text) in ["one", "two", "three"].into_iter().enumerate() {
            copy(&mut here, text, NOW + n as u64);
        }
        drain(&mut here);
        // An older peer: everything, oldest first.
        here.peer_up(id(2), Neighbour::Other, &["clipboard".into()]);
        assert_eq!(texts(&drain(&mut here)), ["one", "two", "three"]);
        // A peer with the capability: our stamps first, then only what it lacks.
        here.peer_up(id(3), Neighbour::Other, &[CLIPBOARD_HAVE.into()]);
        let Some(Outgoing::To(_, ClipMessage::ClipboardHave { stamps })) = drain(&mut here).pop()
        else {
            panic!("a clipboard_have");
        };
        assert_eq!(stamps.len(), 3);
        let has = ClipMessage::ClipboardHave {
            stamps: stamps[1..].to_vec(),
        };
        here.handle(id(3), has.clone(), NOW);
        assert_eq!(texts(&drain(&mut here)), ["three"]);
        // Asked again on the same link: nothing more.
        here.handle(id(3), has.clone(), NOW);
        assert!(drain(&mut here).is_empty());
        // A new link answers again.
        here.peer_down(id(3));
        here.handle(id(3), has, NOW);
        assert_eq!(texts(&drain(&mut here)), ["three"]);
    }

    #[test]
    fn what_a_tree_delivers_is_merged_and_not_forwarded() {
        let mut writer = replica(1);
        let entry = copy(&mut writer, "down the tree", NOW);
        let mut here = replica(9);
        for peer in [1, 2, 3] {
            here.peer_up(id(peer), Neighbour::Other, &[CLIPBOARD_HAVE.into()]);
        }
        drain(&mut here);
        here.handle_spread(id(1), update(&entry), NOW);
        assert_eq!(here.poll_event(), Some(ClipEvent::Changed(entry)));
        assert!(here.take_dirty().is_some(), "stored like any other");
        assert!(drain(&mut here).is_empty(), "the tree carries it on");
    }

    #[test]
    fn what_is_new_here_is_forwarded_once_and_what_is_not_goes_nowhere() {
        let mut writer = replica(1);
        let entry = copy(&mut writer, "from the writer", NOW);
        let message = update(&entry);
        let mut here = replica(9);
        for peer in [1, 2, 3] {
            here.peer_up(id(peer), Neighbour::Other, &[CLIPBOARD_HAVE.into()]);
        }
        drain(&mut here);
        here.handle(id(1), message.clone(), NOW);
        assert_eq!(here.poll_event(), Some(ClipEvent::Changed(entry.clone())));
        assert_eq!(
            drain(&mut here),
            [Outgoing::Broadcast {
                message: message.clone(),
                except: Some(id(1))
            }]
        );
        assert!(here.take_dirty().is_some());
        // The same entry again (forwarded by another peer, say): nothing to forward, save or
        // report — which is what ends a flood.
        here.handle(id(2), message.clone(), NOW);
        assert!(drain(&mut here).is_empty());
        assert!(here.poll_event().is_none());
        assert!(here.take_dirty().is_none());
        // With no other peer up: merged, reported, forwarded to nobody.
        let mut alone = replica(8);
        alone.peer_up(id(9), Neighbour::Other, &[CLIPBOARD_HAVE.into()]);
        drain(&mut alone);
        alone.handle(id(9), message, NOW);
        assert!(drain(&mut alone).is_empty());
        assert_eq!(alone.poll_event(), Some(ClipEvent::Changed(entry)));
    }

    #[test]
    fn an_entry_from_the_clique_is_forwarded_only_outside_it() {
        let entry = copy(&mut replica(1), "from a sibling", NOW);
        let mut here = replica(9);
        here.peer_up(id(1), Neighbour::Clique, &[CLIPBOARD_HAVE.into()]);
        here.peer_up(id(2), Neighbour::Clique, &[CLIPBOARD_HAVE.into()]);
        here.peer_up(id(3), Neighbour::Other, &[CLIPBOARD_HAVE.into()]);
        drain(&mut here);
        here.handle(id(1), update(&entry), NOW);
        assert_eq!(
            drain(&mut here),
            [Outgoing::Multicast {
                to: vec![id(3)],
                message: update(&entry)
            }]
        );
    }

    #[test]
    fn stamps_from_beyond_the_clock_bound_are_refused_and_reported_once_per_peer() {
        let mut here = ClipSync::new(Clipboard::new(id(1), 10).with_max_offset(60_000));
        for counter in [0, u32::MAX] {
            let poison = ClipMessage::ClipboardUpdate {
                data: "from the end of time".into(),
                content: Vec::new(),
                timestamp: u64::MAX,
                counter,
                source_instance: id(2),
                provenance: None,
                withheld_from: Vec::new(),
            };
            here.handle(id(2), poison, NOW);
        }
        assert!(matches!(
            here.poll_event(),
            Some(ClipEvent::ClockRefused { from, .. }) if from == id(2)
        ));
        assert_eq!(here.poll_event(), None, "once per peer");
        assert_eq!(here.clipboard().current(), None);
        assert!(here.take_dirty().is_none());
    }

    #[test]
    fn a_catch_up_sends_what_is_lacking_newest_first_within_its_budget() {
        let entry = |n: u64, size: usize| ClipEntry {
            text: "x".repeat(size).into(),
            content: Vec::new(),
            stamp: Stamp {
                time: Timestamp {
                    wall_ms: n,
                    counter: 0,
                },
                origin: id(1),
            },
            provenance: None,
            withheld_from: Vec::new(),
        };
        // Newest first, as a history is.
        let history: Vec<_> = (0..10).rev().map(|n| entry(n, 1000)).collect();
        let has: HashSet<_> = [clip_stamp(&history[1])].into();
        let picked = |budget| -> Vec<u64> {
            catch_up(&history, &has, budget)
                .iter()
                .map(|entry| entry.stamp.time.wall_ms)
                .collect()
        };
        assert_eq!(
            picked(usize::MAX),
            [9, 7, 6, 5, 4, 3, 2, 1, 0],
            "all it lacks"
        );
        let one = update_len(&history[0]);
        assert_eq!(picked(3 * one), [9, 7, 6], "the newest that fit");
        assert_eq!(picked(1), [9], "the current value, whatever its size");
    }

    #[test]
    fn an_update_is_measured_as_it_would_be_written() {
        let origin = id(7);
        let html = Representation::new("text/html", b"<b>bold</b>", crate::INLINE_MAX);
        let image = Representation::new("image/png", &[9; 100_000], crate::INLINE_MAX);
        for (text, content) in [
            ("", vec![]),
            ("plain", vec![]),
            ("quotes \" and \\ and \n newlines", vec![]),
            ("control \u{1} ✓ emoji 🦀", vec![]),
            ("bold", vec![html.clone()]),
            ("", vec![html, image]),
        ] {
            let entry = ClipEntry {
                text: text.into(),
                content: content.clone(),
                stamp: Stamp {
                    time: Timestamp {
                        wall_ms: u64::MAX,
                        counter: u32::MAX,
                    },
                    origin,
                },
                provenance: Some(Provenance::through("control")),
                withheld_from: vec!["d".repeat(64)],
            };
            let written = serde_json::to_vec(&update(&entry))
                .expect("serializes")
                .len();
            assert_eq!(update_len(&entry), written, "{text:?}");
        }
    }

    #[test]
    fn an_entry_whose_inline_bytes_lie_is_refused_and_reported_once() {
        let mut here = replica(1);
        let mut html = Representation::new("text/html", b"<b>x</b>", crate::INLINE_MAX);
        html.hash = crate::BlobHash::of(b"other");
        for timestamp in [NOW, NOW + 1] {
            let update = ClipMessage::ClipboardUpdate {
                data: "x".into(),
                content: vec![html.clone()],
                timestamp,
                counter: 0,
                source_instance: id(2),
                provenance: None,
                withheld_from: Vec::new(),
            };
            here.handle(id(2), update, NOW);
        }
        assert!(matches!(
            here.poll_event(),
            Some(ClipEvent::ContentRefused { from, .. }) if from == id(2)
        ));
        assert_eq!(here.poll_event(), None, "once per peer");
        assert_eq!(here.clipboard().current(), None);
    }

    #[test]
    fn the_same_text_with_other_content_is_a_new_value() {
        let mut sync = replica(1);
        copy(&mut sync, "same", NOW);
        let html = Representation::new("text/html", b"<i>same</i>", crate::INLINE_MAX);
        let copied = Copied {
            text: "same".into(),
            content: vec![html],
            provenance: None,
        };
        let staged = sync
            .stage_copy(copied.clone(), NOW + 1, MAX_FRAME)
            .expect("fits")
            .expect("a new value: the HTML is new");
        sync.commit(staged);
        assert!(
            sync.stage_copy(copied, NOW + 2, MAX_FRAME)
                .expect("fits")
                .is_none(),
            "an echo"
        );
    }
}
