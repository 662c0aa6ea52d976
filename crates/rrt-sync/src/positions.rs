//! Where a position in the text is, without walking the whole document: an index from UTF-16
//! positions to the ids of the visible characters, and what lies immediately to the left of
//! each, so a local edit can be written as the update yrs itself would make.
//!
//! Why: yrs finds a position by walking every block of the text from its start, deleted ones
//! included (`find_position`); after a long history that walk is most of an edit's time (Yjs
//! caches positions in search markers, yrs has none, and its blocks are not public, so no cache
//! can be kept over them). An insertion is fully described by its id, the character it follows
//! in the document's order (its *origin*, deleted or not) and the visible character it precedes
//! (its *right origin*) — exactly what yrs' own `Text::insert` picks: it skips deleted blocks to
//! the right of the position, so the origin is the item just before the next visible
//! character. A deletion is just the ids it removes. Both are looked up here in a chunked list
//! of runs (a run: consecutive ids of one writer, adjacent in the document), and the update is
//! then integrated through yrs' remote path, which finds its neighbours by id, not by walking.
//!
//! ```text
//!  document order:   a b c [x y]  d e      (x y deleted)
//!  runs:             (a..c, left: start) (d..e, left: after y)
//!  insert at 3  →    origin y, right origin d   (what yrs' walk would choose)
//! ```
//!
//! What is known about a neighbour comes only from edits made here, whose effects are known
//! exactly. An update from elsewhere may put anything anywhere, so the document drops the index
//! and rebuilds it from the text's visible blocks on its next local edit ([`Positions::rebuilt`]);
//! their left neighbours are then [`Left::Unknown`] (deleted blocks are not listed), and an
//! insertion at such a boundary is left to yrs' walk once — the character it inserts is then
//! known.
//!
//! The rebuild asks yrs' `diff_range` for the text between two snapshots, everything now against
//! nothing, so every visible block comes out as its own chunk marked "added", with its id. "Now"
//! must not be yrs' own `txn.snapshot()`: yrs integrates a writer's block that arrives before
//! that writer's earlier blocks when it depends on none of them (`Update::integrate` puts a
//! *skip* over the gap in the writer's clocks), and the store's state vector — the one in
//! `txn.snapshot()` — stops at a writer's first gap. The diff then takes every block of that
//! writer past the gap for one not yet written and leaves it out, text and id together; the index
//! came out shorter than the text (a lost map entry is enough: the writer's next insertion skips
//! over its clock). It was never a chunk without an id. The snapshot used here sees every clock
//! of every writer, and the deletions the store has.

use yrs::{
    ClientID, ID, IdSet, Out, ReadTxn, Snapshot, StateVector, Text, TextRef, TransactionMut,
    types::text::{Diff, YChange},
};

/// Runs per chunk before a chunk is split in two: a position is found by summing chunk lengths,
/// then run lengths in one chunk.
const CHUNK_RUNS: usize = 64;

/// What is immediately to the left of a character (or of the end) in the document's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Left {
    /// Not known here (an edit made elsewhere, or the index was rebuilt).
    Unknown,
    /// Nothing: the character is first in the document.
    Start,
    /// The character with this id (visible or deleted).
    After(ID),
}

/// Consecutive ids of one writer, visible and adjacent in the document.
#[derive(Debug, Clone, Copy)]
struct Run {
    client: ClientID,
    clock: u32,
    len: u32,
    /// What precedes the run's first character.
    left: Left,
}

impl Run {
    fn id(&self, offset: u32) -> ID {
        ID::new(self.client, self.clock + offset)
    }

    fn last(&self) -> ID {
        self.id(self.len - 1)
    }

    /// The part from `offset` on; its first character follows the one before `offset`.
    fn tail_from(&self, offset: u32) -> Run {
        Run {
            client: self.client,
            clock: self.clock + offset,
            len: self.len - offset,
            left: Left::After(self.id(offset - 1)),
        }
    }

    /// Whether `next` continues this run: the same writer's next ids, right after it.
    fn continued_by(&self, next: &Run) -> bool {
        next.client == self.client
            && next.clock == self.clock + self.len
            && next.left == Left::After(self.last())
    }
}

#[derive(Debug, Default)]
struct Chunk {
    runs: Vec<Run>,
    /// Visible UTF-16 code units in the chunk.
    len: usize,
}

/// Where an insertion goes, as yrs would encode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Neighbours {
    /// The character it follows (`None`: the document's start).
    pub(crate) origin: Option<ID>,
    /// The visible character it precedes (`None`: the end).
    pub(crate) right_origin: Option<ID>,
}

/// The index of a text's visible characters (see the module docs).
#[derive(Debug)]
pub(crate) struct Positions {
    chunks: Vec<Chunk>,
    /// What precedes the end of the text.
    end: Left,
    len: usize,
}

impl Positions {
    /// The index of an empty text that has never had anything in it.
    pub(crate) fn empty() -> Self {
        Self {
            chunks: Vec::new(),
            end: Left::Start,
            len: 0,
        }
    }

    /// An index of `text`'s visible characters, in one walk of its blocks (see the module docs);
    /// what precedes each block is unknown. It covers the whole text unless the text holds
    /// something other than strings (an embed or a nested type, which rrt never writes but a peer
    /// could): yrs' diff gives those no id, and the caller must not use an index shorter than the
    /// text.
    pub(crate) fn rebuilt(text: &TextRef, txn: &mut TransactionMut<'_>) -> Self {
        let Snapshot {
            delete_set,
            state_map,
        } = txn.snapshot();
        // Every clock of every writer the store knows, gaps or not (`state_map` stops at a
        // writer's first gap but lists every writer).
        let everything: StateVector = state_map
            .iter()
            .map(|(client, _)| (*client, u32::MAX))
            .collect();
        let now = Snapshot::new(everything, delete_set);
        let nothing = Snapshot::new(StateVector::default(), IdSet::new());
        let chunks: Vec<Diff<YChange>> =
            text.diff_range(txn, Some(&now), Some(&nothing), YChange::identity);
        Self::from_blocks(chunks.into_iter().filter_map(|chunk| {
            let len = match &chunk.insert {
                Out::Any(yrs::Any::String(text)) => text.encode_utf16().count() as u32,
                _ => 1,
            };
            Some((chunk.ychange?.id, len))
        }))
    }

    /// An index of the visible blocks `(first id, length in UTF-16 code units)`, in order; what
    /// precedes each block is unknown (deleted blocks may).
    pub(crate) fn from_blocks(blocks: impl IntoIterator<Item = (ID, u32)>) -> Self {
        let mut positions = Self {
            chunks: Vec::new(),
            end: Left::Unknown,
            len: 0,
        };
        let mut chunk = Chunk::default();
        for (id, len) in blocks.into_iter().filter(|(_, len)| *len > 0) {
            chunk.runs.push(Run {
                client: id.client,
                clock: id.clock,
                len,
                left: Left::Unknown,
            });
            chunk.len += len as usize;
            positions.len += len as usize;
            if chunk.runs.len() == CHUNK_RUNS {
                positions.chunks.push(std::mem::take(&mut chunk));
            }
        }
        if !chunk.runs.is_empty() {
            positions.chunks.push(chunk);
        }
        positions
    }

    /// The text's length in UTF-16 code units.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Where an insertion at `index` (at most [`Positions::len`]) goes, if both neighbours are
    /// known here.
    pub(crate) fn neighbours(&self, index: usize) -> Option<Neighbours> {
        let (origin, right_origin) = if index >= self.len {
            (self.end, None)
        } else {
            let (chunk, run, offset) = self.locate(index);
            let run = &self.chunks[chunk].runs[run];
            let origin = match offset {
                0 => run.left,
                _ => Left::After(run.id(offset - 1)),
            };
            (origin, Some(run.id(offset)))
        };
        let origin = match origin {
            Left::Unknown => return None,
            Left::Start => None,
            Left::After(id) => Some(id),
        };
        Some(Neighbours {
            origin,
            right_origin,
        })
    }

    /// Records `len` code units with ids from `id` on, inserted right before the character at
    /// `index` (or at the end), after `left`.
    pub(crate) fn inserted(&mut self, index: usize, id: ID, len: u32, left: Left) {
        if len == 0 {
            return;
        }
        let new = Run {
            client: id.client,
            clock: id.clock,
            len,
            left,
        };
        let follower = Left::After(new.last());
        if index >= self.len {
            self.end = follower;
            if self.chunks.is_empty() {
                self.chunks.push(Chunk::default());
            }
            let last = self.chunks.len() - 1;
            self.insert_run(last, self.chunks[last].runs.len(), new);
        } else {
            let (chunk, mut at, offset) = self.locate(index);
            if offset > 0 {
                let run = &mut self.chunks[chunk].runs[at];
                let mut tail = run.tail_from(offset);
                run.len = offset;
                tail.left = follower;
                self.chunks[chunk].runs.insert(at + 1, tail);
                at += 1;
            } else {
                self.chunks[chunk].runs[at].left = follower;
            }
            self.insert_run(chunk, at, new);
        }
        self.len += len as usize;
    }

    /// Takes `len` code units from `index` out of the index, and returns their ids as ranges
    /// `(first id, length)`. What precedes the characters after them does not change: deleted
    /// characters stay in the document's order.
    pub(crate) fn removed(&mut self, index: usize, len: usize) -> Vec<(ID, u32)> {
        let mut ranges = Vec::new();
        let mut remaining = len.min(self.len.saturating_sub(index));
        if remaining == 0 {
            return ranges;
        }
        self.len -= remaining;
        let (mut chunk, mut at, mut offset) = self.locate(index);
        while remaining > 0 {
            let run = self.chunks[chunk].runs[at];
            let take = (run.len - offset).min(u32::try_from(remaining).unwrap_or(u32::MAX));
            ranges.push((run.id(offset), take));
            remaining -= take as usize;
            self.chunks[chunk].len -= take as usize;
            let runs = &mut self.chunks[chunk].runs;
            match (offset, offset + take == run.len) {
                (0, true) => {
                    runs.remove(at);
                }
                (0, false) => runs[at] = run.tail_from(take),
                (_, true) => {
                    runs[at].len = offset;
                    at += 1;
                }
                (_, false) => {
                    runs[at].len = offset;
                    runs.insert(at + 1, run.tail_from(offset + take));
                    at += 1;
                }
            }
            offset = 0;
            if at == self.chunks[chunk].runs.len() {
                if self.chunks[chunk].runs.is_empty() {
                    self.chunks.remove(chunk);
                } else {
                    chunk += 1;
                }
                at = 0;
            }
        }
        ranges
    }

    /// The chunk, run and offset in the run of the character at `index` (below the length).
    fn locate(&self, mut index: usize) -> (usize, usize, u32) {
        for (c, chunk) in self.chunks.iter().enumerate() {
            if index >= chunk.len {
                index -= chunk.len;
                continue;
            }
            for (r, run) in chunk.runs.iter().enumerate() {
                if index < run.len as usize {
                    return (c, r, index as u32);
                }
                index -= run.len as usize;
            }
        }
        unreachable!("a position below the length is in a chunk")
    }

    /// Puts `new` at `at` in `chunk`, joined to the run before it when it continues that run.
    fn insert_run(&mut self, chunk: usize, at: usize, new: Run) {
        self.chunks[chunk].len += new.len as usize;
        let runs = &mut self.chunks[chunk].runs;
        if at > 0 && runs[at - 1].continued_by(&new) {
            runs[at - 1].len += new.len;
            return;
        }
        runs.insert(at, new);
        if runs.len() > 2 * CHUNK_RUNS {
            let second = runs.split_off(CHUNK_RUNS);
            let len = second.iter().map(|run| run.len as usize).sum::<usize>();
            self.chunks[chunk].len -= len;
            self.chunks.insert(chunk + 1, Chunk { runs: second, len });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(client: u64, clock: u32) -> ID {
        ID::new(ClientID::new(client), clock)
    }

    #[test]
    fn typing_extends_one_run_and_knows_both_neighbours() {
        let mut positions = Positions::empty();
        assert_eq!(
            positions.neighbours(0),
            Some(Neighbours {
                origin: None,
                right_origin: None
            })
        );
        positions.inserted(0, id(1, 0), 3, Left::Start);
        positions.inserted(3, id(1, 3), 2, Left::After(id(1, 2)));
        assert_eq!(positions.chunks[0].runs.len(), 1, "one run");
        assert_eq!(
            positions.neighbours(2),
            Some(Neighbours {
                origin: Some(id(1, 1)),
                right_origin: Some(id(1, 2))
            })
        );
        assert_eq!(
            positions.neighbours(5).map(|n| n.origin),
            Some(Some(id(1, 4)))
        );
    }

    #[test]
    fn after_a_deletion_the_next_insertion_follows_the_deleted_character() {
        let mut positions = Positions::empty();
        positions.inserted(0, id(1, 0), 5, Left::Start);
        assert_eq!(positions.removed(1, 2), vec![(id(1, 1), 2)]);
        assert_eq!(positions.len(), 3);
        // yrs skips deleted blocks to the right: the origin is the last deleted character.
        assert_eq!(
            positions.neighbours(1),
            Some(Neighbours {
                origin: Some(id(1, 2)),
                right_origin: Some(id(1, 3))
            })
        );
    }

    #[test]
    fn a_rebuilt_index_knows_only_what_is_inside_blocks() {
        let mut positions = Positions::from_blocks([(id(1, 0), 3), (id(2, 0), 2)]);
        assert_eq!(positions.neighbours(0), None);
        assert_eq!(positions.neighbours(3), None);
        assert_eq!(positions.neighbours(5), None);
        assert!(positions.neighbours(4).is_some());
        // An insertion made by yrs' walk at a boundary makes that boundary known.
        positions.inserted(3, id(3, 0), 1, Left::Unknown);
        assert_eq!(
            positions.neighbours(4).map(|n| n.origin),
            Some(Some(id(3, 0)))
        );
    }

    #[test]
    fn removal_across_chunks_returns_every_range() {
        let mut positions = Positions::empty();
        for i in 0..300u32 {
            // Each character from another writer: one run each, several chunks.
            let left = match i {
                0 => Left::Start,
                _ => Left::After(id(u64::from(i), 0)),
            };
            positions.inserted(i as usize, id(u64::from(i) + 1, 0), 1, left);
        }
        assert!(positions.chunks.len() > 1);
        let ranges = positions.removed(10, 200);
        assert_eq!(ranges.len(), 200);
        assert_eq!(ranges[0].0, id(11, 0));
        assert_eq!(positions.len(), 100);
        // Right after the last character removed, before the first one kept.
        assert_eq!(
            positions.neighbours(10),
            Some(Neighbours {
                origin: Some(id(210, 0)),
                right_origin: Some(id(211, 0))
            })
        );
    }
}
