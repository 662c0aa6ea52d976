//! The clipboard as a last-writer-wins register with a bounded, convergent history.
//!
//! Every value carries a [`Stamp`]; the register's value is the entry with the greatest stamp,
//! and its history is the newest `capacity` entries by stamp. Both are functions of the *set* of
//! entries seen, so replicas that have seen the same entries agree exactly — whatever the order,
//! duplication or delay of the messages that brought them. (A replica with [`Pauses`] keeps the
//! newest `capacity` of the entries it shows and as many of those it hides: a superset of the
//! newest `capacity`, so it still holds everything the others do.)
//!
//! A peer's entry stamped further ahead of the wall clock than the clock's maximum offset is
//! refused ([`ClockError`]): accepted, it would stay the current value until real time caught up
//! with it — at `u64::MAX`, forever. An entry read from disk is never refused (it is the user's
//! data): one stored from beyond the bound, by a version without it, is re-stamped as a local
//! event at load time ([`Clipboard::restore`]), so it stays what the clipboard showed and the next
//! copy replaces it.

use std::{collections::BTreeSet, sync::Arc};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    content::Representation,
    hlc::{ClockError, HybridClock, Stamp, Timestamp},
    pauses::Pauses,
    provenance::Provenance,
};

/// One clipboard value and when and where it was copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipEntry {
    /// The copied text (empty when the value has none — an image alone), shared: a history of
    /// large values is cloned (for a save, a snapshot, an event) without copying them.
    pub text: Arc<str>,
    /// The value's other representations (HTML, an image, files), in the order the source
    /// preferred them; empty for plain text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Representation>,
    /// Its place in the mesh-wide order.
    pub stamp: Stamp,
    /// Where it was copied (absent for values from before provenance, or from peers that do
    /// not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// The devices (by id) its copier withheld it from: they keep and relay it, but do not
    /// show it ([`Pauses`](crate::Pauses)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld_from: Vec<String>,
}

impl ClipEntry {
    /// Whether it holds the same value as `copied`: the same text and representations (by type
    /// and hash).
    pub fn holds(&self, copied: &Copied) -> bool {
        *self.text == *copied.text && same_content(&self.content, &copied.content)
    }
}

fn same_content(a: &[Representation], b: &[Representation]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.mime == b.mime && a.hash == b.hash)
}

/// A value someone copied: its text and other representations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    /// The plain text (empty for none).
    pub text: String,
    /// The other representations.
    pub content: Vec<Representation>,
    /// Where it is copied (the node fills in its own names).
    pub provenance: Option<Provenance>,
}

impl From<String> for Copied {
    fn from(text: String) -> Self {
        Self {
            text,
            content: Vec::new(),
            provenance: None,
        }
    }
}

impl From<&str> for Copied {
    fn from(text: &str) -> Self {
        text.to_owned().into()
    }
}

/// What [`Clipboard::merge`] did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The entry is the new current value.
    Applied,
    /// An older value than the current one, now in the history.
    Recorded,
    /// Older than everything the history keeps: dropped.
    Stale,
    /// Already seen: nothing changed.
    Duplicate,
}

/// A replicated clipboard: the current value and the recent history, newest first.
///
/// ```
/// use rrt_sync::{Clipboard, Merge};
/// use uuid::Uuid;
///
/// let mut here = Clipboard::new(Uuid::from_u128(1), 10);
/// let mut there = Clipboard::new(Uuid::from_u128(2), 10);
/// let copied = here.copy("hello".into(), 1_000).expect("a new value");
/// assert_eq!(there.merge(copied.clone(), 900), Ok(Merge::Applied));
/// assert_eq!(there.merge(copied, 900), Ok(Merge::Duplicate));
/// assert_eq!(there.current().map(|entry| &*entry.text), Some("hello"));
/// ```
#[derive(Debug, Clone)]
pub struct Clipboard {
    origin: Uuid,
    clock: HybridClock,
    /// Newest first, unique stamps: at most `capacity` unpinned entries, and the pinned ones.
    entries: Vec<ClipEntry>,
    capacity: usize,
    /// Entries kept whatever their age (a local choice, not replicated).
    pinned: BTreeSet<Stamp>,
    /// Which entries this replica keeps without showing: the capacity holds for the shown
    /// entries and the hidden ones apart, so values a paused device keeps copying never push
    /// this replica's own history out.
    pauses: Pauses,
}

impl Clipboard {
    /// An empty clipboard for the instance `origin`, keeping `capacity` entries of history (at
    /// least one: the current value), refusing peers' stamps more than
    /// [`DEFAULT_MAX_OFFSET_MS`](crate::DEFAULT_MAX_OFFSET_MS) ahead.
    pub fn new(origin: Uuid, capacity: usize) -> Self {
        Self {
            origin,
            clock: HybridClock::default(),
            entries: Vec::new(),
            capacity: capacity.max(1),
            pinned: BTreeSet::new(),
            pauses: Pauses::default(),
        }
    }

    /// The same clipboard, refusing peers' stamps more than `max_offset_ms` ahead of the wall
    /// clock.
    pub fn with_max_offset(mut self, max_offset_ms: u64) -> Self {
        self.clock = HybridClock::new(max_offset_ms);
        self
    }

    /// The instance whose copies this replica stamps.
    pub fn origin(&self) -> Uuid {
        self.origin
    }

    /// The current value.
    pub fn current(&self) -> Option<&ClipEntry> {
        self.entries.first()
    }

    /// The current value and the ones before it, newest first.
    pub fn history(&self) -> &[ClipEntry] {
        &self.entries
    }

    /// The pauses that decide which entries are shown.
    pub fn pauses(&self) -> &Pauses {
        &self.pauses
    }

    /// New pauses: what is shown is decided again, and each side trimmed to the capacity.
    pub fn set_pauses(&mut self, pauses: Pauses) {
        self.pauses = pauses;
        self.trim();
    }

    /// The shown history, newest first: the entries the pauses do not hide.
    pub fn shown_history(&self) -> impl Iterator<Item = &ClipEntry> {
        self.entries.iter().filter(|entry| self.pauses.shows(entry))
    }

    /// Whether an entry with `stamp` would be kept, shown or hidden (its text may not be known
    /// yet): it is pinned, or its side of the history has room or holds an older unpinned entry.
    pub fn would_keep(&self, stamp: &Stamp) -> bool {
        self.pinned.contains(stamp)
            || [true, false]
                .iter()
                .any(|&shown| self.has_room(stamp, shown))
    }

    /// Whether the shown (or hidden) side of the history has room for an unpinned entry with
    /// `stamp`: fewer than the capacity, or an older unpinned entry it would push out.
    fn has_room(&self, stamp: &Stamp, shown: bool) -> bool {
        let mut side = self.unpinned_side(shown);
        side.clone().count() < self.capacity
            || side.next_back().is_some_and(|oldest| *stamp > oldest.stamp)
    }

    /// The unpinned entries shown (or hidden), newest first.
    fn unpinned_side(&self, shown: bool) -> impl DoubleEndedIterator<Item = &ClipEntry> + Clone {
        self.entries.iter().filter(move |entry| {
            !self.pinned.contains(&entry.stamp) && self.pauses.shows(entry) == shown
        })
    }

    /// Keeps the entry with `stamp` whatever its age, until unpinned; `false` if it is not in the
    /// history.
    pub fn pin(&mut self, stamp: Stamp) -> bool {
        self.contains(&stamp) && {
            self.pinned.insert(stamp);
            true
        }
    }

    /// Lets the entry with `stamp` age out again (at once, if older than the history keeps);
    /// `false` if it was not pinned.
    pub fn unpin(&mut self, stamp: &Stamp) -> bool {
        let was = self.pinned.remove(stamp);
        self.trim();
        was
    }

    /// The pinned entries' stamps.
    pub fn pinned(&self) -> &BTreeSet<Stamp> {
        &self.pinned
    }

    /// Pins read from disk, before the entries they name are restored (so those are kept
    /// whatever their age); pins naming no entry once everything is loaded are dropped by
    /// [`Clipboard::forget_stray_pins`].
    pub fn restore_pins(&mut self, stamps: impl IntoIterator<Item = Stamp>) {
        self.pinned.extend(stamps);
    }

    /// Drops pins that name no entry.
    pub fn forget_stray_pins(&mut self) {
        let entries = &self.entries;
        self.pinned.retain(|stamp| {
            entries
                .binary_search_by(|probe| stamp.cmp(&probe.stamp))
                .is_ok()
        });
    }

    /// Whether an entry with `stamp` is in the history.
    pub fn contains(&self, stamp: &Stamp) -> bool {
        self.entries
            .binary_search_by(|probe| stamp.cmp(&probe.stamp))
            .is_ok()
    }

    /// The latest time this replica has issued or seen (persisted so a restart never reuses one).
    pub fn clock(&self) -> Timestamp {
        self.clock.last()
    }

    /// Moves the clock past a time it had reached before a restart. A time beyond the maximum
    /// offset (stored by a version without the bound) is not followed; returns `false` then.
    pub fn restore_clock(&mut self, time: Timestamp, now_ms: u64) -> bool {
        self.clock.observe(time, now_ms).is_ok()
    }

    /// A local copy at wall-clock `now_ms`. Returns the new entry to send to peers, or `None` when
    /// it already is the current value — the echo of a value that arrived from the mesh and
    /// came back through a system clipboard must not start a new round.
    pub fn copy(&mut self, copied: Copied, now_ms: u64) -> Option<ClipEntry> {
        let entry = self.stamp_copy(copied, now_ms)?;
        self.insert(entry.clone());
        Some(entry)
    }

    /// A local copy's entry, stamped by this clock (which moves past it) but not in the register
    /// yet: [`Clipboard::keep`] puts it there. `None` for an echo, as with [`Clipboard::copy`].
    pub fn stamp_copy(&mut self, copied: Copied, now_ms: u64) -> Option<ClipEntry> {
        if self.current().is_some_and(|current| current.holds(&copied)) {
            return None;
        }
        Some(self.stamp(copied, now_ms))
    }

    /// A local copy's entry, stamped by this clock, whatever the current value is (the caller
    /// decides what an echo is).
    pub fn stamp(&mut self, copied: Copied, now_ms: u64) -> ClipEntry {
        ClipEntry {
            text: copied.text.into(),
            content: copied.content,
            stamp: Stamp {
                time: self.clock.tick(now_ms),
                origin: self.origin,
            },
            provenance: copied.provenance,
            withheld_from: Vec::new(),
        }
    }

    /// An entry this clock stamped ([`Clipboard::stamp_copy`]) goes into the register — the
    /// current value, unless a newer one arrived since it was stamped.
    pub fn keep(&mut self, entry: ClipEntry) -> Merge {
        self.insert(entry)
    }

    /// An entry from a peer. Advances the clock past it whatever the outcome — unless its stamp is
    /// beyond the maximum offset, when it is refused and nothing changes.
    pub fn merge(&mut self, entry: ClipEntry, now_ms: u64) -> Result<Merge, ClockError> {
        self.clock.observe(entry.stamp.time, now_ms)?;
        Ok(self.insert(entry))
    }

    /// An entry read from disk. One from beyond the maximum offset (saved by a version without
    /// the bound) is kept, re-stamped as a local event of this instance at `now_ms` (a stamp is
    /// never made in another instance's name: it could be one that instance also issues);
    /// returns whether it had to be.
    pub fn restore(&mut self, mut entry: ClipEntry, now_ms: u64) -> bool {
        if self.clock.observe(entry.stamp.time, now_ms).is_ok() {
            self.insert(entry);
            return false;
        }
        entry.stamp = Stamp {
            time: self.clock.tick(now_ms),
            origin: self.origin,
        };
        self.insert(entry);
        true
    }

    fn insert(&mut self, entry: ClipEntry) -> Merge {
        // Newest first: search with the order reversed.
        match self
            .entries
            .binary_search_by(|probe| entry.stamp.cmp(&probe.stamp))
        {
            Ok(_) => Merge::Duplicate,
            Err(_)
                if !self.pinned.contains(&entry.stamp)
                    && !self.has_room(&entry.stamp, self.pauses.shows(&entry)) =>
            {
                Merge::Stale
            }
            Err(position) => {
                self.entries.insert(position, entry);
                self.trim();
                if position == 0 {
                    Merge::Applied
                } else {
                    Merge::Recorded
                }
            }
        }
    }
}

impl Clipboard {
    /// Drops the oldest unpinned entries past the capacity, of the shown and the hidden side
    /// each.
    fn trim(&mut self) {
        for shown in [true, false] {
            let mut kept = 0;
            let (pinned, pauses, capacity) = (&self.pinned, &self.pauses, self.capacity);
            self.entries.retain(|entry| {
                if pinned.contains(&entry.stamp) || pauses.shows(entry) != shown {
                    return true;
                }
                kept += 1;
                kept <= capacity
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn entry(text: &str, wall_ms: u64, counter: u32, origin: u128) -> ClipEntry {
        ClipEntry {
            text: text.into(),
            content: Vec::new(),
            stamp: Stamp {
                time: Timestamp { wall_ms, counter },
                origin: id(origin),
            },
            provenance: None,
            withheld_from: Vec::new(),
        }
    }

    #[test]
    fn equal_times_break_ties_by_origin_the_same_everywhere() {
        let low = entry("from 1", 100, 0, 1);
        let high = entry("from 2", 100, 0, 2);
        let mut a = Clipboard::new(id(9), 10);
        let mut b = Clipboard::new(id(8), 10);
        for entry in [&low, &high] {
            a.merge(entry.clone(), 0).expect("an honest stamp");
        }
        for entry in [&high, &low] {
            b.merge(entry.clone(), 0).expect("an honest stamp");
        }
        assert_eq!(a.current(), b.current());
        assert_eq!(a.current().map(|e| &*e.text), Some("from 2"));
    }

    #[test]
    fn an_older_value_never_wins_after_a_partition_heals() {
        let mut here = Clipboard::new(id(1), 10);
        let old = here.copy("before the cut".into(), 1_000).expect("new");
        let new = here.copy("during the cut".into(), 5_000).expect("new");
        let mut returning = Clipboard::new(id(2), 10);
        assert_eq!(returning.merge(new.clone(), 6_000), Ok(Merge::Applied));
        assert_eq!(returning.merge(old, 6_000), Ok(Merge::Recorded));
        assert_eq!(returning.current(), Some(&new));
    }

    #[test]
    fn a_clock_ahead_within_the_offset_does_not_pin_its_value() {
        let mut here = Clipboard::new(id(1), 10);
        // A peer whose clock is 30 s fast.
        let skewed = entry("from the future", 30_000 + 1_000, 0, 2);
        assert_eq!(here.merge(skewed, 1_000), Ok(Merge::Applied));
        let mine = here
            .copy("copied after seeing it".into(), 1_001)
            .expect("new");
        assert!(mine.stamp > here.history()[1].stamp);
        assert_eq!(here.current(), Some(&mine));
    }

    #[test]
    fn a_stamp_beyond_the_offset_is_refused_and_changes_nothing() {
        let mut here = Clipboard::new(id(1), 10).with_max_offset(60_000);
        let mine = here.copy("mine".into(), 1_000).expect("new");
        for counter in [0, u32::MAX] {
            let poison = entry("from the end of time", u64::MAX, counter, 2);
            assert!(matches!(
                here.merge(poison, 1_000),
                Err(ClockError::TooFarAhead { .. })
            ));
        }
        let hour_fast = entry("an hour fast", 3_600_000 + 1_000, 0, 2);
        assert!(here.merge(hour_fast, 1_000).is_err());
        assert_eq!(here.history(), [mine]);
        let next = here.copy("next".into(), 1_001).expect("new");
        assert_eq!(
            next.stamp.time,
            Timestamp {
                wall_ms: 1_001,
                counter: 0
            }
        );
        assert_eq!(here.current(), Some(&next));
    }

    #[test]
    fn a_poisoned_entry_from_disk_is_kept_and_re_stamped() {
        let mut here = Clipboard::new(id(1), 10);
        let honest = entry("copied before", 500, 0, 1);
        let poisoned = entry("frozen value", u64::MAX, u32::MAX, 2);
        assert!(!here.restore(honest.clone(), 1_000));
        assert!(here.restore(poisoned, 1_000));
        assert!(!here.restore_clock(
            Timestamp {
                wall_ms: u64::MAX,
                counter: 0
            },
            1_000
        ));
        let current = here.current().expect("kept").clone();
        assert_eq!(&*current.text, "frozen value");
        assert_eq!(
            current.stamp.origin,
            id(1),
            "re-stamped in this instance's name"
        );
        assert_eq!(current.stamp.time.wall_ms, 1_000);
        assert_eq!(here.history()[1], honest);
        let next = here
            .copy("copied after the upgrade".into(), 1_001)
            .expect("new");
        assert_eq!(here.current(), Some(&next));
    }

    #[test]
    fn copying_the_current_text_again_is_an_echo() {
        let mut here = Clipboard::new(id(1), 10);
        here.merge(entry("from the mesh", 10, 0, 2), 10)
            .expect("an honest stamp");
        assert_eq!(here.copy("from the mesh".into(), 20), None);
        assert!(here.copy("something new".into(), 20).is_some());
    }

    #[test]
    fn history_is_bounded_and_newest_first() {
        let mut here = Clipboard::new(id(1), 3);
        for (i, text) in ["a", "b", "c", "d"].into_iter().enumerate() {
            here.copy(text.into(), i as u64 * 10);
        }
        let texts: Vec<_> = here.history().iter().map(|e| &*e.text).collect();
        assert_eq!(texts, ["d", "c", "b"]);
        assert_eq!(here.merge(entry("ancient", 1, 0, 5), 50), Ok(Merge::Stale));
        assert_eq!(here.history().len(), 3);
    }

    #[test]
    fn a_pinned_entry_outlives_the_history_until_unpinned() {
        let mut here = Clipboard::new(id(1), 2);
        let kept = here.copy("keep me".into(), 10).expect("new");
        assert!(here.pin(kept.stamp));
        for (i, text) in ["b", "c", "d"].into_iter().enumerate() {
            here.copy(text.into(), 20 + i as u64);
        }
        let texts: Vec<_> = here.history().iter().map(|e| &*e.text).collect();
        assert_eq!(
            texts,
            ["d", "c", "keep me"],
            "two unpinned, and the pinned one"
        );
        assert!(here.unpin(&kept.stamp));
        let texts: Vec<_> = here.history().iter().map(|e| &*e.text).collect();
        assert_eq!(texts, ["d", "c"]);
        assert!(!here.pin(kept.stamp), "gone: nothing to pin");
    }

    /// Entries as writers make them: one stamp, one text.
    fn arbitrary_entry() -> impl Strategy<Value = ClipEntry> {
        (0u64..50, 0u32..3, 0u128..4).prop_map(|(wall, counter, origin)| {
            entry(&format!("{origin}@{wall}.{counter}"), wall, counter, origin)
        })
    }

    proptest! {
        #[test]
        fn replicas_that_saw_the_same_entries_agree_whatever_the_order(
            entries in proptest::collection::vec(arbitrary_entry(), 0..30),
            seed in any::<u64>(),
        ) {
            let mut shuffled = entries.clone();
            // A deterministic shuffle with duplicates: reorder, then replay a prefix.
            let len = shuffled.len().max(1);
            shuffled.rotate_left((seed as usize) % len);
            shuffled.reverse();
            shuffled.extend(entries.iter().take((seed % 7) as usize).cloned());
            let mut a = Clipboard::new(id(10), 5);
            let mut b = Clipboard::new(id(11), 5);
            entries.into_iter().for_each(|e| { a.merge(e, 0).expect("an honest stamp"); });
            shuffled.into_iter().for_each(|e| { b.merge(e, 0).expect("an honest stamp"); });
            prop_assert_eq!(a.history(), b.history());
        }

        #[test]
        fn whatever_peers_send_the_next_local_copy_becomes_current(
            sent in proptest::collection::vec((any::<u64>(), any::<u32>(), 0u128..4, 0u64..200_000), 0..40),
            copied_at in 0u64..200_000,
        ) {
            let mut here = Clipboard::new(id(10), 5).with_max_offset(60_000);
            let mut latest_now = 0;
            for (wall, counter, origin, now) in sent {
                latest_now = latest_now.max(now);
                let peer = entry("from a peer", wall, counter, origin);
                let _ = here.merge(peer, now);
            }
            let now = latest_now.max(copied_at);
            let copy = here.copy("mine".into(), now).expect("a new text");
            prop_assert_eq!(here.current(), Some(&copy));
            // Only the offset can put a stamp ahead of real time, and only by a bounded amount.
            prop_assert!(copy.stamp.time.wall_ms <= now + 60_000 + 1);
        }
    }
}
