//! How a text changed, to move many positions through it: an editor's cursor and the ranges
//! of its own typing that undo takes back.
//!
//! A change is a list of splices, each a region replaced by new text, in the order they were
//! made (each in the text the ones before it left). Made exactly from the edit itself — a local
//! insertion or deletion, or the delta yrs reports for a remote update
//! ([`TextChange::from_delta`]) — a position moves where its character went, however often the
//! text repeats. [`TextChange::between`] two texts is a guess (one region, from their common
//! start and end) for when nothing better is known: where text repeats it may put an insertion
//! on the wrong side of equal characters.

use crate::{Bias, TextDelta, changed_region};

/// A change of a text, in characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextChange {
    splices: Vec<Splice>,
}

/// Characters `at..old_end` became `at..new_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Splice {
    at: usize,
    old_end: usize,
    new_end: usize,
}

impl TextChange {
    /// `length` characters put at character `at`.
    pub fn inserted(at: usize, length: usize) -> Self {
        Self::splice(at, at, at + length)
    }

    /// Characters `start..end` deleted.
    pub fn deleted(start: usize, end: usize) -> Self {
        Self::splice(start, end.max(start), start)
    }

    /// The one region where `old` and `new` differ — a guess where text repeats (see the
    /// module docs).
    pub fn between(old: &[char], new: &[char]) -> Self {
        let (prefix, suffix) = changed_region(old, new);
        Self::splice(prefix, old.len() - suffix, new.len() - suffix)
    }

    /// What `deltas` (from [`Document::apply_observed`](crate::Document::apply_observed),
    /// in UTF-16 code units) did to `old`, in characters. `None` when they do not fit `old` (it
    /// is not the text they were made on).
    pub fn from_delta(old: &[char], deltas: &[TextDelta]) -> Option<Self> {
        let mut splices = Vec::new();
        // The next character of `old` not yet passed, and where it is now.
        let mut read = 0;
        let mut now = 0;
        let take = |units: usize, read: &mut usize| -> Option<usize> {
            let (mut taken, mut chars) = (0, 0);
            while taken < units {
                taken += old.get(*read + chars)?.len_utf16();
                chars += 1;
            }
            (taken == units).then(|| {
                *read += chars;
                chars
            })
        };
        for delta in deltas {
            match delta {
                TextDelta::Retain(units) => now += take(*units, &mut read)?,
                TextDelta::Insert(text) => {
                    let length = text.chars().count();
                    splices.push(Splice {
                        at: now,
                        old_end: now,
                        new_end: now + length,
                    });
                    now += length;
                }
                TextDelta::Delete(units) => {
                    let length = take(*units, &mut read)?;
                    splices.push(Splice {
                        at: now,
                        old_end: now + length,
                        new_end: now,
                    });
                }
            }
        }
        Some(Self { splices })
    }

    fn splice(at: usize, old_end: usize, new_end: usize) -> Self {
        Self {
            splices: vec![Splice {
                at,
                old_end,
                new_end,
            }],
        }
    }

    /// Character `index` into the old text as a character index into the new.
    pub fn moved(&self, index: usize, bias: Bias) -> usize {
        self.splices
            .iter()
            .fold(index, |index, splice| splice.moved(index, bias))
    }

    /// Ranges of characters (an editor's own typing) through the change: text put right at
    /// either edge of a range is not part of it, text put inside one splits it in two, and what
    /// was deleted of a range is gone from it.
    pub fn moved_ranges(&self, ranges: &[(usize, usize)]) -> Vec<(usize, usize)> {
        self.splices.iter().fold(ranges.to_vec(), |ranges, splice| {
            let mut moved = Vec::with_capacity(ranges.len() + 1);
            for (start, end) in ranges {
                if splice.at == splice.old_end && start < splice.at && splice.at < end {
                    moved.push((start, splice.at));
                    moved.push((splice.new_end, splice.moved(end, Bias::Before)));
                } else {
                    let start = splice.moved(start, Bias::After);
                    moved.push((start, splice.moved(end, Bias::Before).max(start)));
                }
            }
            moved
        })
    }
}

impl Splice {
    fn moved(self, index: usize, bias: Bias) -> usize {
        let inserted_here = self.at == self.old_end;
        if index < self.at || (index == self.at && !(inserted_here && bias == Bias::After)) {
            index
        } else if index >= self.old_end {
            index - self.old_end + self.new_end
        } else {
            self.new_end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Document;

    fn chars(text: &str) -> Vec<char> {
        text.chars().collect()
    }

    #[test]
    fn a_range_is_split_by_text_put_inside_it_and_not_widened_at_its_edges() {
        // "mine" is 2..6 of "--mine--".
        let change = TextChange::between(&chars("--mine--"), &chars("--miXXne--"));
        assert_eq!(change.moved_ranges(&[(2, 6)]), [(2, 4), (6, 8)]);
        let change = TextChange::between(&chars("--mine--"), &chars("--YYmine--"));
        assert_eq!(change.moved_ranges(&[(2, 6)]), [(4, 8)]);
        let change = TextChange::between(&chars("--mine--"), &chars("--mineZZ--"));
        assert_eq!(change.moved_ranges(&[(2, 6)]), [(2, 6)]);
        let change = TextChange::between(&chars("--mine--"), &chars("--me--"));
        assert_eq!(change.moved_ranges(&[(2, 6)]), [(2, 4)]);
    }

    #[test]
    fn a_remote_insertion_moves_positions_exactly_where_text_repeats() {
        // The case a comparison of texts gets wrong: "[b 7]\n" put before "[b 6]\n" reads as an
        // insertion after "[b " — inside the range of the line that was there.
        let theirs = Document::new(1);
        let mine = Document::new(2);
        mine.apply(&theirs.append("[b 6]\n")).expect("applied");
        let old = chars(&mine.text());
        let (_, deltas) = mine
            .apply_observed(&theirs.insert(0, "[b 7]\n"))
            .expect("applied");
        let change = TextChange::from_delta(&old, &deltas).expect("fits");
        assert_eq!(
            change.moved_ranges(&[(0, 6)]),
            [(6, 12)],
            "the old line moved whole"
        );
        assert_eq!(change.moved(0, Bias::After), 6);
        let guess = TextChange::between(&old, &chars(&mine.text()));
        assert_ne!(
            guess.moved_ranges(&[(0, 6)]),
            [(6, 12)],
            "the guess splits it"
        );
    }

    #[test]
    fn deltas_in_utf16_units_become_characters() {
        let theirs = Document::new(1);
        let mine = Document::new(2);
        mine.apply(&theirs.append("😀a😀b")).expect("applied");
        let old = chars(&mine.text());
        let update = theirs.delete(2, 1); // "a"
        let (_, deltas) = mine.apply_observed(&update).expect("applied");
        assert_eq!(deltas, [TextDelta::Retain(2), TextDelta::Delete(1)]);
        let change = TextChange::from_delta(&old, &deltas).expect("fits");
        assert_eq!(
            change.moved(3, Bias::After),
            2,
            "the 'b' after the second emoji"
        );
        assert_eq!(
            TextChange::from_delta(&chars("x"), &deltas),
            None,
            "not its text"
        );
    }

    #[test]
    fn several_splices_in_one_update_each_move_what_follows() {
        let theirs = Document::new(1);
        let mine = Document::new(2);
        mine.apply(&theirs.append("abcdef")).expect("applied");
        let before = theirs.state_vector();
        theirs.insert(1, "X");
        theirs.delete(3, 2); // "cd" of "aXbcdef"
        let update = theirs.diff(&before).expect("diff");
        let old = chars(&mine.text());
        let (_, deltas) = mine.apply_observed(&update).expect("applied");
        assert_eq!(mine.text(), "aXbef");
        let change = TextChange::from_delta(&old, &deltas).expect("fits");
        assert_eq!(change.moved(5, Bias::After), 4, "'f' moved one left");
        assert_eq!(change.moved_ranges(&[(2, 4)]), [(3, 3)], "'cd' is gone");
    }
}
