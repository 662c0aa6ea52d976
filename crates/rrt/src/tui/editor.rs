//! The scratch pane's editor, sans IO: a replica of the document (a CRDT copy of its own, kept
//! in step with the daemon's by updates both ways) and a cursor. A key becomes an edit of the
//! replica at once — typing never waits for the daemon — and the update it makes, a few bytes,
//! goes to the daemon; the daemon's updates merge in whenever they come, the cursor moved by what
//! changed before it.
//!
//! Undo and redo take back this editor's own edits only: each step remembers where its text is,
//! moved through every change since (its own and others'), so undoing after someone else typed
//! elsewhere — or inside the same line — removes what you typed and nothing of theirs.

use std::hash::{BuildHasher, RandomState};

use rrt_sync::{Bias, Cursor, DocError, Document, Generation, TextChange};

/// One of this editor's edits, as undo would take it back (positions in characters, moved
/// with every change since).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Text was typed; it is now these ranges, in order (split where others typed inside it,
    /// shorter where they deleted some).
    Inserted(Vec<(usize, usize)>),
    /// These texts were deleted at these positions, in order.
    Deleted(Vec<(usize, String)>),
}

/// Where the cursor goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Movement {
    Left,
    Right,
    Up,
    Down,
    /// The start of the line.
    Home,
    /// The end of the line.
    End,
}

/// The scratch pane's state.
#[derive(Debug)]
pub(crate) struct Editor {
    /// The replica's number: its edits are told apart from every daemon's and editor's.
    number: u64,
    replica: Document,
    /// The generation of the document the replica is of (a new one starts it over).
    generation: Generation,
    /// The replica's text as shown.
    text: Vec<char>,
    /// The cursor, in characters.
    cursor: usize,
    /// Where a selection started (Shift and a movement); it runs to the cursor.
    anchor: Option<usize>,
    undo: Vec<Step>,
    redo: Vec<Step>,
    /// Whether the next typed character may join the last undo step (a run of typing undoes
    /// as one, until a space, a newline or anything else).
    typing: bool,
    /// Whether the next deleted character may join the last undo step.
    deleting: bool,
}

impl Default for Editor {
    fn default() -> Self {
        // A replica number of its own for every editor: its edits are told apart from every
        // daemon's and every other editor's.
        Self::new(RandomState::new().hash_one(std::process::id()))
    }
}

impl Editor {
    /// An empty editor whose replica has the number `replica`.
    pub(crate) fn new(replica: u64) -> Self {
        Self {
            number: replica,
            replica: Document::new(replica),
            generation: Generation::default(),
            text: Vec::new(),
            cursor: 0,
            anchor: None,
            undo: Vec::new(),
            redo: Vec::new(),
            typing: false,
            deleting: false,
        }
    }

    /// The generation of the document the replica is of: its updates are sent with it.
    pub(crate) fn generation(&self) -> Generation {
        self.generation
    }

    /// The replica's whole state, as one update.
    pub(crate) fn whole(&self) -> Vec<u8> {
        self.replica.snapshot()
    }

    /// The text as shown.
    pub(crate) fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// The cursor's line and column (in characters).
    pub(crate) fn cursor_line_column(&self) -> (usize, usize) {
        self.line_column(self.cursor)
    }

    /// An update from the daemon: what the replica lacked — or, when it is of another
    /// generation, the document anew: the replica starts over from it (the daemon carries
    /// what this editor sent of the old one), the cursor moved by how the text changed, and
    /// undo starts afresh (its steps name the old generation's text).
    pub(crate) fn merge(&mut self, update: &[u8], generation: Generation) -> Result<(), DocError> {
        if generation != self.generation {
            self.replica = Document::from_snapshot(self.number, update)?;
            self.generation = generation;
            self.undo.clear();
            self.redo.clear();
            self.refresh(None);
            return Ok(());
        }
        let (_, deltas) = self.replica.apply_observed(update)?;
        // The delta fits the text shown unless something is badly wrong (an embed a foreign
        // client put in the text); then the texts compared are the best there is.
        let change = TextChange::from_delta(&self.text, &deltas);
        self.refresh(change);
        Ok(())
    }

    /// Types `text` at the cursor, in place of the selection if there is one; the updates for
    /// the daemon.
    pub(crate) fn type_text(&mut self, text: &str) -> Vec<Vec<u8>> {
        let replaced = self.delete_selection();
        replaced.into_iter().chain([self.insert(text)]).collect()
    }

    /// Inserts `text` at the cursor; the update for the daemon.
    fn insert(&mut self, text: &str) -> Vec<u8> {
        let start = self.cursor;
        let update = self.replica.insert(self.units_before(start), text);
        self.refresh(Some(TextChange::inserted(start, text.chars().count())));
        let end = self.cursor;
        // A run of typing is one undo step, even where others' text came in at the cursor
        // meanwhile and split it.
        match self.undo.last_mut() {
            Some(Step::Inserted(ranges)) if self.typing => match ranges.last_mut() {
                Some((_, last)) if *last == start => *last = end,
                _ => ranges.push((start, end)),
            },
            _ => self.undo.push(Step::Inserted(vec![(start, end)])),
        }
        self.typing = !text.ends_with(char::is_whitespace);
        self.deleting = false;
        self.redo.clear();
        update
    }

    /// Deletes the selection, or else the character before the cursor.
    pub(crate) fn backspace(&mut self) -> Option<Vec<u8>> {
        if self.selection().is_some() {
            return self.delete_selection();
        }
        let index = self.cursor.checked_sub(1)?;
        Some(self.remove(index))
    }

    /// Deletes the selection, or else the character at the cursor.
    pub(crate) fn delete(&mut self) -> Option<Vec<u8>> {
        if self.selection().is_some() {
            return self.delete_selection();
        }
        (self.cursor < self.text.len()).then(|| self.remove(self.cursor))
    }

    fn remove(&mut self, index: usize) -> Vec<u8> {
        let removed = self.text[index];
        // Backspacing (or deleting forward) through a word undoes as one. Decided before the
        // deletion, which moves the last step's position.
        let (backspacing, forward) = match self.undo.last().map(|step| match step {
            Step::Deleted(pieces) if pieces.len() == 1 => Some(pieces[0].0),
            _ => None,
        }) {
            Some(Some(at)) if self.deleting => (at == index + 1, at == index),
            _ => (false, false),
        };
        let update = self.delete_range(index, index + 1);
        match self.undo.last_mut() {
            Some(Step::Deleted(pieces)) if backspacing => {
                pieces[0].0 = index;
                pieces[0].1.insert(0, removed);
            }
            Some(Step::Deleted(pieces)) if forward => pieces[0].1.push(removed),
            _ => self
                .undo
                .push(Step::Deleted(vec![(index, removed.to_string())])),
        }
        self.typing = false;
        self.deleting = true;
        self.redo.clear();
        update
    }

    /// Takes back this editor's last edit still in the text; the updates for the daemon
    /// (none when nothing is left to undo).
    pub(crate) fn undo(&mut self) -> Vec<Vec<u8>> {
        self.interrupt();
        while let Some(step) = self.undo.pop() {
            if let Some((updates, inverse)) = self.apply(step) {
                self.redo.push(inverse);
                return updates;
            }
        }
        Vec::new()
    }

    /// Makes again the edit undo took back last.
    pub(crate) fn redo(&mut self) -> Vec<Vec<u8>> {
        self.interrupt();
        while let Some(step) = self.redo.pop() {
            if let Some((updates, inverse)) = self.apply(step) {
                self.undo.push(inverse);
                return updates;
            }
        }
        Vec::new()
    }

    /// Undoes `step`: its updates and the step that undoes it in turn. `None` when nothing of
    /// it is left (others deleted what it typed).
    fn apply(&mut self, step: Step) -> Option<(Vec<Vec<u8>>, Step)> {
        match step {
            Step::Inserted(ranges) => {
                let ranges: Vec<_> = ranges.into_iter().filter(|(s, e)| s < e).collect();
                let first = ranges.first()?.0;
                let texts: Vec<String> = ranges
                    .iter()
                    .map(|&(start, end)| self.text[start..end].iter().collect())
                    .collect();
                // The last range first: the earlier ones stay where they are.
                let updates = ranges
                    .iter()
                    .rev()
                    .map(|&(start, end)| self.delete_range(start, end))
                    .collect();
                let mut removed_before = 0;
                let pieces = ranges
                    .iter()
                    .zip(texts)
                    .map(|(&(start, end), text)| {
                        let at = start - removed_before;
                        removed_before += end - start;
                        (at, text)
                    })
                    .collect();
                self.cursor = first;
                Some((updates, Step::Deleted(pieces)))
            }
            Step::Deleted(pieces) => {
                let updates = pieces
                    .iter()
                    .rev()
                    .map(|(at, text)| {
                        let update = self.replica.insert(self.units_before(*at), text);
                        self.refresh(Some(TextChange::inserted(*at, text.chars().count())));
                        update
                    })
                    .collect();
                let mut added_before = 0;
                let ranges: Vec<_> = pieces
                    .iter()
                    .map(|(at, text)| {
                        let start = at + added_before;
                        added_before += text.chars().count();
                        (start, start + text.chars().count())
                    })
                    .collect();
                self.cursor = ranges.last().map_or(self.cursor, |&(_, end)| end);
                Some((updates, Step::Inserted(ranges)))
            }
        }
    }

    fn delete_range(&mut self, start: usize, end: usize) -> Vec<u8> {
        let units = self.text[start..end].iter().map(|c| c.len_utf16()).sum();
        let update = self.replica.delete(self.units_before(start), units);
        self.refresh(Some(TextChange::deleted(start, end)));
        update
    }

    /// Moves the cursor; with `select`, the selection runs from where it started (or from here)
    /// to where the cursor lands, and without, there is none.
    pub(crate) fn go(&mut self, movement: Movement, select: bool) {
        self.interrupt();
        self.anchor = match self.anchor {
            anchor @ Some(_) if select => anchor,
            _ if select => Some(self.cursor),
            _ => None,
        };
        match movement {
            Movement::Left => self.cursor = self.cursor.saturating_sub(1),
            Movement::Right => self.cursor = (self.cursor + 1).min(self.text.len()),
            Movement::Home => {
                while self.cursor > 0 && self.text[self.cursor - 1] != '\n' {
                    self.cursor -= 1;
                }
            }
            Movement::End => {
                while self.cursor < self.text.len() && self.text[self.cursor] != '\n' {
                    self.cursor += 1;
                }
            }
            Movement::Up => self.vertical(-1),
            Movement::Down => self.vertical(1),
        }
    }

    /// The cursor as other editors are told of it: the character it stands before, by id.
    pub(crate) fn cursor_id(&self) -> Option<Cursor> {
        self.replica.cursor_at(self.units_before(self.cursor))
    }

    /// Where another editor's cursor is in the text shown, in characters; `None` when its
    /// character has not reached this replica yet.
    pub(crate) fn position_of(&self, cursor: Option<Cursor>) -> Option<usize> {
        let units = self.replica.position_of(cursor)?;
        let mut seen = 0;
        Some(
            self.text
                .iter()
                .take_while(|c| {
                    seen += c.len_utf16();
                    seen <= units
                })
                .count(),
        )
    }

    /// The line and column (in characters) of character `index`.
    pub(crate) fn line_column(&self, index: usize) -> (usize, usize) {
        let before = &self.text[..index.min(self.text.len())];
        let line = before.iter().filter(|&&c| c == '\n').count();
        let column = before.iter().rev().take_while(|&&c| c != '\n').count();
        (line, column)
    }

    /// The selected characters' range, if any are selected.
    pub(crate) fn selection(&self) -> Option<(usize, usize)> {
        let anchor = self.anchor?;
        let range = (anchor.min(self.cursor), anchor.max(self.cursor));
        (range.0 < range.1).then_some(range)
    }

    /// The selected text, if any.
    pub(crate) fn selected_text(&self) -> Option<String> {
        let (start, end) = self.selection()?;
        Some(self.text[start..end].iter().collect())
    }

    /// Ends the selection, leaving the text as it is.
    pub(crate) fn deselect(&mut self) {
        self.anchor = None;
    }

    /// Deletes the selected text (one undo step); the update for the daemon.
    fn delete_selection(&mut self) -> Option<Vec<u8>> {
        let (start, end) = self.selection()?;
        self.anchor = None;
        let removed: String = self.text[start..end].iter().collect();
        let update = self.delete_range(start, end);
        self.undo.push(Step::Deleted(vec![(start, removed)]));
        self.interrupt();
        self.redo.clear();
        Some(update)
    }

    /// Moves one line up (`-1`) or down (`1`), keeping the column where the line allows.
    fn vertical(&mut self, lines: isize) {
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

    /// Reads the replica's text after `change`, moving the cursor and the undo steps through it
    /// exactly (`None`: the change is not known, and comparing the texts must do). Text put
    /// right at the cursor goes before it, as in other collaborative editors.
    fn refresh(&mut self, change: Option<TextChange>) {
        let new: Vec<char> = self.replica.text().chars().collect();
        if new == self.text {
            return;
        }
        let change = change.unwrap_or_else(|| TextChange::between(&self.text, &new));
        self.cursor = change.moved(self.cursor, Bias::After);
        self.anchor = self.anchor.map(|anchor| change.moved(anchor, Bias::After));
        for step in self.undo.iter_mut().chain(self.redo.iter_mut()) {
            match step {
                Step::Inserted(ranges) => *ranges = change.moved_ranges(ranges),
                Step::Deleted(pieces) => {
                    for (at, _) in pieces {
                        *at = change.moved(*at, Bias::After);
                    }
                }
            }
        }
        self.text = new;
        self.cursor = self.cursor.min(self.text.len());
    }

    /// Ends the runs of typing and deleting: the next edit is an undo step of its own.
    fn interrupt(&mut self) {
        self.typing = false;
        self.deleting = false;
    }

    fn units_before(&self, index: usize) -> usize {
        self.text[..index].iter().map(|c| c.len_utf16()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An editor showing `text` (as a daemon sent it) with the cursor at `cursor`.
    fn editor(text: &str, cursor: usize) -> (Editor, Document) {
        let daemon = Document::new(1);
        let mut editor = Editor::new(2);
        let update = daemon.append(text);
        editor
            .merge(&update, Generation::default())
            .expect("merged");
        editor.cursor = cursor;
        (editor, daemon)
    }

    /// Applies `updates` to `daemon`.
    fn apply(daemon: &Document, updates: Vec<Vec<u8>>) {
        assert!(!updates.is_empty(), "something to apply");
        for update in updates {
            daemon.apply(&update).expect("applied");
        }
    }

    /// Brings `from`'s changes to `to`.
    fn sync(from: &Document, to: &Document) {
        let update = from.diff(&to.state_vector()).expect("diff");
        to.apply(&update).expect("applied");
    }

    #[test]
    fn typing_and_deleting_make_updates_the_daemon_applies() {
        let (mut editor, daemon) = editor("a😀b", 2);
        daemon.apply(&editor.insert("x")).expect("applied");
        assert_eq!(daemon.text(), "a😀xb");
        daemon
            .apply(&editor.backspace().expect("x"))
            .expect("applied");
        daemon
            .apply(&editor.backspace().expect("😀"))
            .expect("applied");
        assert_eq!(editor.text(), "ab");
        daemon.apply(&editor.delete().expect("b")).expect("applied");
        assert_eq!(editor.delete(), None);
        assert_eq!(daemon.text(), "a");
        assert!(
            editor.insert("y").len() < 64,
            "a keystroke costs a few bytes"
        );
    }

    #[test]
    fn a_remote_edit_before_the_cursor_moves_it_along() {
        let (mut editor, daemon) = editor("hello world", 6);
        editor
            .merge(&daemon.insert(0, "oh, "), Generation::default())
            .expect("merged");
        assert_eq!(editor.cursor, 10, "still before 'world'");
        editor
            .merge(&daemon.append("!"), Generation::default())
            .expect("merged");
        assert_eq!(editor.cursor, 10, "an edit after the cursor leaves it");
    }

    #[test]
    fn concurrent_typing_on_both_sides_converges() {
        let (mut editor, daemon) = editor("ab", 1);
        let mine = editor.insert("X");
        let theirs = daemon.insert(2, "Y");
        daemon.apply(&mine).expect("applied");
        editor
            .merge(&theirs, Generation::default())
            .expect("merged");
        assert_eq!(editor.text(), daemon.text());
        assert_eq!(editor.text(), "aXbY");
    }

    #[test]
    fn undo_after_a_remote_edit_undoes_only_ours() {
        let (mut editor, daemon) = editor("shared ", 7);
        for c in "mine".chars() {
            daemon
                .apply(&editor.insert(&c.to_string()))
                .expect("applied");
        }
        // Someone types at the start, and right after what we typed.
        editor
            .merge(&daemon.insert(0, ">> "), Generation::default())
            .expect("merged");
        editor
            .merge(&daemon.append(" theirs"), Generation::default())
            .expect("merged");
        assert_eq!(editor.text(), ">> shared mine theirs");
        apply(&daemon, editor.undo());
        assert_eq!(
            daemon.text(),
            ">> shared  theirs",
            "a run of typing undoes as one"
        );
        assert_eq!(editor.text(), daemon.text());
        apply(&daemon, editor.redo());
        assert_eq!(daemon.text(), ">> shared mine theirs");
        assert!(!editor.undo().is_empty());
        assert!(editor.undo().is_empty(), "their text is not ours to undo");
        assert_eq!(editor.text(), ">> shared  theirs");
    }

    #[test]
    fn undo_brings_back_what_we_deleted_where_it_now_belongs() {
        let (mut editor, daemon) = editor("keep this", 9);
        for _ in 0..5 {
            daemon
                .apply(&editor.backspace().expect("a char"))
                .expect("applied");
        }
        assert_eq!(editor.text(), "keep");
        editor
            .merge(&daemon.insert(0, "please "), Generation::default())
            .expect("merged");
        apply(&daemon, editor.undo());
        assert_eq!(daemon.text(), "please keep this");
        assert_eq!(editor.text(), daemon.text());
    }

    #[test]
    fn undo_takes_back_our_line_when_theirs_repeats_it_just_before() {
        // Text that repeats is where comparing texts goes wrong: their "[b 7]\n" put before our
        // "[b 6]\n" reads as "7]\n[b " put inside ours, and undo took "[b " of their line.
        let (mut editor, daemon) = editor("", 0);
        daemon.apply(&editor.insert("[b 6]\n")).expect("applied");
        editor
            .merge(&daemon.insert(0, "[b 7]\n"), Generation::default())
            .expect("merged");
        assert_eq!(editor.text(), "[b 7]\n[b 6]\n");
        apply(&daemon, editor.undo());
        assert_eq!(daemon.text(), "[b 7]\n", "their line is whole");
        assert_eq!(editor.text(), daemon.text());
    }

    #[test]
    fn text_put_right_at_the_cursor_goes_before_it_and_typing_stays_one_run() {
        let (mut editor, daemon) = editor("", 0);
        daemon.apply(&editor.insert("a")).expect("applied");
        editor
            .merge(&daemon.insert(1, "[b]"), Generation::default())
            .expect("merged");
        daemon.apply(&editor.insert("b")).expect("applied");
        assert_eq!(editor.text(), "a[b]b", "their text went before the cursor");
        apply(&daemon, editor.undo());
        assert_eq!(daemon.text(), "[b]", "both typed characters, one undo");
        apply(&daemon, editor.redo());
        assert_eq!(daemon.text(), "a[b]b");
    }

    #[test]
    fn a_step_others_deleted_entirely_is_skipped() {
        let (mut editor, daemon) = editor("", 0);
        let other = Document::new(3);
        daemon.apply(&editor.insert("gone")).expect("applied");
        sync(&daemon, &other);
        let deleted = other.delete(0, 4);
        editor
            .merge(&deleted, Generation::default())
            .expect("merged");
        assert_eq!(editor.text(), "");
        assert!(editor.undo().is_empty());
    }

    #[test]
    fn text_others_typed_inside_our_run_survives_its_undo_and_redo() {
        let (mut editor, daemon) = editor("", 0);
        for c in "mine".chars() {
            daemon
                .apply(&editor.insert(&c.to_string()))
                .expect("applied");
        }
        editor
            .merge(&daemon.insert(2, "THEIRS"), Generation::default())
            .expect("merged");
        assert_eq!(editor.text(), "miTHEIRSne");
        apply(&daemon, editor.undo());
        assert_eq!(daemon.text(), "THEIRS");
        assert_eq!(editor.text(), daemon.text());
        apply(&daemon, editor.redo());
        assert_eq!(daemon.text(), "miTHEIRSne");
        assert_eq!(editor.text(), daemon.text());
    }

    #[test]
    fn lines_and_columns() {
        let (mut editor, _daemon) = editor("one\ntwo three\nx", 6);
        assert_eq!(editor.cursor_line_column(), (1, 2));
        editor.go(Movement::Down, false);
        assert_eq!(
            editor.cursor_line_column(),
            (2, 1),
            "clamped to the short line"
        );
        editor.go(Movement::Up, false);
        editor.go(Movement::Up, false);
        assert_eq!(editor.cursor_line_column(), (0, 1));
        editor.go(Movement::End, false);
        assert_eq!(editor.cursor_line_column(), (0, 3));
        editor.go(Movement::Home, false);
        assert_eq!(editor.cursor, 0);
    }

    #[test]
    fn a_new_generation_starts_the_replica_over_with_the_cursor_kept_in_its_text() {
        let daemon = Document::new(1);
        let mut editor = Editor::new(7);
        editor
            .merge(&daemon.append("hello world"), Generation::default())
            .expect("merged");
        editor.go(Movement::End, false);
        editor.type_text("!");
        // The daemon moved to a new generation (a fresh document seeded with the text) before
        // it had the "!": the editor starts over from it, and the daemon carries the "!".
        let next = Generation {
            number: 1,
            starter: 1,
        };
        let seeded = Document::new(1);
        seeded.append("hello world");
        editor
            .merge(&seeded.snapshot(), next)
            .expect("started over");
        assert_eq!(editor.generation(), next);
        assert_eq!(editor.text(), "hello world");
        assert_eq!(editor.cursor_line_column(), (0, 11));
        assert!(editor.undo().is_empty(), "undo starts afresh");
        // What it types now is an update of the new generation, which the daemon's copy takes.
        let typed = editor.type_text("?");
        for update in typed {
            seeded.apply(&update).expect("applies");
        }
        assert_eq!(seeded.text(), "hello world?");
    }
}
