//! Carrying a generation's content into a newer one: the texts to carry from and to, built from
//! where each character came from, and the edits that carry them
//! ([`Lineage`](super::Lineage)'s moves decide which generations; this says how).

use std::collections::{BTreeMap, BTreeSet};

use yrs::{ID, IdSet};

use super::Era;
use crate::{
    document::{Document, writer_of},
    generation_message::Generation,
    origins::{self, Mark, Origins, Record},
    three_way,
};

/// A text and map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seed {
    pub(super) text: String,
    /// For each character of `text`, where it came from, if known (empty: none is): its id in
    /// the parent of the generation carried into (`None`), or in a start that lost, where we typed
    /// it — so that a carried copy records its origin.
    pub(super) ids: Vec<Option<(Option<Generation>, ID)>>,
    pub(super) map: BTreeMap<String, String>,
}

impl Seed {
    /// `document`'s text as carried: the characters whose ids `keep` takes, in order; and its
    /// map.
    pub(super) fn of(document: &Document, keep: impl Fn(&ID) -> bool) -> Self {
        Self {
            text: document
                .characters()
                .into_iter()
                .filter(|(_, id)| keep(id))
                .map(|(c, _)| c)
                .collect(),
            ids: Vec::new(),
            map: document.entries(),
        }
    }
}

/// `onto` (the text of the fork, as carried) with the generations of ours started after it and
/// lost (`lost`, newest first) folded onto it: their deletions of its characters made, what
/// `me` typed in them put in place (if `carry` takes it: see [`origins::fold`]), and their
/// changes to the map made. `adopt` is [`origins::fold`]'s for the fork (a fork known only by
/// what ours started with).
pub(super) fn folded(
    lost: &[&Era],
    (onto, fork): (origins::Text, Generation),
    mut map: BTreeMap<String, String>,
    me: yrs::ClientID,
    adopt: &dyn Fn(&ID) -> bool,
    carry: &dyn Fn(Generation, ID) -> bool,
) -> Seed {
    let mut text: Option<origins::Text> = None;
    for (at, era) in lost.iter().enumerate() {
        let child = text
            .take()
            .unwrap_or_else(|| characters(&era.document, |_| true));
        // Our copy of an older start may lack what we carried from it (it may be a peer's
        // copy): a copy of ours is kept unless that start saw it deleted.
        let older_seen = lost.get(at + 1).map(|older| older.document.seen());
        let unseen = |id: &ID| older_seen.as_ref().is_some_and(|seen| !seen.contains(id));
        let (parent, adopt) = match lost.get(at + 1) {
            Some(older) => (
                (characters(&older.document, |_| true), older.generation),
                &unseen as &dyn Fn(&ID) -> bool,
            ),
            None => ((onto.clone(), fork), adopt),
        };
        let origins = origins_of(era);
        text = Some(origins::fold(
            (&parent.0, parent.1),
            (&child, era.generation),
            &origins,
            &era.document.seen(),
            me,
            adopt,
            carry,
        ));
    }
    for era in lost.iter().rev() {
        let now = era.document.entries();
        for (key, before) in &era.header.map {
            if !now.contains_key(key) && map.get(key) == Some(before) {
                map.remove(key);
            }
        }
        for (key, value) in now {
            if era.header.map.get(&key) != Some(&value) {
                map.insert(key, value);
            }
        }
    }
    let text = text.unwrap_or(onto);
    Seed {
        text: text.iter().map(|(c, _)| c).collect(),
        ids: text
            .into_iter()
            .map(|(_, mark)| {
                Some(match mark {
                    Mark::Here(id) => (None, id),
                    Mark::From(generation, id) => (Some(generation), id),
                })
            })
            .collect(),
        map,
    }
}

/// Where `era`'s characters came from.
pub(super) fn origins_of(era: &Era) -> Origins {
    Origins::new(
        writer_of(era.generation.starter),
        &seed_runs(era),
        era.document.origin_records(),
    )
}

/// The runs of `era`'s seed origins: checked when the header arrived, and our own starts write
/// them valid.
pub(super) fn seed_runs(era: &Era) -> Vec<origins::Run> {
    origins::decode_seed(&era.header.origins, era.header.text.encode_utf16().count())
        .unwrap_or_default()
}

/// `era`'s seed, each character with its id in the parent.
pub(super) fn seed(era: &Era) -> Vec<(char, Option<ID>)> {
    era.header
        .text
        .chars()
        .zip(origins::seed_ids(&era.header.text, &seed_runs(era)))
        .collect()
}

/// The ancestor of a carry into `next`'s line: its seed, without the characters we never saw
/// (which we cannot have seen deleted), and `map`.
pub(super) fn seed_seen(next: &Era, seen: &IdSet, map: BTreeMap<String, String>) -> Seed {
    Seed {
        text: seed(next)
            .into_iter()
            .filter(|(_, id)| id.is_some_and(|id| seen.contains(&id)))
            .map(|(c, _)| c)
            .collect(),
        ids: Vec::new(),
        map,
    }
}

/// The characters of `document` that `keep` takes, with their ids.
pub(super) fn characters(document: &Document, keep: impl Fn(&ID) -> bool) -> origins::Text {
    document
        .characters()
        .into_iter()
        .filter(|(_, id)| keep(id))
        .map(|(c, id)| (c, Mark::Here(id)))
        .collect()
}

/// Applies to `target` what changed from `ancestor` to `ours`: the text's changes, character by
/// character ([`three_way`]; for texts too far apart to align, what changed inserted as one run),
/// and every key whose value differs. The updates made.
pub(super) fn rebase(target: &Document, ancestor: &Seed, ours: &Seed) -> Vec<Vec<u8>> {
    let mut updates = Vec::new();
    if ours.text != ancestor.text {
        let current = target.text();
        match three_way::carry(&ancestor.text, &ours.text, &current) {
            Some(splices) => {
                let units: Vec<usize> = std::iter::once(0)
                    .chain(current.chars().scan(0, |sum, c| {
                        *sum += c.len_utf16();
                        Some(*sum)
                    }))
                    .collect();
                for splice in splices {
                    let at = units[splice.at];
                    if splice.delete > 0 {
                        updates.push(target.delete(at, units[splice.at + splice.delete] - at));
                    }
                    if !splice.insert.is_empty() {
                        let clock = target.next_clock();
                        updates.push(target.insert(at, &splice.insert));
                        let from = ours.ids.iter().skip(splice.from);
                        for record in records(target.writer(), clock, &splice.insert, from) {
                            updates.push(target.record_origins(record.encode()));
                        }
                    }
                }
            }
            None => {
                // Too far apart to align: what ours changed goes in as one run, and nothing is
                // deleted (a region deleted whole could take the new generation's edits with it).
                let before: Vec<char> = ancestor.text.chars().collect();
                let after: Vec<char> = ours.text.chars().collect();
                let (prefix, suffix) = crate::changed_region(&before, &after);
                let run: String = after[prefix..after.len() - suffix].iter().collect();
                if !run.is_empty() {
                    let at: usize = before[..prefix].iter().map(|c| c.len_utf16()).sum();
                    let at = crate::rebase(&ancestor.text, &current, at, crate::Bias::After);
                    updates.push(target.insert(at, &run));
                }
            }
        }
    }
    let keys: BTreeSet<&String> = ancestor.map.keys().chain(ours.map.keys()).collect();
    for key in keys {
        match (ancestor.map.get(key), ours.map.get(key)) {
            (before, Some(value)) if before != Some(value) => updates.push(target.set(key, value)),
            (Some(_), None) => updates.push(target.remove(key)),
            _ => {}
        }
    }
    updates
}

/// Where the characters of `inserted`, written from `(writer, clock)` on, came from: a record per
/// run of them that are copies of one generation's characters (`from`, in order).
pub(super) fn records<'a>(
    writer: yrs::ClientID,
    mut clock: u32,
    inserted: &str,
    from: impl Iterator<Item = &'a Option<(Option<Generation>, ID)>>,
) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    let mut open = false;
    for (c, origin) in inserted.chars().zip(from) {
        let units = c.len_utf16() as u32;
        match origin {
            Some((generation, origin)) => {
                match records.last_mut() {
                    Some(record) if open && record.generation == *generation => {
                        origins::extend(&mut record.from, *origin, units);
                    }
                    _ => records.push(Record {
                        start: ID::new(writer, clock),
                        generation: *generation,
                        from: origins::runs([(*origin, units)]),
                    }),
                }
                open = true;
            }
            None => open = false,
        }
        clock += units;
    }
    records
}

/// The characters of `document` among `ids` that `text` does not have (by a longest common
/// subsequence of the two texts; none if they are too far apart to align).
pub(super) fn absent(document: &Document, text: &str, ids: &IdSet) -> IdSet {
    let characters = document.characters();
    let ours: Vec<char> = characters.iter().map(|(c, _)| *c).collect();
    let theirs: Vec<char> = text.chars().collect();
    let mut absent = IdSet::new();
    if let Some(present) = three_way::matching(&ours, &theirs) {
        for ((_, id), present) in characters.iter().zip(present) {
            if present.is_none() && ids.contains(id) {
                absent.insert(*id, 1);
            }
        }
    }
    absent
}

/// The ids of what `era` was seeded with: its starter's first clocks (the text, then a clock per
/// map entry, as [`Lineage::start`](super::Lineage::start) writes them).
pub(super) fn seed_ids(era: &Era) -> IdSet {
    let mut ids = IdSet::new();
    if era.generation != Generation::default() {
        let units = era.header.text.encode_utf16().count() + era.header.map.len();
        ids.insert(
            ID::new(writer_of(era.generation.starter), 0),
            u32::try_from(units).unwrap_or(u32::MAX),
        );
    }
    ids
}
