//! The scratch pane: one shared document, edited in place. Its [`Editor`] holds the replica;
//! this is what keys do to it and how it is drawn — scrolled so the cursor is always in view,
//! both ways, and the selection shown reversed.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Paragraph},
};
use rrt_reactor::terminal::terminput::{KeyCode, KeyEvent, KeyModifiers};

use rrt_sync::Cursor;
use unicode_width::UnicodeWidthChar;

use super::editor::{Editor, Movement};

/// What a key in the scratch pane asks of the app.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ScratchAction {
    /// Send these updates of the replica to the daemon, in order.
    Send(Vec<Vec<u8>>),
    /// Put this text on the shared clipboard.
    Copy(String),
    /// Give the focus back to the history pane.
    Leave,
}

/// The scratch pane's state.
#[derive(Debug)]
pub(crate) struct Scratch {
    /// The document's name.
    name: String,
    editor: Editor,
    /// The document's other editors.
    others: Vec<rrt_control::Editor>,
    /// Where the other editors were last told the cursor is (`None`: not yet told).
    told: Option<Option<Cursor>>,
}

impl Scratch {
    /// The pane for document `name`, empty until the daemon's first update.
    pub(crate) fn new(name: String) -> Self {
        Self {
            name,
            editor: Editor::default(),
            others: Vec::new(),
            told: None,
        }
    }

    /// Where the document's other editors are.
    pub(crate) fn set_editors(&mut self, editors: Vec<rrt_control::Editor>) {
        self.others = editors;
    }

    /// The replica's whole state, for a daemon reached again (which may have missed any of
    /// it); the other editors are told where the cursor is again too.
    pub(crate) fn reconnected(&mut self) -> Vec<u8> {
        self.told = None;
        self.editor.whole()
    }

    /// The cursor, when it stands before another character than the other editors were last
    /// told.
    pub(crate) fn moved_cursor(&mut self) -> Option<Option<Cursor>> {
        let now = self.editor.cursor_id();
        (self.told != Some(now)).then(|| {
            self.told = Some(now);
            now
        })
    }

    /// The document's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The replica, for the app's tests and the runner.
    pub(crate) fn editor_mut(&mut self) -> &mut Editor {
        &mut self.editor
    }

    /// A key, when the pane has the focus. Ctrl-C with a selection copies it (the app quits on
    /// Ctrl-C otherwise).
    pub(crate) fn key(&mut self, key: KeyEvent) -> Option<ScratchAction> {
        let editor = &mut self.editor;
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        if key.modifiers.contains(KeyModifiers::CTRL) {
            return match key.code {
                KeyCode::Char('z') => Some(editor.undo()),
                KeyCode::Char('y') => Some(editor.redo()),
                KeyCode::Char('c') => {
                    let text = editor.selected_text()?;
                    editor.deselect();
                    return Some(ScratchAction::Copy(text));
                }
                // Other chords are commands, never text.
                _ => None,
            }
            .filter(|updates| !updates.is_empty())
            .map(ScratchAction::Send);
        }
        if key.modifiers.contains(KeyModifiers::ALT) {
            return None;
        }
        let movement = match key.code {
            KeyCode::Left => Movement::Left,
            KeyCode::Right => Movement::Right,
            KeyCode::Up => Movement::Up,
            KeyCode::Down => Movement::Down,
            KeyCode::Home => Movement::Home,
            KeyCode::End => Movement::End,
            KeyCode::Char(c) => {
                return Some(ScratchAction::Send(
                    editor.type_text(c.encode_utf8(&mut [0; 4])),
                ));
            }
            KeyCode::Enter => return Some(ScratchAction::Send(editor.type_text("\n"))),
            KeyCode::Backspace => return editor.backspace().map(|u| ScratchAction::Send(vec![u])),
            KeyCode::Delete => return editor.delete().map(|u| ScratchAction::Send(vec![u])),
            KeyCode::Esc if editor.selection().is_some() => {
                editor.deselect();
                return None;
            }
            KeyCode::Esc => return Some(ScratchAction::Leave),
            _ => return None,
        };
        editor.go(movement, shift);
        None
    }

    /// Pasted text, typed at the cursor.
    pub(crate) fn paste(&mut self, text: &str) -> ScratchAction {
        ScratchAction::Send(self.editor.type_text(text))
    }

    /// Draws the pane into `area`; `focused` shows the cursor and a bold border.
    pub(crate) fn render(&self, frame: &mut Frame<'_>, area: Rect, focused: bool) {
        let also = if self.others.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = self.others.iter().map(|e| e.name.as_str()).collect();
            format!("· also here: {} ", names.join(", "))
        };
        let mut block = Block::bordered().title(format!(" Scratch: {} {also}", self.name));
        if focused {
            block = block.border_style(Style::new().add_modifier(Modifier::BOLD));
        }
        let inner = block.inner(area);
        let text = self.editor.text();
        let (line, column) = self.editor.cursor_line_column();
        // Where the cursor is on the screen: the width of what precedes it (a wide character
        // takes two cells).
        let cell = text
            .split('\n')
            .nth(line)
            .map_or(0, |shown| width(shown.chars().take(column)));
        let view = View::around(
            (line, cell),
            usize::from(inner.width.max(1)),
            usize::from(inner.height.max(1)),
        );
        let marks = Marks {
            selection: self.editor.selection(),
            others: self
                .others
                .iter()
                .filter_map(|other| self.editor.position_of(other.cursor))
                .collect(),
        };
        let mut offset = 0;
        let mut lines = Vec::new();
        for (number, line) in text.split('\n').enumerate() {
            let length = line.chars().count();
            if number >= view.top && lines.len() < view.height {
                lines.push(visible(line, offset, view.left, &marks));
            }
            offset += length + 1;
        }
        frame.render_widget(Paragraph::new(lines).block(block), area);
        if focused {
            let x = u16::try_from(cell - view.left).unwrap_or(u16::MAX);
            let y = u16::try_from(line - view.top).unwrap_or(u16::MAX);
            frame.set_cursor_position((inner.x + x, inner.y + y));
        }
    }
}

/// The part of the text shown: lines from `top`, screen cells from `left`, both chosen so the
/// cursor is inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct View {
    top: usize,
    left: usize,
    height: usize,
}

impl View {
    fn around((line, column): (usize, usize), width: usize, height: usize) -> Self {
        Self {
            top: line.saturating_sub(height - 1),
            left: column.saturating_sub(width - 1),
            height,
        }
    }
}

/// What is drawn over the text: the selection, and where the other editors' cursors are (as
/// character indices).
#[derive(Debug, Default)]
struct Marks {
    selection: Option<(usize, usize)>,
    others: Vec<usize>,
}

impl Marks {
    fn style(&self, index: usize) -> Style {
        let mut style = Style::new();
        if self
            .selection
            .is_some_and(|(start, end)| (start..end).contains(&index))
        {
            style = style.add_modifier(Modifier::REVERSED);
        }
        if self.others.contains(&index) {
            style = style.add_modifier(Modifier::UNDERLINED | Modifier::REVERSED);
        }
        style
    }
}

/// `line` (starting at character `offset` of the text) from column `left`, with `marks`. The
/// line break (or the end of the text) is drawn as a blank when a mark is on it.
fn visible(line: &str, offset: usize, left: usize, marks: &Marks) -> Line<'static> {
    let length = line.chars().count();
    let end = (marks.style(offset + length) != Style::new()).then_some(' ');
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    let mut run_style = Style::new();
    let mut cells = 0;
    for (index, c) in line.chars().chain(end).enumerate() {
        let starts_at = cells;
        cells += width([c]);
        if cells <= left {
            continue;
        }
        // A wide character cut by the left edge shows as blanks for its visible half.
        let c = if starts_at < left { ' ' } else { c };
        let style = marks.style(offset + index);
        if style != run_style && !run.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut run), run_style));
        }
        run_style = style;
        run.push(c);
    }
    if !run.is_empty() {
        spans.push(Span::styled(run, run_style));
    }
    Line::from(spans)
}

/// How many screen cells `chars` take (a control character none).
fn width(chars: impl IntoIterator<Item = char>) -> usize {
    chars
        .into_iter()
        .map(|c| UnicodeWidthChar::width(c).unwrap_or(0))
        .sum()
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};
    use rrt_reactor::terminal::terminput::{KeyEventKind, KeyEventState};

    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: KeyEventState::empty(),
        }
    }

    fn typed(scratch: &mut Scratch, text: &str) {
        for c in text.chars() {
            let code = if c == '\n' {
                KeyCode::Enter
            } else {
                KeyCode::Char(c)
            };
            scratch.key(key(code, KeyModifiers::empty()));
        }
    }

    /// The pane drawn `width` × `height`: its rows, and where the cursor is.
    fn drawn(scratch: &Scratch, width: u16, height: u16) -> (Vec<String>, (u16, u16)) {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        terminal
            .draw(|frame| scratch.render(frame, frame.area(), true))
            .expect("draw");
        let buffer = terminal.backend().buffer().clone();
        let rows = (0..height)
            .map(|y| (0..width).map(|x| buffer[(x, y)].symbol()).collect())
            .collect();
        let cursor = terminal.get_cursor_position().expect("cursor");
        (rows, (cursor.x, cursor.y))
    }

    #[test]
    fn a_long_line_scrolls_sideways_to_keep_the_cursor_in_view() {
        let mut scratch = Scratch::new("notes".into());
        typed(&mut scratch, "0123456789abcdefghij\nshort");
        // 12 columns: 10 inside the border.
        let (rows, cursor) = drawn(&scratch, 12, 5);
        assert_eq!(rows[1], "│0123456789│");
        assert_eq!(cursor, (6, 2), "after 'short'");
        scratch.key(key(KeyCode::Up, KeyModifiers::empty()));
        scratch.key(key(KeyCode::End, KeyModifiers::empty()));
        let (rows, cursor) = drawn(&scratch, 12, 5);
        assert_eq!(
            rows[1], "│bcdefghij │",
            "the line's end, and room for the cursor"
        );
        assert_eq!(cursor, (10, 1));
    }

    #[test]
    fn shift_and_a_movement_select_ctrl_c_copies_and_typing_replaces() {
        let mut scratch = Scratch::new("notes".into());
        typed(&mut scratch, "hello world");
        for _ in 0..5 {
            scratch.key(key(KeyCode::Left, KeyModifiers::SHIFT));
        }
        let (rows, _) = drawn(&scratch, 20, 3);
        assert_eq!(rows[1], "│hello world       │");
        assert_eq!(
            scratch.key(key(KeyCode::Char('c'), KeyModifiers::CTRL)),
            Some(ScratchAction::Copy("world".into()))
        );
        assert_eq!(
            scratch.key(key(KeyCode::Char('c'), KeyModifiers::CTRL)),
            None,
            "copying ends the selection"
        );
        scratch.key(key(KeyCode::Home, KeyModifiers::SHIFT));
        typed(&mut scratch, "bye");
        assert_eq!(scratch.editor.text(), "byeworld", "the selection replaced");
        scratch.key(key(KeyCode::Char('z'), KeyModifiers::CTRL));
        scratch.key(key(KeyCode::Char('z'), KeyModifiers::CTRL));
        assert_eq!(scratch.editor.text(), "hello world", "two steps undone");
        scratch.key(key(KeyCode::End, KeyModifiers::SHIFT));
        scratch.key(key(KeyCode::Right, KeyModifiers::empty()));
        assert_eq!(scratch.editor.selection(), None, "a plain movement ends it");
    }

    #[test]
    fn the_selection_is_drawn_reversed() {
        let marks = Marks {
            selection: Some((12, 14)),
            others: Vec::new(),
        };
        let line = visible("abcdef", 10, 1, &marks);
        let reversed: Vec<(String, bool)> = line
            .spans
            .iter()
            .map(|span| {
                (
                    span.content.to_string(),
                    span.style.add_modifier.contains(Modifier::REVERSED),
                )
            })
            .collect();
        assert_eq!(
            reversed,
            [
                ("b".to_owned(), false),
                ("cd".to_owned(), true),
                ("ef".to_owned(), false)
            ]
        );
    }

    #[test]
    fn other_editors_are_named_and_their_cursors_marked_and_ours_told_once_it_moves() {
        let mut scratch = Scratch::new("notes".into());
        typed(&mut scratch, "hello");
        assert_eq!(scratch.moved_cursor(), Some(None), "at the end");
        assert_eq!(scratch.moved_cursor(), None, "told already");
        scratch.key(key(KeyCode::Left, KeyModifiers::empty()));
        let before_o = scratch.moved_cursor().expect("moved").expect("a character");
        // Another editor whose cursor stands before the 'o', and one at the end.
        scratch.set_editors(vec![
            rrt_control::Editor {
                name: "bob".into(),
                cursor: Some(before_o),
            },
            rrt_control::Editor {
                name: "carol".into(),
                cursor: None,
            },
        ]);
        let mut terminal = Terminal::new(TestBackend::new(50, 3)).expect("terminal");
        terminal
            .draw(|frame| scratch.render(frame, frame.area(), true))
            .expect("draw");
        let buffer = terminal.backend().buffer().clone();
        let top: String = (0..50).map(|x| buffer[(x, 0)].symbol()).collect();
        assert!(top.contains("also here: bob, carol"), "{top}");
        let marked = |x: u16| buffer[(x, 1)].modifier.contains(Modifier::UNDERLINED);
        // Inside the border: "hello" at columns 1..6; 'o' at 5, the end at 6.
        assert!(
            marked(5) && marked(6) && !marked(4),
            "bob on 'o', carol at the end"
        );
    }

    #[test]
    fn wide_characters_take_two_cells_for_the_cursor_and_the_scroll() {
        let mut scratch = Scratch::new("notes".into());
        typed(&mut scratch, "日本語x");
        let (rows, cursor) = drawn(&scratch, 12, 3);
        assert_eq!(
            cursor,
            (8, 1),
            "after three wide characters and an x: 7 cells"
        );
        // (The test buffer shows a wide character's second cell as a blank.)
        assert!(rows[1].starts_with("│日 本 語 x"), "{:?}", rows[1]);
        typed(&mut scratch, "yz");
        // 12 columns, 10 inside: 9 cells of text before the cursor fit.
        let (_, cursor) = drawn(&scratch, 12, 3);
        assert_eq!(cursor, (10, 1));
        typed(&mut scratch, "w");
        let (rows, cursor) = drawn(&scratch, 12, 3);
        assert_eq!(cursor, (10, 1), "scrolled by a cell");
        assert!(
            rows[1].starts_with("│ 本 語 xyzw"),
            "half a wide character is a blank: {:?}",
            rows[1]
        );
    }
}
