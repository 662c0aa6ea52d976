//! Prints every terminal input event as you type: keys, mouse clicks and scrolls, pastes and
//! window resizes. Press `q` to quit.
//!
//! Run it in a terminal: `cargo run -p rrt-reactor --example terminal_events`

use std::io::{self, Write};

use rrt_reactor::{
    ReactorEvent,
    terminal::{
        RawMode, TerminalInput,
        terminput::{Event, KeyCode},
    },
};

/// Mouse reporting (SGR encoding) and bracketed paste, on and off.
const ENABLE: &str = "\x1b[?1000h\x1b[?1002h\x1b[?1006h\x1b[?2004h";
const DISABLE: &str = "\x1b[?2004l\x1b[?1006l\x1b[?1002l\x1b[?1000l";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let raw = RawMode::enable(io::stdin())?;
    let mut out = io::stdout();
    write!(out, "{ENABLE}type, click, paste or resize; q quits\r\n")?;
    out.flush()?;

    let input = TerminalInput::reactor();
    let mut events = input.subscribe();
    while let Ok(event) = events.blocking_recv() {
        match event {
            ReactorEvent::Worker(Event::Key(key)) if key.code == KeyCode::Char('q') => break,
            ReactorEvent::Worker(event) => write!(out, "{event:?}\r\n")?,
            ReactorEvent::Shutdown(reason) => {
                write!(out, "input ended: {reason:?}\r\n")?;
                break;
            }
            lifecycle => write!(out, "reactor: {lifecycle:?}\r\n")?,
        }
        out.flush()?;
    }
    write!(out, "{DISABLE}")?;
    out.flush()?;
    drop(raw);
    Ok(())
}
