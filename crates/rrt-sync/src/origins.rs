//! Where each character of a generation came from, so that a generation that lost to a
//! concurrent start can be read back in its parent's ids and carried from there, once.
//!
//! A generation's characters are of three kinds: its *seed* (the parent's text at the start,
//! written by the starter as the first clocks of its writer), characters *carried* into it (a
//! replica moving in writes what it held of the parent that the seed lacked), and characters typed
//! there. Without knowing which is which, a replica that moved onto a start which then lost could
//! only carry that generation's text as text: a carried copy of something the winner also got
//! from its author came twice, and a deletion there of a seed or carried character was a deletion
//! of a character the winner does not have.
//!
//! So the starter lists the seed's parent ids in order in the header
//! ([`Header::origins`](crate::Header::origins)), and a carrier writes, in the same update as what
//! it carried, a [`Record`] into the generation's list of origins. A losing generation is then
//! *folded* onto its parent ([`fold`]): a character it has with an origin is that parent
//! character; one with an origin that it deleted deletes that parent character; what this replica
//! typed there goes after the parent character it followed. Folded down to the generation the
//! winner started from, there is one text in one set of ids to carry from, as for any replica
//! that never moved.
//!
//! ```text
//!  parent g:  a b c d         (ids in g)
//!  losing g': a b c d  seed   (origins: g's a b c d)
//!             a   c d x       (b deleted there, x typed)
//!  folded:    a   c d x       (in g's ids, x typed: carried into the winner once, b deleted)
//! ```
//!
//! Both encodings are runs of consecutive ids, varint-coded (a seed typed in order is one run).
//! They come from peers: decoding is bounded by the input (every run takes at least two bytes
//! and covers at least one character) and a seed's runs must cover its text exactly.

use std::collections::{BTreeMap, HashMap, HashSet};

use yrs::{ClientID, ID, IdSet};

use crate::{document::DocError, generation_message::Generation};

/// The largest writer number yrs keeps (53 bits).
const MAX_CLIENT: u64 = (1 << 53) - 1;

/// Why origins from a peer do not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum OriginsError {
    /// The bytes end inside a number.
    #[error("origins end inside a number")]
    Truncated,
    /// A number is larger than its field (a writer over 53 bits, a clock over 32).
    #[error("a number in the origins is out of range")]
    OutOfRange,
    /// A run of no characters.
    #[error("an empty run in the origins")]
    EmptyRun,
    /// A seed's runs do not cover its text exactly.
    #[error("origins of {found} characters for a seed of {expected}")]
    Length {
        /// UTF-16 code units of the seed.
        expected: u64,
        /// UTF-16 code units the runs covered before they were refused.
        found: u64,
    },
}

impl From<OriginsError> for DocError {
    fn from(error: OriginsError) -> Self {
        DocError::Malformed(error.to_string())
    }
}

/// Consecutive ids: `len` UTF-16 code units from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) start: ID,
    pub(crate) len: u32,
}

/// Where carried characters came from: the characters from `start` on (consecutive clocks of one
/// writer) are, in order, copies of the characters `from` of the parent — or, if `generation` is
/// set, of that generation (what the carrier typed in a start that lost, which may yet be the
/// parent of a later winner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) start: ID,
    pub(crate) generation: Option<Generation>,
    pub(crate) from: Vec<Run>,
}

impl Record {
    /// The writer and clock of `start`, then 0 for the parent or the generation's number plus
    /// one and its starter, then the runs (varints).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        write(&mut bytes, self.start.client.get());
        write(&mut bytes, u64::from(self.start.clock));
        match self.generation {
            None => write(&mut bytes, 0),
            Some(generation) => {
                write(&mut bytes, generation.number.saturating_add(1));
                write(&mut bytes, generation.starter);
            }
        }
        bytes.extend(encode_runs(&self.from));
        bytes
    }

    pub(crate) fn decode(mut bytes: &[u8]) -> Result<Self, OriginsError> {
        let start = ID::new(client(read(&mut bytes)?)?, clock(read(&mut bytes)?)?);
        let generation = match read(&mut bytes)? {
            0 => None,
            number => Some(Generation {
                number: number - 1,
                starter: read(&mut bytes)?,
            }),
        };
        let from = decode_runs(bytes, u64::from(u32::MAX - start.clock))?;
        Ok(Self {
            start,
            generation,
            from,
        })
    }
}

/// The runs of a sequence of ids, each of `units` UTF-16 code units.
pub(crate) fn runs(ids: impl IntoIterator<Item = (ID, u32)>) -> Vec<Run> {
    let mut runs = Vec::new();
    for (id, units) in ids {
        extend(&mut runs, id, units);
    }
    runs
}

/// `runs` followed by `units` code units from `id`.
pub(crate) fn extend(runs: &mut Vec<Run>, id: ID, units: u32) {
    match runs.last_mut() {
        Some(run)
            if run.start.client == id.client
                && run.start.clock.checked_add(run.len) == Some(id.clock) =>
        {
            run.len += units;
        }
        _ => runs.push(Run {
            start: id,
            len: units,
        }),
    }
}

/// Runs as bytes: per run, `len · 2 + (writer changed)`, the writer if it changed, and the
/// clock's distance from where the writer's previous run ended (zigzag).
pub(crate) fn encode_runs(runs: &[Run]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut previous: Option<ID> = None;
    for run in runs {
        let changed = previous.is_none_or(|end| end.client != run.start.client);
        write(&mut bytes, u64::from(run.len) << 1 | u64::from(changed));
        if changed {
            write(&mut bytes, run.start.client.get());
        }
        let end = previous.filter(|_| !changed).map_or(0, |end| end.clock);
        write(
            &mut bytes,
            zigzag(i64::from(run.start.clock) - i64::from(end)),
        );
        previous = Some(ID::new(run.start.client, run.start.clock + run.len));
    }
    bytes
}

/// The runs `bytes` encode, covering at most `most` code units.
pub(crate) fn decode_runs(mut bytes: &[u8], most: u64) -> Result<Vec<Run>, OriginsError> {
    let mut runs = Vec::new();
    let mut covered = 0u64;
    let mut previous: Option<ID> = None;
    while !bytes.is_empty() {
        let head = read(&mut bytes)?;
        let len = u32::try_from(head >> 1).map_err(|_| OriginsError::OutOfRange)?;
        if len == 0 {
            return Err(OriginsError::EmptyRun);
        }
        covered += u64::from(len);
        if covered > most {
            return Err(OriginsError::Length {
                expected: most,
                found: covered,
            });
        }
        let writer = match previous {
            Some(end) if head & 1 == 0 => end.client,
            Some(_) | None if head & 1 == 1 => client(read(&mut bytes)?)?,
            _ => return Err(OriginsError::OutOfRange),
        };
        let end = previous
            .filter(|_| head & 1 == 0)
            .map_or(0, |end| end.clock);
        let start = clock(
            u64::try_from(i64::from(end) + unzigzag(read(&mut bytes)?))
                .map_err(|_| OriginsError::OutOfRange)?,
        )?;
        let stop = start.checked_add(len).ok_or(OriginsError::OutOfRange)?;
        let run = Run {
            start: ID::new(writer, start),
            len,
        };
        runs.push(run);
        previous = Some(ID::new(writer, stop));
    }
    Ok(runs)
}

/// A seed's origins: its runs, which must cover exactly `units` UTF-16 code units.
pub(crate) fn decode_seed(bytes: &[u8], units: usize) -> Result<Vec<Run>, OriginsError> {
    let expected = units as u64;
    let runs = decode_runs(bytes, expected)?;
    let found = runs.iter().map(|run| u64::from(run.len)).sum();
    if found != expected {
        return Err(OriginsError::Length { expected, found });
    }
    Ok(runs)
}

/// The parent id of each character of a seed `text`, from its runs (which cover it, as
/// [`decode_seed`] checked; characters past them get none).
pub(crate) fn seed_ids(text: &str, runs: &[Run]) -> Vec<Option<ID>> {
    let mut units = runs.iter().flat_map(|run| {
        (0..run.len).map(move |offset| ID::new(run.start.client, run.start.clock + offset))
    });
    let mut ids = Vec::new();
    for c in text.chars() {
        ids.push(units.next());
        for _ in 1..c.len_utf16() {
            units.next();
        }
    }
    ids
}

/// A generation's characters mapped to its parent's (or, for copies of what a carrier typed in a
/// start that lost, to that generation's).
#[derive(Debug, Default)]
pub(crate) struct Origins {
    /// By the first id of a run of the generation's characters: whose (`None`: the parent's),
    /// the first id there, and how many.
    runs: BTreeMap<ID, (Option<Generation>, ID, u32)>,
}

impl Origins {
    /// The seed (`starter`'s first clocks, from `seed`) and every record that decodes: a record
    /// is content of the generation, written by any replica, so one that does not decode is
    /// left out rather than making the generation unusable.
    pub(crate) fn new(
        starter: ClientID,
        seed: &[Run],
        records: impl IntoIterator<Item = impl AsRef<[u8]>>,
    ) -> Self {
        let mut origins = Self::default();
        origins.add(ID::new(starter, 0), None, seed);
        for record in records {
            if let Ok(record) = Record::decode(record.as_ref()) {
                origins.add(record.start, record.generation, &record.from);
            }
        }
        origins
    }

    fn add(&mut self, start: ID, generation: Option<Generation>, from: &[Run]) {
        let mut clock = start.clock;
        for run in from {
            self.runs.insert(
                ID::new(start.client, clock),
                (generation, run.start, run.len),
            );
            clock = clock.saturating_add(run.len);
        }
    }

    /// The character `id` is a copy of: whose (`None`: the parent's), and its id there.
    pub(crate) fn of(&self, id: ID) -> Option<(Option<Generation>, ID)> {
        let (start, (generation, from, len)) = self.runs.range(..=id).next_back()?;
        let offset = (start.client == id.client)
            .then(|| id.clock - start.clock)
            .filter(|offset| offset < len)?;
        Some((
            *generation,
            ID::new(from.client, from.clock.checked_add(offset)?),
        ))
    }

    /// The generation's character that is a copy of parent character `id`.
    fn copy_of(reverse: &BTreeMap<ID, (ID, u32)>, id: ID) -> Option<ID> {
        let (from, (start, len)) = reverse.range(..=id).next_back()?;
        let offset = (from.client == id.client)
            .then(|| id.clock - from.clock)
            .filter(|offset| offset < len)?;
        Some(ID::new(start.client, start.clock.checked_add(offset)?))
    }

    fn reverse(&self) -> BTreeMap<ID, (ID, u32)> {
        self.runs
            .iter()
            .filter(|(_, (generation, _, _))| generation.is_none())
            .map(|(start, (_, from, len))| (*from, (*start, *len)))
            .collect()
    }
}

/// A text, each character marked with where it is.
pub(crate) type Text = Vec<(char, Mark)>;

/// Where a character of a [`Text`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// In the generation at hand, with this id.
    Here(ID),
    /// Typed by this replica in a generation folded onto this one (a start that lost): that
    /// generation, and its id there.
    From(Generation, ID),
}

impl Mark {
    pub(crate) fn here(self) -> Option<ID> {
        match self {
            Mark::Here(id) => Some(id),
            Mark::From(..) => None,
        }
    }
}

/// `child` (the text of generation `generation`, started from `parent`'s, as this replica holds
/// it, maybe itself folded) folded onto `parent`: the parent's characters, without those the
/// child has a copy of and deleted, and with what `me` typed in the child after the parent
/// character it followed. `seen` is everything the child generation has seen (so a copy not yet
/// received is not taken for a deleted one). A copy by `me` of a parent character that `parent`
/// lacks is kept, in place, if `adopt` takes its origin (for a parent known only in part). What
/// `me` typed in a start that lost (here, or copied here from one) is kept if `carry` takes it:
/// the start may be the parent of the winner, which may have it already.
pub(crate) fn fold(
    (parent, parent_generation): (&Text, Generation),
    (child, generation): (&Text, Generation),
    origins: &Origins,
    seen: &IdSet,
    me: ClientID,
    adopt: &dyn Fn(&ID) -> bool,
    carry: &dyn Fn(Generation, ID) -> bool,
) -> Text {
    let at: HashMap<ID, usize> = parent
        .iter()
        .enumerate()
        .filter_map(|(at, (_, mark))| mark.here().map(|id| (id, at)))
        .collect();
    // Typed in the child, by the parent character it follows (`None`: the start).
    let mut typed: HashMap<Option<usize>, Text> = HashMap::new();
    let mut anchor = None;
    for (c, mark) in child {
        // Whose copy it is (`None`: the parent's), and whether we wrote it.
        let (origin, ours) = match *mark {
            Mark::From(elsewhere, id) => (Some((Some(elsewhere), id)), true),
            Mark::Here(id) => (origins.of(id), id.client == me),
        };
        let origin = origin.map(|(of, id)| (of.filter(|of| *of != parent_generation), id));
        let mine = match (origin, *mark) {
            (Some((None, origin)), _) => match at.get(&origin) {
                Some(at) => {
                    anchor = Some(*at);
                    None
                }
                None => (ours && adopt(&origin)).then_some(Mark::Here(origin)),
            },
            (Some((Some(elsewhere), origin)), _) => ours.then_some(Mark::From(elsewhere, origin)),
            (None, Mark::Here(id)) => ours.then_some(Mark::From(generation, id)),
            (None, Mark::From(..)) => None,
        };
        let keep = match mine {
            Some(Mark::From(generation, id)) => carry(generation, id),
            Some(Mark::Here(_)) => true,
            None => false,
        };
        if let (true, Some(mark)) = (keep, mine) {
            typed.entry(anchor).or_default().push((*c, mark));
        }
    }
    let deleted = deleted(child, origins, seen);
    let mut folded: Text = typed.remove(&None).unwrap_or_default();
    for (at, (c, mark)) in parent.iter().enumerate() {
        if !mark.here().as_ref().is_some_and(&deleted) {
            folded.push((*c, *mark));
        }
        folded.extend(typed.remove(&Some(at)).unwrap_or_default());
    }
    folded
}

/// Whether a parent character has a copy in `child` (a generation's text, as in [`fold`]) that the
/// child saw deleted.
fn deleted<'a>(child: &Text, origins: &'a Origins, seen: &'a IdSet) -> impl Fn(&ID) -> bool + 'a {
    let live: HashSet<ID> = child.iter().filter_map(|(_, mark)| mark.here()).collect();
    let reverse = origins.reverse();
    move |id: &ID| {
        Origins::copy_of(&reverse, *id)
            .is_some_and(|copy| seen.contains(&copy) && !live.contains(&copy))
    }
}

fn client(value: u64) -> Result<ClientID, OriginsError> {
    if value > MAX_CLIENT {
        return Err(OriginsError::OutOfRange);
    }
    Ok(ClientID::new(value))
}

fn clock(value: u64) -> Result<u32, OriginsError> {
    u32::try_from(value).map_err(|_| OriginsError::OutOfRange)
}

fn write(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn read(bytes: &mut &[u8]) -> Result<u64, OriginsError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or(OriginsError::Truncated)?;
        *bytes = rest;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(OriginsError::OutOfRange);
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(OriginsError::OutOfRange)
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(client: u64, clock: u32) -> ID {
        ID::new(ClientID::new(client), clock)
    }

    #[test]
    fn runs_round_trip_and_a_seed_must_cover_its_text() {
        let seed = runs([(id(7, 0), 1), (id(7, 1), 2), (id(9, 40), 1), (id(7, 2), 1)]);
        assert_eq!(seed.len(), 3);
        let bytes = encode_runs(&seed);
        assert_eq!(decode_seed(&bytes, 5), Ok(seed.clone()));
        assert!(matches!(
            decode_seed(&bytes, 4),
            Err(OriginsError::Length { .. })
        ));
        assert!(matches!(
            decode_seed(&bytes, 6),
            Err(OriginsError::Length { .. })
        ));
        assert_eq!(
            decode_seed(&bytes[..bytes.len() - 1], 5),
            Err(OriginsError::Truncated)
        );
        for generation in [
            None,
            Some(Generation {
                number: 4,
                starter: 2,
            }),
        ] {
            let record = Record {
                start: id(3, 10),
                generation,
                from: seed.clone(),
            };
            assert_eq!(Record::decode(&record.encode()), Ok(record));
        }
    }

    #[test]
    fn hostile_origins_are_refused_without_allocating_for_them() {
        // A run of four billion characters, for a seed of five.
        let mut bytes = Vec::new();
        write(&mut bytes, u64::from(u32::MAX) << 1 | 1);
        write(&mut bytes, 1);
        write(&mut bytes, 0);
        assert!(matches!(
            decode_seed(&bytes, 5),
            Err(OriginsError::Length { .. })
        ));
        // A writer over 53 bits, a clock over 32, a number over 64.
        for value in [1 << 53, u64::MAX] {
            let mut bytes = Vec::new();
            write(&mut bytes, 3);
            write(&mut bytes, value);
            write(&mut bytes, 0);
            assert_eq!(decode_seed(&bytes, 1), Err(OriginsError::OutOfRange));
        }
        assert_eq!(
            decode_seed(
                &[
                    0x83, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01
                ],
                9
            ),
            Err(OriginsError::OutOfRange)
        );
        assert_eq!(decode_seed(&[0], 1), Err(OriginsError::EmptyRun));
    }

    #[test]
    fn a_fold_deletes_what_the_child_deleted_and_keeps_what_was_typed_there_in_place() {
        let (parent_writer, starter, me) = (1, 2, 3);
        let parent: Text = "abcd"
            .chars()
            .zip(0..)
            .map(|(c, clock)| (c, Mark::Here(id(parent_writer, clock))))
            .collect();
        let seed = runs((0..4).map(|clock| (id(parent_writer, clock), 1)));
        let origins = Origins::new(ClientID::new(starter), &seed, std::iter::empty::<Vec<u8>>());
        // The child deleted b (its clock 1), and `me` typed x after d, another writer y after a.
        let child: Text = vec![
            ('a', Mark::Here(id(starter, 0))),
            ('y', Mark::Here(id(9, 0))),
            ('c', Mark::Here(id(starter, 2))),
            ('d', Mark::Here(id(starter, 3))),
            ('x', Mark::Here(id(me, 0))),
        ];
        let mut seen = IdSet::new();
        seen.insert(id(starter, 0), 4);
        let generation = Generation { number: 1, starter };
        let parent_generation = Generation {
            number: 0,
            starter: 0,
        };
        let folded = fold(
            (&parent, parent_generation),
            (&child, generation),
            &origins,
            &seen,
            ClientID::new(me),
            &|_| false,
            &|_, _| true,
        );
        let text: String = folded.iter().map(|(c, _)| c).collect();
        assert_eq!(text, "acdx");
        assert_eq!(folded[3].1, Mark::From(generation, id(me, 0)));
    }
}
