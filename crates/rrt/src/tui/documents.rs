//! The documents picker (Ctrl-O): the daemon's documents, filtered as you type; Enter opens the
//! one selected in the scratch pane, or a new one of the name typed when none matches.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Style},
    widgets::{Block, List, ListItem, ListState},
};
use rrt_reactor::terminal::terminput::KeyCode;

/// What a key in the picker asks of the app.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Picked {
    /// Open this document.
    Open(String),
    /// Close the picker.
    Close,
}

/// The picker's state.
#[derive(Debug, Default)]
pub(crate) struct Picker {
    /// The daemon's documents, once it answered.
    names: Option<Vec<String>>,
    typed: String,
    /// Among the names shown.
    selected: usize,
}

impl Picker {
    /// The daemon's documents.
    pub(crate) fn documents(&mut self, mut names: Vec<String>) {
        names.sort();
        self.names = Some(names);
        self.selected = 0;
    }

    /// The names the typed text lets through.
    fn shown(&self) -> Vec<&str> {
        let typed = self.typed.to_lowercase();
        self.names
            .iter()
            .flatten()
            .filter(|name| name.to_lowercase().contains(&typed))
            .map(String::as_str)
            .collect()
    }

    /// A key.
    pub(crate) fn key(&mut self, code: KeyCode) -> Option<Picked> {
        match code {
            KeyCode::Esc => return Some(Picked::Close),
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down => self.selected += 1,
            KeyCode::Char(c) => {
                self.typed.push(c);
                self.selected = 0;
            }
            KeyCode::Backspace => {
                self.typed.pop();
                self.selected = 0;
            }
            KeyCode::Enter => {
                let name = self
                    .shown()
                    .get(self.selected)
                    .map_or_else(|| self.typed.clone(), |name| (*name).to_owned());
                return (!name.is_empty()).then_some(Picked::Open(name));
            }
            _ => {}
        }
        self.selected = self.selected.min(self.shown().len().saturating_sub(1));
        None
    }

    /// Draws the picker into `area`.
    pub(crate) fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        let shown = self.shown();
        let mut items: Vec<ListItem<'_>> = shown.iter().map(|name| ListItem::new(*name)).collect();
        if self.names.is_none() {
            items.push(ListItem::new("(asking the daemon…)"));
        } else if shown.is_empty() && !self.typed.is_empty() {
            items.push(ListItem::new(format!(
                "Enter: a new document {:?}",
                self.typed
            )));
        }
        let title = format!(" Open a document: {}▏", self.typed);
        let list = List::new(items)
            .block(
                Block::bordered()
                    .title(title)
                    .border_style(Style::new().add_modifier(Modifier::BOLD)),
            )
            .highlight_symbol("> ")
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let selected = (!shown.is_empty()).then_some(self.selected);
        frame.render_stateful_widget(
            list,
            area,
            &mut ListState::default().with_selected(selected),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_filters_and_enter_opens_the_selected_or_a_new_name() {
        let mut picker = Picker::default();
        assert_eq!(picker.key(KeyCode::Enter), None, "nothing to open yet");
        picker.documents(vec!["todo".into(), "notes".into(), "meeting-notes".into()]);
        assert_eq!(picker.shown(), ["meeting-notes", "notes", "todo"]);
        for c in "not".chars() {
            picker.key(KeyCode::Char(c));
        }
        assert_eq!(picker.shown(), ["meeting-notes", "notes"]);
        picker.key(KeyCode::Down);
        picker.key(KeyCode::Down);
        assert_eq!(
            picker.key(KeyCode::Enter),
            Some(Picked::Open("notes".into()))
        );
        picker.key(KeyCode::Char('x'));
        assert_eq!(
            picker.key(KeyCode::Enter),
            Some(Picked::Open("notx".into())),
            "no match: a new document of that name"
        );
        assert_eq!(picker.key(KeyCode::Esc), Some(Picked::Close));
    }
}
