//! What `rrt tui` shows and how keys change it, with no I/O: the runner feeds it the daemon's
//! answers and the terminal's events, performs the [`Action`]s it returns, and draws it.

use std::collections::BTreeMap;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Modifier, Style},
    widgets::{Block, List, ListItem, ListState, Paragraph, Row, Table},
};
use rrt_control::HistoryEntry;
use rrt_mesh::{MeshView, network::Shape};
use rrt_reactor::terminal::terminput::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use rrt_sync::{ClipEntry, Representation, Stamp};

use super::{
    documents::{Picked, Picker},
    scratch::{Scratch, ScratchAction},
};

/// What the runner does for the app.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Leave.
    Quit,
    /// Copy the history entry with this stamp again: text and every other representation.
    CopyAgain(Stamp),
    /// Send these updates of the scratch document's replica to the daemon, in order.
    /// Updates the replica made, of this generation of its document.
    Send(rrt_sync::Generation, Vec<Vec<u8>>),
    /// Put this text on the shared clipboard.
    Copy(String),
    /// Ask the daemon for its documents (for the picker).
    ListDocuments,
    /// Show this document in the scratch pane instead (a replica of it, from the daemon).
    Open(String),
}

/// The pane that takes keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    History,
    Scratch,
    /// The documents picker, over the history pane.
    Documents,
}

/// A peer as the peers pane shows it.
#[derive(Debug, Clone, PartialEq)]
struct Peer {
    name: String,
    host: String,
    transport: String,
    /// local, lan, direct, relayed or hub.
    path: String,
    up: bool,
    rtt_us: Option<u64>,
    last_seen_ms: Option<u64>,
}

/// A history entry as the history pane shows it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// To ask for the entry again.
    stamp: Stamp,
    text: String,
    /// Its other representations: type, size and (images) dimensions.
    kinds: Vec<String>,
    pinned: bool,
}

impl Entry {
    fn new(entry: &ClipEntry, pinned: bool) -> Self {
        Self {
            stamp: entry.stamp,
            text: entry.text.to_string(),
            kinds: entry.content.iter().map(kind).collect(),
            pinned,
        }
    }

    /// What the pane shows: the text's first line, then the other types.
    fn line(&self, width: usize) -> String {
        let pin = if self.pinned { "📌 " } else { "" };
        let kinds = self
            .kinds
            .iter()
            .map(|kind| format!(" [{kind}]"))
            .collect::<String>();
        let room = width.saturating_sub(pin.chars().count() + kinds.chars().count());
        let text = if self.text.is_empty() {
            String::new()
        } else {
            preview(&self.text, room.max(8))
        };
        format!("{pin}{text}{kinds}")
    }

    /// Whether the filter's words are all in its text or types, ignoring case.
    fn matches(&self, filter: &str) -> bool {
        let haystack = format!("{} {}", self.text, self.kinds.join(" ")).to_lowercase();
        filter
            .to_lowercase()
            .split_whitespace()
            .all(|word| haystack.contains(word))
    }
}

/// A representation as the pane names it: `image/png 5.0 MiB 1920×1080`.
fn kind(representation: &Representation) -> String {
    let mime = &representation.mime;
    let size = crate::clip_client::human_size(representation.size);
    match (representation.width, representation.height) {
        (Some(width), Some(height)) => format!("{mime} {size} {width}×{height}"),
        _ => format!("{mime} {size}"),
    }
}

/// The whole screen's state.
#[derive(Debug)]
pub(crate) struct App {
    instance: String,
    scratch: Scratch,
    /// While the documents picker is open.
    picker: Option<Picker>,
    focus: Focus,
    /// By id; peers that left stay, marked down.
    peers: BTreeMap<String, Peer>,
    /// The mesh's members as the daemon counts them, and whether it is a swarm.
    members: Option<(usize, bool)>,
    /// Newest first.
    history: Vec<Entry>,
    /// What the history is filtered by, while `/` filtering is on.
    filter: Option<String>,
    /// Among the entries shown.
    selected: usize,
    status: String,
}

impl App {
    pub(crate) fn new(instance: String, scratch: String) -> Self {
        Self {
            instance,
            scratch: Scratch::new(scratch),
            picker: None,
            focus: Focus::History,
            peers: BTreeMap::new(),
            members: None,
            history: Vec::new(),
            filter: None,
            selected: 0,
            status: String::new(),
        }
    }

    /// The daemon's answer to `peers`.
    pub(crate) fn peers(&mut self, view: &MeshView) {
        for peer in self.peers.values_mut() {
            peer.up = false;
        }
        self.members = Some((view.members, view.shape == Shape::Swarm));
        for status in &view.peers {
            let peer = Peer {
                name: status.peer.name.clone(),
                host: status.host.clone(),
                transport: status.transport.to_string(),
                path: status.path.to_string(),
                up: true,
                rtt_us: status.rtt_us,
                last_seen_ms: status.last_seen_ms,
            };
            self.peers.insert(status.peer.id.to_string(), peer);
        }
    }

    /// The daemon's clipboard history, newest first.
    pub(crate) fn history(&mut self, history: &[HistoryEntry]) {
        self.history = history
            .iter()
            .map(|entry| Entry::new(&entry.entry, entry.pinned))
            .collect();
        self.selected = self.selected.min(self.shown().len().saturating_sub(1));
    }

    /// A new clipboard value (from `watch`).
    pub(crate) fn copied(&mut self, entry: &ClipEntry) {
        let entry = Entry::new(entry, false);
        if self.history.iter().any(|old| old.stamp == entry.stamp) {
            return;
        }
        self.history.insert(0, entry);
        self.selected = 0;
    }

    /// The entries the filter lets through.
    fn shown(&self) -> Vec<&Entry> {
        self.history
            .iter()
            .filter(|entry| self.filter.as_deref().is_none_or(|f| entry.matches(f)))
            .collect()
    }

    /// What the replica of document `name` lacked, from the daemon (ignored when the pane has
    /// moved on to another document since).
    pub(crate) fn merge(&mut self, name: &str, update: &[u8], generation: rrt_sync::Generation) {
        if name != self.scratch.name() {
            return;
        }
        if let Err(error) = self.scratch.editor_mut().merge(update, generation) {
            self.status = format!("the daemon's update was refused: {error}");
        }
    }

    /// Starts the scratch pane over (a new replica, filled by the daemon's next update): after
    /// the daemon refused one of our edits, or after reconnecting.
    pub(crate) fn reset_scratch(&mut self, name: &str) {
        if name == self.scratch.name() {
            self.scratch = Scratch::new(name.to_owned());
        }
    }

    /// Where the other editors of document `name` are.
    pub(crate) fn editors(&mut self, name: &str, editors: Vec<rrt_control::Editor>) {
        if name == self.scratch.name() {
            self.scratch.set_editors(editors);
        }
    }

    /// The scratch pane's cursor, when it moved to another character since last asked (for
    /// the other editors).
    pub(crate) fn moved_cursor(&mut self) -> Option<Option<rrt_sync::Cursor>> {
        self.scratch.moved_cursor()
    }

    /// The replica of document `name` lost its daemon (why); typing goes on into it.
    pub(crate) fn offline(&mut self, name: &str, why: &str) {
        if name == self.scratch.name() {
            self.status = format!("{why}; reconnecting — what you type is kept");
        }
    }

    /// The replica of document `name` has its daemon again: its whole state, for the daemon
    /// to merge (what was typed while it was away included).
    pub(crate) fn online(&mut self, name: &str) -> Option<Action> {
        if name != self.scratch.name() {
            return None;
        }
        self.status = "reconnected".to_owned();
        let generation = self.scratch.editor_mut().generation();
        Some(Action::Send(generation, vec![self.scratch.reconnected()]))
    }

    /// The daemon's documents, for the picker.
    pub(crate) fn documents(&mut self, names: Vec<String>) {
        if let Some(picker) = &mut self.picker {
            picker.documents(names);
        }
    }

    /// Something to tell the user on the status line.
    pub(crate) fn say(&mut self, message: impl Into<String>) {
        self.status = message.into();
    }

    /// A key.
    pub(crate) fn key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CTRL);
        match (key.code, ctrl, self.focus) {
            // Ctrl-C copies a selection in the scratch pane; anywhere else it quits.
            (KeyCode::Char('c'), true, Focus::Scratch) => {
                return match self.scratch.key(key) {
                    Some(action) => self.scratch_action(action),
                    None => Some(Action::Quit),
                };
            }
            (KeyCode::Char('c' | 'q'), true, _) => return Some(Action::Quit),
            (KeyCode::Char('o'), true, _) => {
                self.picker = Some(Picker::default());
                self.focus = Focus::Documents;
                return Some(Action::ListDocuments);
            }
            (KeyCode::Tab, _, Focus::History | Focus::Documents) => {
                self.focus = Focus::Scratch;
                return None;
            }
            (KeyCode::Tab, _, Focus::Scratch) => {
                self.focus = self.left_pane();
                return None;
            }
            _ => {}
        }
        match self.focus {
            Focus::History => self.history_key(key.code),
            Focus::Documents => self.documents_key(key.code),
            Focus::Scratch => {
                let action = self.scratch.key(key)?;
                self.scratch_action(action)
            }
        }
    }

    /// Pasted text goes into the scratch document when it has the focus.
    pub(crate) fn paste(&mut self, text: &str) -> Option<Action> {
        if self.focus != Focus::Scratch {
            return None;
        }
        let action = self.scratch.paste(text);
        self.scratch_action(action)
    }

    /// The pane left of the scratch pane: the picker while it is open, else the history.
    fn left_pane(&self) -> Focus {
        if self.picker.is_some() {
            Focus::Documents
        } else {
            Focus::History
        }
    }

    fn scratch_action(&mut self, action: ScratchAction) -> Option<Action> {
        match action {
            ScratchAction::Send(updates) => Some(Action::Send(
                self.scratch.editor_mut().generation(),
                updates,
            )),
            ScratchAction::Copy(text) => {
                self.status = format!("copied {} characters", text.chars().count());
                Some(Action::Copy(text))
            }
            ScratchAction::Leave => {
                self.focus = self.left_pane();
                None
            }
        }
    }

    fn documents_key(&mut self, code: KeyCode) -> Option<Action> {
        let picked = self.picker.as_mut()?.key(code)?;
        self.picker = None;
        match picked {
            Picked::Close => {
                self.focus = Focus::History;
                None
            }
            Picked::Open(name) if !rrt_sync::valid_name(&name) => {
                self.focus = Focus::History;
                self.status = format!("{name:?} cannot name a document");
                None
            }
            Picked::Open(name) => {
                self.focus = Focus::Scratch;
                self.scratch = Scratch::new(name.clone());
                Some(Action::Open(name))
            }
        }
    }

    fn history_key(&mut self, code: KeyCode) -> Option<Action> {
        let filtering = self.filter.is_some();
        match code {
            KeyCode::Esc if filtering => self.filter = None,
            KeyCode::Char('q') | KeyCode::Esc if !filtering => return Some(Action::Quit),
            KeyCode::Char('/') if !filtering => self.filter = Some(String::new()),
            KeyCode::Char(c) if filtering => {
                if let Some(filter) = &mut self.filter {
                    filter.push(c);
                }
                self.selected = 0;
            }
            KeyCode::Backspace if filtering => {
                if let Some(filter) = &mut self.filter {
                    filter.pop();
                }
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(self.shown().len().saturating_sub(1));
            }
            KeyCode::Enter => {
                let entry = (*self.shown().get(self.selected)?).clone();
                self.status = format!("copied again: {}", entry.line(40));
                return Some(Action::CopyAgain(entry.stamp));
            }
            _ => {}
        }
        self.selected = self.selected.min(self.shown().len().saturating_sub(1));
        None
    }

    /// Draws the whole screen.
    pub(crate) fn render(&self, frame: &mut Frame<'_>) {
        let rows = self.peers.len().clamp(1, 8) as u16 + 3;
        let [peers, middle, status] = Layout::vertical([
            Constraint::Length(rows),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let [history, scratch] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(middle);
        self.render_peers(frame, peers);
        match &self.picker {
            Some(picker) => picker.render(frame, history),
            None => self.render_history(frame, history),
        }
        self.scratch
            .render(frame, scratch, self.focus == Focus::Scratch);
        let help = match self.focus {
            Focus::History if self.filter.is_some() => {
                "type to filter · ↑↓: select · Enter: copy again · Esc: stop filtering"
            }
            Focus::History => {
                "Tab: scratch · ↑↓: select · /: filter · Enter: copy again · Ctrl-O: documents · q: quit"
            }
            Focus::Documents => "type to filter or name a new one · ↑↓ · Enter: open · Esc: close",
            Focus::Scratch => {
                "Tab/Esc: history · Ctrl-Z/Y: undo/redo yours · Shift-arrows: select · Ctrl-C: copy selection / quit · Ctrl-O: documents"
            }
        };
        let line = if self.status.is_empty() {
            help.to_owned()
        } else {
            format!("{} — {help}", self.status)
        };
        frame.render_widget(Paragraph::new(line), status);
    }

    fn render_peers(&self, frame: &mut Frame<'_>, area: Rect) {
        let header = Row::new([
            "NAME",
            "HOST",
            "TRANSPORT",
            "PATH",
            "STATE",
            "RTT",
            "LAST SEEN",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD));
        let rows = self.peers.values().map(|peer| {
            Row::new([
                peer.name.clone(),
                peer.host.clone(),
                peer.transport.clone(),
                peer.path.clone(),
                if peer.up { "up" } else { "down" }.to_owned(),
                peer.rtt_us
                    .map_or("-".to_owned(), |us| format!("{:.2} ms", us as f64 / 1000.0)),
                peer.last_seen_ms
                    .map_or("-".to_owned(), |ms| format!("{ms} ms ago")),
            ])
        });
        let widths = [
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(9),
            Constraint::Length(11),
        ];
        let mesh = match self.members {
            Some((members, true)) => format!(", {members} members, a swarm"),
            Some((members, false)) => format!(", {members} members"),
            None => String::new(),
        };
        let title = format!(
            " Peers of {} ({} up{mesh}) ",
            self.instance,
            self.up_count()
        );
        let table = Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(title));
        frame.render_widget(table, area);
    }

    fn up_count(&self) -> usize {
        self.peers.values().filter(|peer| peer.up).count()
    }

    fn render_history(&self, frame: &mut Frame<'_>, area: Rect) {
        let width = usize::from(area.width.saturating_sub(4)).max(1);
        let items: Vec<ListItem<'_>> = self
            .shown()
            .into_iter()
            .map(|entry| ListItem::new(entry.line(width)))
            .collect();
        let title = match &self.filter {
            Some(filter) => format!(" Clipboard history /{filter} "),
            None => " Clipboard history ".to_owned(),
        };
        let mut block = Block::bordered().title(title);
        if self.focus == Focus::History {
            block = block.border_style(Style::new().add_modifier(Modifier::BOLD));
        }
        let list = List::new(items)
            .block(block)
            .highlight_symbol("> ")
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state = ListState::default().with_selected(Some(self.selected));
        frame.render_stateful_widget(list, area, &mut state);
    }
}

/// The first line of `text`, cut to `width` characters.
fn preview(text: &str, width: usize) -> String {
    let first = text.lines().next().unwrap_or_default();
    let mut shown: String = first.chars().take(width).collect();
    if shown.len() < text.len() {
        shown.pop();
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};
    use rrt_reactor::terminal::terminput::KeyEventState;
    use serde_json::json;

    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: KeyModifiers::empty(),
            kind: KeyEventKind::Press,
            state: KeyEventState::empty(),
        }
    }

    fn screen(app: &App) -> String {
        screen_of(app, 80)
    }

    fn screen_of(app: &App, width: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, 20)).expect("terminal");
        terminal.draw(|frame| app.render(frame)).expect("draw");
        let buffer = terminal.backend().buffer().clone();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A peers answer of these peers: (id digit, name, host, transport, path, rtt, last seen).
    fn mesh(members: usize, peers: &[(u8, &str, &str, &str, &str, u64, u64)]) -> MeshView {
        let peers: Vec<_> = peers
            .iter()
            .map(|(id, name, host, transport, path, rtt, seen)| {
                json!({
                    "peer": {"id": uuid::Uuid::from_u128(u128::from(*id)), "name": name,
                             "capabilities": []},
                    "host": host, "transport": transport, "path": path, "device": null,
                    "compression": null, "rtt_us": rtt, "last_seen_ms": seen, "up_ms": null,
                    "neighbour": false,
                })
            })
            .collect();
        serde_json::from_value(json!({"shape": "full_mesh", "members": members, "peers": peers}))
            .expect("a mesh view")
    }

    /// A stamp told apart by `n`.
    fn stamp(n: u64) -> Stamp {
        Stamp {
            time: rrt_sync::Timestamp {
                wall_ms: n,
                counter: 0,
            },
            origin: uuid::Uuid::nil(),
        }
    }

    /// History entries of (text, stamp, pinned, representations without hashes).
    fn history(entries: &[(&str, u64, bool, serde_json::Value)]) -> Vec<HistoryEntry> {
        entries
            .iter()
            .map(|(text, n, pinned, content)| {
                let mut content = content.clone();
                for representation in content.as_array_mut().into_iter().flatten() {
                    representation["hash"] = json!("00".repeat(32));
                }
                HistoryEntry {
                    entry: serde_json::from_value(
                        json!({"text": text, "content": content, "stamp": stamp(*n)}),
                    )
                    .expect("an entry"),
                    pinned: *pinned,
                }
            })
            .collect()
    }

    #[test]
    fn panes_show_peers_history_and_the_document() {
        let mut app = App::new("alice".into(), "notes".into());
        app.peers(&mesh(
            2,
            &[
                (1, "bob", "local", "unix", "local", 250, 12),
                (
                    2,
                    "carol",
                    "device 0a1b2c3d",
                    "iroh",
                    "relayed",
                    40_000,
                    300,
                ),
            ],
        ));
        app.history(&history(&[
            ("second", 2, false, json!([])),
            ("first", 1, false, json!([])),
        ]));
        app.merge(
            "notes",
            &rrt_sync::Document::new(1).append("hello\nworld"),
            rrt_sync::Generation::default(),
        );
        let shown = screen(&app);
        for expected in [
            "Peers of alice (2 up, 2 members)",
            "bob",
            "carol",
            "relayed",
            "0.25 ms",
            "> second",
            "first",
            "Scratch: notes",
            "world",
        ] {
            assert!(shown.contains(expected), "{expected:?} in\n{shown}");
        }
        app.peers(&mesh(1, &[]));
        assert!(
            screen(&app).contains("down"),
            "a peer that left stays, down"
        );
    }

    #[test]
    fn keys_select_copy_and_edit() {
        let mut app = App::new("alice".into(), "notes".into());
        app.history(&history(&[
            ("new", 2, false, json!([])),
            ("old", 1, false, json!([])),
        ]));
        assert_eq!(app.key(press(KeyCode::Down)), None);
        assert_eq!(
            app.key(press(KeyCode::Enter)),
            Some(Action::CopyAgain(stamp(1)))
        );
        app.key(press(KeyCode::Tab));
        let Some(Action::Send(_, typed)) = app.key(press(KeyCode::Char('x'))) else {
            panic!("typing sends an update");
        };
        let daemon = rrt_sync::Document::new(1);
        for update in typed {
            daemon.apply(&update).expect("an update");
        }
        assert_eq!(daemon.text(), "x");
        let ctrl = |c| KeyEvent {
            modifiers: KeyModifiers::CTRL,
            ..press(KeyCode::Char(c))
        };
        let Some(Action::Send(_, undone)) = app.key(ctrl('z')) else {
            panic!("Ctrl-Z undoes");
        };
        for update in undone {
            daemon.apply(&update).expect("an update");
        }
        assert_eq!(daemon.text(), "");
        assert!(
            matches!(app.key(ctrl('y')), Some(Action::Send(..))),
            "Ctrl-Y redoes"
        );
        assert_eq!(
            app.key(press(KeyCode::Char('q'))).map(|_| ()),
            Some(()),
            "q types in scratch"
        );
        let ctrl_s = KeyEvent {
            modifiers: KeyModifiers::CTRL,
            ..press(KeyCode::Char('s'))
        };
        assert_eq!(app.key(ctrl_s), None, "a chord is not text");
        app.key(press(KeyCode::Esc));
        assert_eq!(app.key(press(KeyCode::Char('q'))), Some(Action::Quit));
    }

    #[test]
    fn ctrl_o_picks_another_document_and_the_old_one_s_updates_are_ignored() {
        let mut app = App::new("alice".into(), "notes".into());
        let ctrl = |c| KeyEvent {
            modifiers: KeyModifiers::CTRL,
            ..press(KeyCode::Char(c))
        };
        assert_eq!(app.key(ctrl('o')), Some(Action::ListDocuments));
        assert!(screen(&app).contains("asking the daemon"));
        app.documents(vec!["notes".into(), "todo".into()]);
        app.key(press(KeyCode::Char('t')));
        app.key(press(KeyCode::Char('o')));
        assert!(screen(&app).contains("> todo"), "{}", screen(&app));
        assert_eq!(
            app.key(press(KeyCode::Enter)),
            Some(Action::Open("todo".into()))
        );
        assert!(screen(&app).contains("Scratch: todo"));
        app.merge(
            "notes",
            &rrt_sync::Document::new(1).append("old one's"),
            rrt_sync::Generation::default(),
        );
        app.merge(
            "todo",
            &rrt_sync::Document::new(2).append("buy milk"),
            rrt_sync::Generation::default(),
        );
        let shown = screen(&app);
        assert!(
            shown.contains("buy milk") && !shown.contains("old one's"),
            "{shown}"
        );
        assert_eq!(
            app.key(ctrl('c')),
            Some(Action::Quit),
            "nothing selected: quit"
        );
        app.key(ctrl('o'));
        app.documents(vec![]);
        for c in "no/pe".chars() {
            app.key(press(KeyCode::Char(c)));
        }
        assert_eq!(app.key(press(KeyCode::Enter)), None, "not a document name");
        assert!(screen(&app).contains("cannot name a document"));
    }

    #[test]
    fn entries_show_their_types_and_typing_after_a_slash_filters_them() {
        let mut app = App::new("alice".into(), "notes".into());
        app.history(&history(&[
            (
                "",
                3,
                true,
                json!([{"mime": "image/png", "size": 5_242_880, "width": 1920, "height": 1080}]),
            ),
            (
                "meeting notes",
                2,
                false,
                json!([{"mime": "text/html", "size": 40}]),
            ),
            ("shopping list", 1, false, json!([])),
        ]));
        let shown = screen_of(&app, 160);
        assert!(shown.contains("[image/png 5.0 MiB 1920×1080]"), "{shown}");
        assert!(shown.contains("meeting notes [text/html 40 B]"), "{shown}");
        assert!(shown.contains("📌"), "{shown}");
        for key in [KeyCode::Char('/'), KeyCode::Char('l'), KeyCode::Char('i')] {
            assert_eq!(app.key(press(key)), None);
        }
        let shown = screen_of(&app, 160);
        assert!(
            shown.contains("shopping list") && !shown.contains("meeting"),
            "{shown}"
        );
        assert!(shown.contains("/li"), "{shown}");
        assert_eq!(
            app.key(press(KeyCode::Enter)),
            Some(Action::CopyAgain(stamp(1)))
        );
        app.key(press(KeyCode::Backspace));
        app.key(press(KeyCode::Backspace));
        for key in "png".chars() {
            app.key(press(KeyCode::Char(key)));
        }
        assert_eq!(
            app.key(press(KeyCode::Enter)),
            Some(Action::CopyAgain(stamp(3)))
        );
        app.key(press(KeyCode::Esc));
        assert!(
            screen_of(&app, 160).contains("shopping list"),
            "Esc ends the filter"
        );
        assert_eq!(app.key(press(KeyCode::Esc)), Some(Action::Quit));
    }
}
