//! Generations of a document: how a text that stays small while it is edited for months stays
//! small on disk and on the wire.
//!
//! yrs drops deleted text but keeps every deleted run's id and origins, which a later edit may
//! name: a 1 KiB text edited a million times snapshots to 4.3 MB. No replica can drop those ids
//! alone — an edit still in flight may refer to them. So the document is started again: a
//! *generation* is a fresh CRDT seeded with the text and map of the one before, named by
//! [`Generation`] (a number, then the replica that started it). The highest generation wins,
//! whoever started it and whenever it arrives; a replica that learns of a newer one moves to it
//! and *carries* into it, as ordinary edits of the new generation, what it wrote in the old one
//! that the new one lacks.
//!
//! ```text
//!  generation g   ──edits──▶ deletions outweigh the text (Lineage::outgrown)
//!        │ start: seed = text + map of g; header = (parent g, base = ids g had, seed)
//!        ▼
//!  generation g+1 ◀── a replica still on g learns of it:
//!                     nothing it has outside the base? ─▶ moves, nothing to carry
//!                     else ─▶ asks the peer for its lineage (its generations, whole), then
//!                       ours   = our copy of g ∪ the peer's, with only our own writing beyond the base
//!                       before = the peer's copy of g, without our writing
//!                       g+1   ⇐ the changes before → ours, character by character (three_way)
//! ```
//!
//! Each replica carries only what it wrote itself (yrs ids say who wrote each character), so
//! however many replicas held an edit, it arrives once: the author holds it until it moves.
//! Deletions are carried by every replica that saw them, which is harmless twice (a character
//! already gone is not deleted again, and only characters of the old generation are ever
//! deleted). Updates for a generation older than the receiver's are therefore not applied —
//! their author carries them — and the receiver answers with its lineage, so the author moves.
//!
//! A replica keeps the [`KEPT`] generations before its own, each about the size at which it was
//! outgrown, for peers still on them, and sends them only to such a peer: a newcomer gets the
//! current generation alone. A replica further behind than that carries what it wrote that the
//! current text lacks, placed by the text around it, and no deletion (which differences are
//! deletions can no longer be told).
//!
//! Concurrent starts: a replica that moved onto a start which then lost holds text that is
//! partly copies of the parent's (the seed, and what was carried there). Carried as text, a copy
//! of something the winner got from its author came twice, and a deletion of a copy was lost.
//! So each generation says where its characters came from ([`crate::origins`]: the header lists
//! the seed's parent ids, a carrier records what it carried from where), and the starts that
//! lost are folded back onto the generation the winner started from — the fork — and carried
//! from there, once, against the winner's seed. The fork may be one neither side keeps, if
//! both lines' oldest generations started from it. A copy carried into a generation whose
//! parent is not the fork names the fork, and what a replica typed in a start that lost names
//! that start, so a replica moved from line to line and back still carries each thing once:
//! its own writing goes in unless the winner's line has seen it (in a successor's base, or
//! carried there before that successor started). What is left: a replica further behind than
//! the kept generations carries no deletion, nor does one whose copy of a start it left is
//! gone — never text is lost.
//!
//! Sans-IO: [`Lineage`] takes [`LineageMessage`]s and says what to send back; the driver moves
//! them and stores what changed.

use std::collections::{BTreeMap, BTreeSet};

use yrs::{
    ID, IdSet, StateVector,
    updates::{decoder::Decode, encoder::Encode},
};

use crate::{
    document::{DocError, Document, merge_updates},
    generation_message::{EraUpdate, Generation, Header, LineageMessage, Version, Versions},
    origins::{self, Record},
};

mod carry;

use carry::{Seed, absent, characters, folded, rebase, seed, seed_ids, seed_seen};

/// How many generations before the current one a replica keeps for peers still on them.
pub const KEPT: usize = 3;
/// The highest generation number accepted from a peer: far beyond any real document (one
/// generation per thousands of edits), and far enough below `u64::MAX` that a peer announcing it
/// cannot stop this replica from ever starting a later one.
pub const MAX_NUMBER: u64 = u64::MAX / 2;
/// A generation is outgrown once its snapshot is over this many bytes …
pub const OUTGROWN_MIN: usize = 16 * 1024;
/// … and over this many times the size of its text and map.
pub const OUTGROWN_FACTOR: usize = 8;

/// What a message did here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Whether the current text or map changed (a new generation counts).
    pub changed: bool,
    /// This replica moved to a newer generation: the driver stores the lineage anew.
    pub moved: bool,
    /// Edits this replica made to carry old content forward: stored, and sent to every peer.
    pub carried: Vec<EraUpdate>,
    /// What to send back to the sender.
    pub reply: Option<LineageMessage>,
}

/// One generation as this replica holds it.
#[derive(Debug)]
struct Era {
    generation: Generation,
    header: Header,
    document: Document,
}

impl Era {
    fn whole(&self) -> EraUpdate {
        EraUpdate {
            generation: self.generation,
            update: self.document.snapshot(),
            header: Some(self.header.clone()),
        }
    }
}

/// A document's generations at one replica: the current one, which takes edits, and the
/// [`KEPT`] before it, for peers still on them.
#[derive(Debug)]
pub struct Lineage {
    replica: u64,
    current: Era,
    /// Newest first. Everything in them has been carried into the current generation.
    retired: Vec<Era>,
}

impl Lineage {
    /// A new, empty document in generation 0, edited by `replica`.
    pub fn new(replica: u64) -> Self {
        Self::with_document(replica, Document::new(replica))
    }

    /// `document` as generation 0 (a document stored before generations existed).
    pub fn with_document(replica: u64, document: Document) -> Self {
        Self {
            replica,
            current: Era {
                generation: Generation::default(),
                header: Header::default(),
                document,
            },
            retired: Vec::new(),
        }
    }

    /// The current generation.
    pub fn generation(&self) -> Generation {
        self.current.generation
    }

    /// The current generation's document: the text and map.
    pub fn document(&self) -> &Document {
        &self.current.document
    }

    /// The generations kept for stragglers, newest first, with their documents.
    pub fn retired(&self) -> impl Iterator<Item = (Generation, &Document)> {
        self.retired
            .iter()
            .map(|era| (era.generation, &era.document))
    }

    /// A generation this replica holds (the current one or a kept one), if it does.
    pub fn of(&self, generation: Generation) -> Option<&Document> {
        self.eras()
            .find(|era| era.generation == generation)
            .map(|era| &era.document)
    }

    /// Every generation held, whole with its header, the current one first: what a store
    /// writes, and [`Lineage::from_stored`] reads back.
    pub fn stored(&self) -> Vec<EraUpdate> {
        self.eras().map(Era::whole).collect()
    }

    /// A lineage as [`Lineage::stored`] wrote it (the current generation first), edited from now
    /// on by `replica`. Refused if a generation past 0 has no header or one whose origins do
    /// not cover its seed, or if a generation does not decode.
    pub fn from_stored(replica: u64, stored: Vec<EraUpdate>) -> Result<Self, DocError> {
        let mut eras = stored.into_iter().map(|era| {
            let header = match era.header {
                Some(header) => {
                    origins::decode_seed(&header.origins, header.text.encode_utf16().count())?;
                    header
                }
                None if era.generation == Generation::default() => Header::default(),
                None => {
                    return Err(DocError::Malformed(
                        "a stored generation without its header".to_owned(),
                    ));
                }
            };
            Ok(Era {
                generation: era.generation,
                header,
                document: Document::from_snapshot(replica, &era.update)?,
            })
        });
        let current = eras
            .next()
            .ok_or_else(|| DocError::Malformed("a stored lineage of no generation".to_owned()))??;
        let mut lineage = Self {
            replica,
            current,
            retired: Vec::new(),
        };
        for era in eras {
            lineage.retire(era?);
        }
        Ok(lineage)
    }

    /// A local edit of the current generation: the update to store and send to every peer.
    pub fn edit(&mut self, change: impl FnOnce(&Document) -> Vec<u8>) -> EraUpdate {
        EraUpdate {
            generation: self.current.generation,
            update: change(&self.current.document),
            header: None,
        }
    }

    /// Whether the current generation's deletions outweigh its content: its snapshot is over
    /// [`OUTGROWN_MIN`] and [`OUTGROWN_FACTOR`] times the text and map. It encodes the
    /// document, so the driver asks now and then — after every thousand local edits, say — never
    /// on a peer's update (which would let a peer make this replica start one).
    pub fn outgrown(&self) -> bool {
        let document = &self.current.document;
        let content = document.text().len()
            + document
                .entries()
                .iter()
                .map(|(key, value)| key.len() + value.len())
                .sum::<usize>();
        document.snapshot().len() > OUTGROWN_MIN.max(OUTGROWN_FACTOR * content)
    }

    /// Starts a new generation seeded with the current text and map. Returns the message for
    /// every peer (the new generation whole, a few bytes over its text and map).
    pub fn start(&mut self) -> LineageMessage {
        let old = &self.current;
        let generation = Generation {
            number: old.generation.number + 1,
            starter: self.replica,
        };
        let characters = old.document.characters();
        let header = Header {
            parent: old.generation,
            base: old.document.seen().encode_v1(),
            text: characters.iter().map(|(c, _)| c).collect(),
            origins: origins::encode_runs(&origins::runs(
                characters.iter().map(|(c, id)| (*id, c.len_utf16() as u32)),
            )),
            map: old.document.entries(),
        };
        let document = Document::new(self.replica);
        document.append(&header.text);
        for (key, value) in &header.map {
            document.set(key, value);
        }
        let new = Era {
            generation,
            header,
            document,
        };
        let message = LineageMessage::Updates(vec![new.whole()]);
        let old = std::mem::replace(&mut self.current, new);
        self.retire(old);
        message
    }

    /// What this replica holds, for a peer to answer with what it lacks.
    pub fn versions(&self) -> Versions {
        Versions(
            self.eras()
                .map(|era| Version {
                    generation: era.generation,
                    state_vector: era.document.state_vector(),
                })
                .collect(),
        )
    }

    /// A message from a peer (untrusted): applied, and what it asks for answered. One that no
    /// honest replica sends — more generations than a replica holds, or a generation number so
    /// high that no generation could follow it — is refused whole, and nothing changes.
    pub fn receive(&mut self, message: LineageMessage) -> Result<Received, DocError> {
        let generations: Vec<Generation> = match &message {
            LineageMessage::Versions(versions) => versions
                .0
                .iter()
                .map(|version| version.generation)
                .collect(),
            LineageMessage::Updates(eras) | LineageMessage::Lineage(eras) => eras
                .iter()
                .flat_map(|era| {
                    std::iter::once(era.generation)
                        .chain(era.header.as_ref().map(|header| header.parent))
                })
                .collect(),
        };
        if generations.len() > 2 * (KEPT + 1) {
            return Err(DocError::Malformed(format!(
                "{} generations in one message (a replica holds at most {})",
                generations.len(),
                KEPT + 1
            )));
        }
        if let Some(generation) = generations
            .iter()
            .find(|generation| generation.number > MAX_NUMBER)
        {
            return Err(DocError::Malformed(format!(
                "generation number {} (at most {MAX_NUMBER})",
                generation.number
            )));
        }
        if let LineageMessage::Updates(eras) | LineageMessage::Lineage(eras) = &message {
            for header in eras.iter().filter_map(|era| era.header.as_ref()) {
                origins::decode_seed(&header.origins, header.text.encode_utf16().count())?;
            }
        }
        match message {
            LineageMessage::Versions(versions) => Ok(Received {
                reply: self.answer(&versions)?,
                ..Received::default()
            }),
            LineageMessage::Updates(updates) => self.updates(updates),
            LineageMessage::Lineage(eras) => self.lineage(eras),
        }
    }

    fn eras(&self) -> impl Iterator<Item = &Era> {
        std::iter::once(&self.current).chain(&self.retired)
    }

    fn era_mut(&mut self, generation: Generation) -> Option<&mut Era> {
        std::iter::once(&mut self.current)
            .chain(&mut self.retired)
            .find(|era| era.generation == generation)
    }

    /// All that is held, whole, newest first.
    fn whole(&self) -> LineageMessage {
        LineageMessage::Lineage(self.eras().map(Era::whole).collect())
    }

    fn answer(&self, peer: &Versions) -> Result<Option<LineageMessage>, DocError> {
        let theirs = peer.current();
        if theirs < self.current.generation {
            // A peer that holds nothing of ours, nor what one of ours started from (a newcomer,
            // or one too far behind), needs only the current generation.
            let held: BTreeSet<Generation> = peer
                .0
                .iter()
                .filter(|version| {
                    !StateVector::decode_v1(&version.state_vector)
                        .is_ok_and(|clocks| clocks.is_empty())
                })
                .map(|version| version.generation)
                .collect();
            let linked = self
                .eras()
                .any(|era| held.contains(&era.generation) || held.contains(&era.header.parent));
            return Ok(Some(if linked {
                self.whole()
            } else {
                LineageMessage::Lineage(vec![self.current.whole()])
            }));
        }
        if theirs > self.current.generation {
            // It answers our own versions, sent when the link came up, with its lineage.
            return Ok(None);
        }
        let mut updates = Vec::new();
        for era in self.eras() {
            let Some(version) = peer.of(era.generation) else {
                continue;
            };
            updates.push(EraUpdate {
                generation: era.generation,
                update: era.document.diff(version)?,
                header: None,
            });
        }
        Ok((!updates.is_empty()).then_some(LineageMessage::Updates(updates)))
    }

    fn updates(&mut self, updates: Vec<EraUpdate>) -> Result<Received, DocError> {
        let Some(newest) = updates.iter().max_by_key(|update| update.generation) else {
            return Ok(Received::default());
        };
        if newest.generation < self.current.generation {
            // Its author carries it forward when it moves; here it would be carried twice.
            return Ok(Received {
                reply: Some(self.whole()),
                ..Received::default()
            });
        }
        if newest.generation > self.current.generation {
            return self.started(newest.clone());
        }
        let mut received = Received::default();
        for update in updates {
            let current = self.current.generation;
            // A generation we no longer keep, or never had: nothing to do with it.
            if let Some(era) = self.era_mut(update.generation) {
                let applied = era.document.apply(&update.update)?;
                received.changed |= update.generation == current && applied.changed();
            }
        }
        Ok(received)
    }

    /// A newer generation, started elsewhere: moved to at once if ours holds nothing it lacks,
    /// else its sender is asked for what to carry ours forward from.
    fn started(&mut self, new: EraUpdate) -> Result<Received, DocError> {
        let ask = Ok(Received {
            reply: Some(LineageMessage::Versions(self.versions())),
            ..Received::default()
        });
        let Some(header) = new.header else {
            return ask;
        };
        let base = ids(&header.base);
        let document = &self.current.document;
        if header.parent != self.current.generation
            || base.merge(&document.seen()) != base
            || document.entries() != header.map
        {
            return ask;
        }
        let document = Document::from_snapshot(self.replica, &new.update)?;
        let new = Era {
            generation: new.generation,
            header,
            document,
        };
        let old = std::mem::replace(&mut self.current, new);
        self.retire(old);
        Ok(Received {
            changed: true,
            moved: true,
            ..Received::default()
        })
    }

    /// A peer's whole lineage: if it is ahead, ours is carried into its current generation.
    fn lineage(&mut self, eras: Vec<EraUpdate>) -> Result<Received, DocError> {
        let Some(newest) = eras.iter().map(|era| era.generation).max() else {
            return Ok(Received::default());
        };
        if newest < self.current.generation {
            return Ok(Received {
                reply: Some(self.whole()),
                ..Received::default()
            });
        }
        if newest == self.current.generation {
            // Whole copies of generations both sides hold: merged like any update.
            return self.updates(eras);
        }
        let mut theirs = BTreeMap::new();
        for era in eras {
            let header = era.header.ok_or_else(|| {
                DocError::Malformed("a lineage generation without its header".to_owned())
            })?;
            let document = Document::from_snapshot(self.replica, &era.update)?;
            theirs.insert(
                era.generation,
                Era {
                    generation: era.generation,
                    header,
                    document,
                },
            );
        }
        let Some((_, current)) = theirs.pop_last() else {
            return Ok(Received::default());
        };
        let carry = self.carry_plan(&current, &theirs);
        let mut carried = Vec::new();
        for (ancestor, ours) in carry {
            carried.extend(rebase(&current.document, &ancestor, &ours));
        }
        // One update, so that what was carried and where it came from arrive together.
        let carried = if carried.is_empty() {
            None
        } else {
            Some(merge_updates(&carried)?)
        };
        // Our copies, merged with theirs, are kept: all of them is now in the new generation.
        let mut kept: BTreeMap<Generation, Era> = BTreeMap::new();
        let old = std::mem::replace(&mut self.current, current);
        for mut era in std::iter::once(old).chain(std::mem::take(&mut self.retired)) {
            // Before the merge, which could release it.
            era.document = without_held(self.replica, era.document);
            if let Some(copy) = theirs.remove(&era.generation) {
                era.document.apply(&copy.document.snapshot())?;
            }
            kept.insert(era.generation, era);
        }
        kept.extend(theirs);
        for (_, era) in kept.into_iter().rev() {
            self.retire(era);
        }
        let generation = self.current.generation;
        Ok(Received {
            changed: true,
            moved: true,
            carried: carried
                .into_iter()
                .map(|update| EraUpdate {
                    generation,
                    update,
                    header: None,
                })
                .collect(),
            reply: None,
        })
    }

    /// What to carry into `current` (a peer's, with its older generations `theirs`): pairs of
    /// (ancestor, ours) as text and map, oldest first.
    ///
    /// Only what this replica wrote is carried as new text — every writer carries its own, when
    /// it moves, so nothing is carried twice however many replicas held it; deletions of text
    /// the ancestor has are carried by everyone who saw them, which is harmless twice. If the
    /// peer's line started from one of ours (the fork), our generations after it — starts that
    /// lost — are folded onto it by where each of their characters came from
    /// ([`origins::fold`]), and everything is carried from the fork, once, in its ids.
    fn carry_plan(&self, current: &Era, theirs: &BTreeMap<Generation, Era>) -> Vec<(Seed, Seed)> {
        let me = self.current.document.writer();
        // Ours that the current one descends from (a start that lost, kept after we moved on,
        // was carried into ours already).
        let mine: BTreeMap<Generation, &Era> = self
            .retired
            .iter()
            .map(|era| (era.generation, era))
            .collect();
        let ours = line(&self.current, &mine);
        let theirs_by: BTreeMap<Generation, &Era> = theirs
            .iter()
            .map(|(generation, era)| (*generation, era))
            .collect();
        let line = line(current, &theirs_by);
        // What the peer's line has seen of each of its generations: the base of the one after
        // it, or, for its current one, everything. What we typed in a start that lost and the
        // peer's line has seen (it was, or is, its parent) is not carried again.
        let mut seen_by_line: BTreeMap<Generation, IdSet> = line
            .iter()
            .filter(|era| era.generation != Generation::default())
            .map(|era| (era.header.parent, ids(&era.header.base)))
            .collect();
        seen_by_line.insert(current.generation, current.document.seen());
        // And what was carried into them: all that was carried into the current one; into an
        // older one, what the one after it started with.
        for record in current.document.origin_records() {
            if let Ok(record) = Record::decode(&record) {
                let of = record.generation.unwrap_or(current.header.parent);
                let seen = seen_by_line.entry(of).or_default();
                for run in record.from {
                    seen.insert(run.start, run.len);
                }
            }
        }
        for pair in line.windows(2) {
            let (next, era) = (pair[0], pair[1]);
            let base = ids(&next.header.base);
            let origins = carry::origins_of(era);
            for (_, id) in era.document.characters() {
                if let Some((of, from)) = origins.of(id).filter(|_| base.contains(&id)) {
                    seen_by_line
                        .entry(of.unwrap_or(era.header.parent))
                        .or_default()
                        .insert(from, 1);
                }
            }
        }
        let carry = |generation: Generation, id: ID| {
            !seen_by_line
                .get(&generation)
                .is_some_and(|seen| seen.contains(&id))
        };
        // The newest of ours that a generation of the peer's line started from.
        let fork = ours.iter().enumerate().find_map(|(at, era)| {
            line.iter()
                .find(|next| {
                    next.header.parent == era.generation && next.generation != era.generation
                })
                .map(|next| (at, *next))
        });
        if let Some((at, next)) = fork {
            let (lost, fork) = (&ours[..at], ours[at]);
            // Ours, unless the peer's line has it (its seed, or we carried it there before).
            let own = |id: &ID| id.client == me && carry(fork.generation, *id);
            // Our copy of the fork, with the peer's if it sent one: what we saw happen to the
            // text the winning line started from (its seed: the characters of `base`), and what
            // we wrote that it lacks. Others' writing outside the seed is theirs to carry.
            let merged = Document::new(self.replica);
            // Both copies decoded here already; one that does not apply leaves the other.
            let _ = merged.apply(&fork.document.snapshot());
            let map = match theirs.get(&fork.generation) {
                Some(their) => {
                    let _ = merged.apply(&their.document.snapshot());
                    their.document.entries()
                }
                None => next.header.map.clone(),
            };
            // (A character in the base but not the seed was deleted before it started.)
            let seeded: BTreeSet<ID> = seed(next).into_iter().filter_map(|(_, id)| id).collect();
            let onto = characters(&merged, |id| own(id) || seeded.contains(id));
            let mut ours = folded(
                lost,
                (onto, fork.generation),
                merged.entries(),
                me,
                &|_| false,
                &carry,
            );
            if next.generation != current.generation {
                name_fork(&mut ours, fork.generation);
            }
            // The seed's characters we have seen (so one that never reached us is not taken for
            // one we saw deleted).
            let seen = merged.seen();
            return vec![(seed_seen(next, &seen, map), ours)];
        }
        // No generation of ours started the peer's line, but one of ours and one of its may have
        // started from the same generation, which neither keeps: both headers name its
        // characters, so it is the fork all the same, known by what each started with.
        let sibling = ours.iter().enumerate().find_map(|(at, era)| {
            line.iter()
                .find(|next| {
                    era.generation != Generation::default()
                        && next.header.parent == era.header.parent
                        && next.generation != era.generation
                })
                .map(|next| (at, *next))
        });
        if let Some((at, next)) = sibling {
            let first = ours[at];
            let base = ids(&next.header.base);
            let own = |id: &ID| id.client == me && carry(first.header.parent, *id);
            let theirs: BTreeSet<ID> = seed(next).into_iter().filter_map(|(_, id)| id).collect();
            let onto: origins::Text = seed(first)
                .into_iter()
                .filter_map(|(c, id)| id.map(|id| (c, origins::Mark::Here(id))))
                .filter(|(_, mark)| {
                    mark.here()
                        .is_some_and(|id| own(&id) || theirs.contains(&id))
                })
                .collect();
            // What we saw of the fork: what it had when ours started, and what we carried.
            let mut seen = ids(&first.header.base);
            for record in first.document.origin_records() {
                if let Ok(record) = Record::decode(&record) {
                    for run in record.from {
                        seen.insert(run.start, run.len);
                    }
                }
            }
            // A copy of ours of a fork character kept unless the winner saw it deleted.
            let adopt = |id: &ID| !base.contains(id) || theirs.contains(id);
            let mut ours = folded(
                &ours[..=at],
                (onto, first.header.parent),
                first.header.map.clone(),
                me,
                &adopt,
                &carry,
            );
            if next.generation != current.generation {
                name_fork(&mut ours, first.header.parent);
            }
            return vec![(seed_seen(next, &seen, next.header.map.clone()), ours)];
        }
        // Further behind than the kept generations: the seed is too old to tell others'
        // deletions from ours. What we wrote is carried, placed by the text around it, and no
        // deletion — and, from the oldest one we kept if we started it, what we seeded it with
        // that the current text lacks (our writing from the ones before).
        let mut plan = Vec::new();
        for (at, era) in ours.iter().enumerate().rev() {
            let seed = seed_ids(era);
            // What of `era` went into the next of our own, if that started from it.
            let later = at
                .checked_sub(1)
                .map(|newer| ours[newer])
                .filter(|next| next.header.parent == era.generation)
                .map(|next| ids(&next.header.base));
            let own = |id: &ID| {
                id.client == me
                    && !seed.contains(id)
                    && later.as_ref().is_none_or(|later| later.contains(id))
            };
            let seeded = if at + 1 == ours.len() && era.generation.starter == self.replica {
                absent(&era.document, &current.document.text(), &seed)
            } else {
                IdSet::new()
            };
            plan.push((
                Seed {
                    text: Seed::of(&era.document, |id| !own(id) && !seeded.contains(id)).text,
                    ids: Vec::new(),
                    map: era.header.map.clone(),
                },
                Seed::of(&era.document, |_| true),
            ));
        }
        plan
    }

    /// Keeps `era` among the retired, newest first, at most [`KEPT`], without held content.
    /// The current generation's ancestors go last: a start that lost has been carried from
    /// already, while the line is what a peer behind shares with us — dropping the fork for a
    /// lost start would leave a later carry unable to tell who deleted what.
    fn retire(&mut self, mut era: Era) {
        era.document = without_held(self.replica, era.document);
        let at = self
            .retired
            .iter()
            .position(|kept| kept.generation < era.generation)
            .unwrap_or(self.retired.len());
        self.retired.insert(at, era);
        while self.retired.len() > KEPT {
            let held = self
                .retired
                .iter()
                .map(|era| (era.generation, era))
                .collect();
            let line: BTreeSet<Generation> = line(&self.current, &held)
                .iter()
                .map(|era| era.generation)
                .collect();
            let drop = self
                .retired
                .iter()
                .rposition(|era| !line.contains(&era.generation))
                .unwrap_or(self.retired.len() - 1);
            self.retired.remove(drop);
        }
    }
}

/// `document` without the content it holds for its causes: what a kept generation must not
/// have, since released later (by a copy merged in) it would count as carried forward when it
/// never was — its author carries it.
fn without_held(replica: u64, document: Document) -> Document {
    if !document.holds() {
        return document;
    }
    Document::from_snapshot(replica, &document.snapshot()).unwrap_or(document)
}

/// `newest` and the ancestors of it among `held`, newest first.
fn line<'a>(newest: &'a Era, held: &BTreeMap<Generation, &'a Era>) -> Vec<&'a Era> {
    let mut line = vec![newest];
    while let Some(last) = line.last()
        && last.generation != Generation::default()
        && let Some(parent) = held.get(&last.header.parent)
    {
        line.push(parent);
    }
    line
}

/// Names `fork` as the generation of `seed`'s origins in the fork's ids: they are the parent's
/// only if the fork is the parent of the generation carried into.
fn name_fork(seed: &mut Seed, fork: Generation) {
    for (generation, _) in seed.ids.iter_mut().flatten() {
        generation.get_or_insert(fork);
    }
}

/// An encoded id set (empty if it does not decode: nothing counts as seen).
fn ids(encoded: &[u8]) -> IdSet {
    IdSet::decode_v1(encoded).unwrap_or_default()
}
