//! Moving a position from the text an editor saw to the text as it is now.
//!
//! An editor (the TUI, or any program holding a copy of a document) makes its edits by position
//! in the text it last saw; by the time an edit arrives, others may have changed the document.
//! The two texts differ in one region (found from their common start and end); a position before
//! it stays, one after it moves by the region's change in length, one inside it goes to the
//! region's new end. Where text was inserted exactly at the position, [`Bias`] says on which side
//! to land. Concurrent edits in distinct places — the common case — land exactly where the
//! editor meant them.

/// Which side of text inserted exactly at a position the position moves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bias {
    /// Stay before it (the end of a range, which must not take in the new text).
    Before,
    /// Move after it (a cursor, or the start of a range of characters that moved along).
    After,
}

/// Where two texts differ: the lengths (in characters) of their common start and of their
/// common end after it. `old[prefix..old.len() - suffix]` became `new[prefix..new.len() - suffix]`.
pub fn changed_region(old: &[char], new: &[char]) -> (usize, usize) {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    (prefix, suffix)
}

/// Character `index` into `base` as a character index into `current`.
pub fn rebase_index(base: &[char], current: &[char], index: usize, bias: Bias) -> usize {
    crate::TextChange::between(base, current).moved(index, bias)
}

/// `at` (UTF-16 code units into `base`) as a position in `current`.
pub fn rebase(base: &str, current: &str, at: usize, bias: Bias) -> usize {
    if base == current {
        return at;
    }
    let base: Vec<char> = base.chars().collect();
    let current: Vec<char> = current.chars().collect();
    let moved = rebase_index(&base, &current, char_index(&base, at), bias);
    current[..moved].iter().map(|c| c.len_utf16()).sum()
}

/// The character index at `units` UTF-16 code units (clamped; never inside a character).
pub(crate) fn char_index(text: &[char], units: usize) -> usize {
    let mut seen = 0;
    for (index, c) in text.iter().enumerate() {
        if seen >= units {
            return index;
        }
        seen += c.len_utf16();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn positions_move_with_edits_before_them_only() {
        use Bias::{After, Before};
        // Someone inserted at the start: a position after it moves along.
        assert_eq!(rebase("ab", "Xab", 2, After), 3);
        // Someone appended: a position before it stays.
        assert_eq!(rebase("ab", "ab!", 1, After), 1);
        // Emoji count two units.
        assert_eq!(rebase("a😀b", "😀a😀b", 3, After), 5);
        // Text inserted exactly there: the bias decides.
        assert_eq!(rebase("ab", "Xab", 0, After), 1);
        assert_eq!(rebase("ab", "Xab", 0, Before), 0);
        // Inside a replaced region: its new end; at its start: stays.
        assert_eq!(rebase("abcdef", "aXYf", 3, After), 3);
        assert_eq!(rebase("abcdef", "aXYf", 1, Before), 1);
    }

    proptest! {
        #[test]
        fn an_edit_elsewhere_is_kept_where_it_was_meant(
            text in "[a-z😀 ]{0,20}",
            at in 0usize..25,
            theirs in 0usize..25,
            inserted in "[A-Z]{1,4}",
        ) {
            // They insert at `theirs`; we meant a position that is not inside their insertion:
            // the character after our position is the same character after the move.
            let chars: Vec<char> = text.chars().collect();
            let ours = at.min(chars.len());
            let theirs = theirs.min(chars.len());
            let mut current = chars.clone();
            current.splice(theirs..theirs, inserted.chars());
            let current: String = current.iter().collect();
            let units = |chars: &[char]| chars.iter().map(|c| c.len_utf16()).sum::<usize>();
            let moved = rebase(&text, &current, units(&chars[..ours]), Bias::After);
            let expected = if ours < theirs { ours } else { ours + inserted.chars().count() };
            let current_chars: Vec<char> = current.chars().collect();
            // Where their insertion and our position meet, either side is right.
            if ours != theirs {
                prop_assert_eq!(moved, units(&current_chars[..expected]));
            }
            prop_assert!(moved <= units(&current_chars));
        }
    }
}
