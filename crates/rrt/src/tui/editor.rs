//! The scratch pane's editor, sans IO: a local copy of the document and a cursor. A key becomes
//! an edit by position, applied here at once (typing never waits for the daemon) and sent with
//! the text it was made in, so the daemon moves it past remote changes this copy has not seen
//! yet. The document as the daemon has it comes back after each acknowledged edit and with every
//! remote change, and is adopted whenever no edit of ours is still in flight, the cursor moved by
//! what changed before it — so remote edits merge as you type instead of jumping the cursor.

use rrt_sync::Bias;

/// An edit for the daemon, positions in UTF-16 code units into `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Edit {
    /// Insert `text` at `at`.
    Insert {
        /// Where.
        at: usize,
        /// What.
        text: String,
        /// The text as shown when the edit was made.
        base: String,
    },
    /// Delete `len` units at `at`.
    Delete {
        /// Where.
        at: usize,
        /// How many.
        len: usize,
        /// The text as shown when the edit was made.
        base: String,
    },
}

/// The scratch pane's state.
#[derive(Debug, Default)]
pub(crate) struct Editor {
    /// The text as shown.
    text: Vec<char>,
    /// The cursor, in characters.
    cursor: usize,
    /// Edits sent and not yet acknowledged.
    in_flight: usize,
}

impl Editor {
    /// The text as shown.
    pub(crate) fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// The cursor's line and column (in characters).
    pub(crate) fn cursor_line_column(&self) -> (usize, usize) {
        let before = &self.text[..self.cursor];
        let line = before.iter().filter(|&&c| c == '\n').count();
        let column = before.iter().rev().take_while(|&&c| c != '\n').count();
        (line, column)
    }

    /// Types `text` at the cursor.
    pub(crate) fn insert(&mut self, text: &str) -> Edit {
        let base = self.text();
        let at = self.units_before(self.cursor);
        let chars: Vec<char> = text.chars().collect();
        let count = chars.len();
        self.text.splice(self.cursor..self.cursor, chars);
        self.cursor += count;
        self.in_flight += 1;
        Edit::Insert {
            at,
            text: text.to_owned(),
            base,
        }
    }

    /// Deletes the character before the cursor.
    pub(crate) fn backspace(&mut self) -> Option<Edit> {
        let index = self.cursor.checked_sub(1)?;
        self.cursor = index;
        Some(self.remove(index))
    }

    /// Deletes the character at the cursor.
    pub(crate) fn delete(&mut self) -> Option<Edit> {
        (self.cursor < self.text.len()).then(|| self.remove(self.cursor))
    }

    fn remove(&mut self, index: usize) -> Edit {
        let base = self.text();
        let at = self.units_before(index);
        let removed = self.text.remove(index);
        self.in_flight += 1;
        Edit::Delete {
            at,
            len: removed.len_utf16(),
            base,
        }
    }

    /// Moves the cursor one character left.
    pub(crate) fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Moves the cursor one character right.
    pub(crate) fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.text.len());
    }

    /// Moves to the start of the line.
    pub(crate) fn home(&mut self) {
        while self.cursor > 0 && self.text[self.cursor - 1] != '\n' {
            self.cursor -= 1;
        }
    }

    /// Moves to the end of the line.
    pub(crate) fn end(&mut self) {
        while self.cursor < self.text.len() && self.text[self.cursor] != '\n' {
            self.cursor += 1;
        }
    }

    /// Moves one line up (`-1`) or down (`1`), keeping the column where the line allows.
    pub(crate) fn vertical(&mut self, lines: isize) {
        let (line, column) = self.cursor_line_column();
        let Some(target) = line.checked_add_signed(lines) else {
            return;
        };
        let starts: Vec<usize> = std::iter::once(0)
            .chain(
                self.text
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        let Some(&start) = starts.get(target) else {
            return;
        };
        let end = starts
            .get(target + 1)
            .map_or(self.text.len(), |next| next - 1);
        self.cursor = (start + column).min(end);
    }

    /// The daemon acknowledged one of our edits; `text` is the document after it.
    pub(crate) fn acknowledged(&mut self, text: &str) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.adopt(text);
    }

    /// The daemon refused one of our edits: show its document as it is (when it could say),
    /// so the refused characters do not stay on screen.
    pub(crate) fn failed(&mut self, text: Option<&str>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(text) = text {
            self.adopt(text);
        }
    }

    /// The document changed (a remote edit, or ours arriving through the watch).
    pub(crate) fn changed(&mut self, text: &str) {
        self.adopt(text);
    }

    /// Takes the daemon's text unless our own edits are still on their way (then the next
    /// acknowledgement brings a text that includes them).
    fn adopt(&mut self, text: &str) {
        if self.in_flight > 0 {
            return;
        }
        let new: Vec<char> = text.chars().collect();
        if new == self.text {
            return;
        }
        self.cursor = rrt_sync::rebase_index(&self.text, &new, self.cursor, Bias::After);
        self.text = new;
        self.cursor = self.cursor.min(self.text.len());
    }

    fn units_before(&self, index: usize) -> usize {
        self.text[..index].iter().map(|c| c.len_utf16()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn editor(text: &str, cursor: usize) -> Editor {
        let mut editor = Editor::default();
        editor.changed(text);
        editor.cursor = cursor;
        editor
    }

    #[test]
    fn typing_and_deleting_make_edits_in_utf16_units() {
        let mut editor = editor("a😀b", 2);
        assert_eq!(
            editor.insert("x"),
            Edit::Insert {
                at: 3,
                text: "x".to_owned(),
                base: "a😀b".to_owned(),
            }
        );
        assert_eq!(editor.text(), "a😀xb");
        let delete = |at, len, base: &str| {
            Some(Edit::Delete {
                at,
                len,
                base: base.to_owned(),
            })
        };
        assert_eq!(editor.backspace(), delete(3, 1, "a😀xb"));
        assert_eq!(editor.backspace(), delete(1, 2, "a😀b"));
        assert_eq!(editor.text(), "ab");
        assert_eq!(editor.delete(), delete(1, 1, "ab"));
        assert_eq!(editor.delete(), None);
    }

    #[test]
    fn a_remote_edit_before_the_cursor_moves_it_along() {
        let mut editor = editor("hello world", 6);
        editor.changed("oh, hello world");
        assert_eq!(editor.cursor, 10, "still before 'world'");
        editor.changed("oh, hello world!");
        assert_eq!(editor.cursor, 10, "an edit after the cursor leaves it");
    }

    #[test]
    fn the_daemons_text_waits_while_our_edits_are_in_flight() {
        let mut editor = editor("ab", 2);
        editor.insert("c");
        editor.insert("d");
        editor.changed("ab");
        assert_eq!(editor.text(), "abcd", "a stale text does not undo typing");
        editor.acknowledged("abc");
        assert_eq!(editor.text(), "abcd");
        editor.acknowledged("Xabcd");
        assert_eq!(editor.text(), "Xabcd");
        assert_eq!(editor.cursor, 5);
    }

    #[test]
    fn lines_and_columns() {
        let mut editor = editor("one\ntwo three\nx", 6);
        assert_eq!(editor.cursor_line_column(), (1, 2));
        editor.vertical(1);
        assert_eq!(
            editor.cursor_line_column(),
            (2, 1),
            "clamped to the short line"
        );
        editor.vertical(-2);
        assert_eq!(editor.cursor_line_column(), (0, 1));
        editor.end();
        assert_eq!(editor.cursor_line_column(), (0, 3));
        editor.home();
        assert_eq!(editor.cursor, 0);
    }
}
