//! The terminal-input reactor: stdin and `SIGWINCH` owned by one thread, decoded into key, mouse,
//! paste, focus and resize events.
//!
//! ```text
//! stdin ─read until WouldBlock─▶ InputParser (sans-IO) ─┐
//! SIGWINCH ─signal-hook-mio─▶ TIOCGWINSZ ────────────────┴─▶ ReactorEvent::Worker(Event)
//! ```
//!
//! Bytes are decoded by [`terminput`] (crossterm's parser, maintained on its own; re-exported
//! here). A lone `ESC` at the end of a read could be the Esc key or the start of a sequence whose
//! rest is still in flight, so the parser holds it and the worker's deadline flushes it as Esc
//! after [`ESCAPE_TIMEOUT`] of silence — the same trade vim's `ttimeoutlen` makes.
//!
//! ```no_run
//! use rrt_reactor::{ReactorEvent, terminal::{RawMode, TerminalInput}};
//!
//! let _raw = RawMode::enable(std::io::stdin())?;
//! let input = TerminalInput::reactor();
//! let mut events = input.subscribe();
//! while let Ok(event) = events.blocking_recv() {
//!     match event {
//!         ReactorEvent::Worker(event) => print!("{event:?}\r\n"),
//!         ReactorEvent::Shutdown(_) => break,
//!         _ => {}
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

mod input;
mod parser;
mod raw_mode;

pub use input::TerminalInput;
pub use parser::{ESCAPE_TIMEOUT, InputParser};
pub use raw_mode::RawMode;
pub use terminput;
