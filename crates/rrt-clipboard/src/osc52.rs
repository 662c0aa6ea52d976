//! OSC 52: the escape sequence that asks a terminal to put text on the system clipboard of the
//! machine the terminal runs on — also through SSH, where no other clipboard is reachable.
//!
//! `ESC ] 52 ; c ; <base64> BEL`. Inside tmux the sequence is wrapped in tmux's passthrough
//! (`ESC P tmux; … ESC \`, inner escapes doubled), which tmux forwards to the outer terminal when
//! `allow-passthrough` is on (tmux's own `set-clipboard` also understands the bare sequence).

use base64::{Engine, engine::general_purpose::STANDARD};

/// Where the sequence will be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// A terminal read directly.
    Direct,
    /// A tmux pane (`$TMUX` is set).
    Tmux,
}

impl Terminal {
    /// Tmux when `$TMUX` is set, otherwise direct.
    pub fn detect() -> Self {
        if std::env::var_os("TMUX").is_some() {
            Self::Tmux
        } else {
            Self::Direct
        }
    }
}

/// The bytes that set the clipboard to `text`.
pub fn osc52(text: &str, terminal: Terminal) -> String {
    let sequence = format!("\x1b]52;c;{}\x07", STANDARD.encode(text));
    match terminal {
        Terminal::Direct => sequence,
        Terminal::Tmux => format!("\x1bPtmux;{}\x1b\\", sequence.replace('\x1b', "\x1b\x1b")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_carries_base64_text() {
        assert_eq!(osc52("hi ✓", Terminal::Direct), "\x1b]52;c;aGkg4pyT\x07");
    }

    #[test]
    fn tmux_gets_a_passthrough_with_escapes_doubled() {
        assert_eq!(
            osc52("hi", Terminal::Tmux),
            "\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\"
        );
    }
}
