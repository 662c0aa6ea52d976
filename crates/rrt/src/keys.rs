//! `rrt keys`: the terminal-input reactor, consumed from async code, describing each event in
//! words — a quick way to see what a terminal (or tmux, or ssh) really sends.

use std::io::{self, IsTerminal, Write};

use anyhow::{Context as _, bail};
use rrt_reactor::{
    ReactorEvent,
    terminal::{
        RawMode, TerminalInput,
        terminput::{Event, KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind},
    },
};

/// Mouse reporting (all motion, SGR encoding), bracketed paste and focus reports.
const ENABLE_REPORTS: &str = "\x1b[?1003h\x1b[?1006h\x1b[?2004h\x1b[?1004h";
const DISABLE_REPORTS: &str = "\x1b[?1004l\x1b[?2004l\x1b[?1006l\x1b[?1003l";

pub(crate) fn run() -> anyhow::Result<()> {
    if !io::stdin().is_terminal() {
        bail!("`rrt keys` reads a terminal; stdin is not one");
    }
    let raw = RawMode::enable(io::stdin()).context("switching the terminal to raw mode")?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut out = io::stdout().lock();
    write!(
        out,
        "{ENABLE_REPORTS}press keys, click, paste, resize; q quits\r\n"
    )?;
    out.flush()?;
    let result = runtime.block_on(print_events(&mut out));
    write!(out, "{DISABLE_REPORTS}")?;
    out.flush()?;
    drop(raw);
    result
}

async fn print_events(out: &mut impl Write) -> anyhow::Result<()> {
    let input = TerminalInput::reactor();
    let mut events = input.subscribe();
    loop {
        let line = match events.recv().await? {
            ReactorEvent::Worker(Event::Key(key)) if key.code == KeyCode::Char('q') => {
                return Ok(());
            }
            ReactorEvent::Worker(event) => describe(&event),
            ReactorEvent::Shutdown(reason) => bail!("terminal input ended: {reason:?}"),
            ReactorEvent::Started { .. } | ReactorEvent::Restarting { .. } => continue,
        };
        write!(out, "{line}\r\n")?;
        out.flush()?;
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::Key(key) => format!("key    {}", describe_key(key)),
        Event::Mouse(mouse) => format!("mouse  {}", describe_mouse(mouse)),
        Event::Paste(text) => format!("paste  {} bytes: {text:?}", text.len()),
        Event::Resize { rows, cols } => format!("resize {cols}×{rows}"),
        Event::FocusGained => "focus  gained".to_owned(),
        Event::FocusLost => "focus  lost".to_owned(),
    }
}

fn modifiers(modifiers: KeyModifiers) -> String {
    [
        (KeyModifiers::CTRL, "Ctrl+"),
        (KeyModifiers::ALT, "Alt+"),
        (KeyModifiers::SHIFT, "Shift+"),
        (KeyModifiers::SUPER, "Super+"),
        (KeyModifiers::HYPER, "Hyper+"),
        (KeyModifiers::META, "Meta+"),
    ]
    .into_iter()
    .filter(|(flag, _)| modifiers.contains(*flag))
    .map(|(_, name)| name)
    .collect()
}

fn describe_key(key: &KeyEvent) -> String {
    let code = match key.code {
        KeyCode::Char(' ') => "Space".to_owned(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    };
    format!("{}{code}", modifiers(key.modifiers))
}

fn describe_mouse(mouse: &MouseEvent) -> String {
    let action = match mouse.kind {
        MouseEventKind::Down(button) => format!("{button:?} down"),
        MouseEventKind::Up(button) => format!("{button:?} up"),
        MouseEventKind::Drag(button) => format!("{button:?} drag"),
        MouseEventKind::Moved => "move".to_owned(),
        MouseEventKind::Scroll(direction) => format!("scroll {direction:?}"),
    };
    format!(
        "{}{action} at column {}, row {}",
        modifiers(mouse.modifiers),
        mouse.column,
        mouse.row
    )
}

#[cfg(test)]
mod tests {
    use rrt_reactor::terminal::terminput::{MouseButton, ScrollDirection};

    use super::*;

    #[test]
    fn events_read_as_words() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c')).modifiers(KeyModifiers::CTRL);
        assert_eq!(describe(&Event::Key(ctrl_c)), "key    Ctrl+c");
        assert_eq!(describe(&Event::Key(KeyCode::Up.into())), "key    Up");
        let scroll = MouseEvent {
            kind: MouseEventKind::Scroll(ScrollDirection::Down),
            column: 3,
            row: 7,
            modifiers: KeyModifiers::SHIFT,
        };
        assert_eq!(
            describe(&Event::Mouse(scroll)),
            "mouse  Shift+scroll Down at column 3, row 7"
        );
        let click = MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 0,
            row: 0,
            modifiers: KeyModifiers::empty(),
        };
        assert_eq!(describe_mouse(&click), "Left down at column 0, row 0");
        assert_eq!(
            describe(&Event::Resize { rows: 24, cols: 80 }),
            "resize 80×24"
        );
    }
}
