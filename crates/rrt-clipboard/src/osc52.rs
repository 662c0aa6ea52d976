//! OSC 52: the escape sequence that asks a terminal to put text on the system clipboard of the
//! machine the terminal runs on — also through SSH, where no other clipboard is reachable.
//!
//! `ESC ] 52 ; c ; <base64> BEL`. tmux takes it when `set-clipboard` is `on` (it keeps the text
//! as a paste buffer and passes it on to the terminal outside), which is also what editors that
//! use OSC 52 ask of tmux users; a DCS passthrough wrapper would need `allow-passthrough`, off by
//! default, so the bare sequence is sent everywhere.

use base64::{Engine, engine::general_purpose::STANDARD};

/// The bytes that set the terminal's clipboard to `text`.
pub fn osc52(text: &str) -> String {
    format!("\x1b]52;c;{}\x07", STANDARD.encode(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_carries_base64_text() {
        assert_eq!(osc52("hi ✓"), "\x1b]52;c;aGkg4pyT\x07");
    }
}
