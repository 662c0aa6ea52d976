//! Decoding a terminal's byte stream into events, without I/O.

use std::{collections::VecDeque, time::Duration};

use terminput::{Event, KeyCode};

const ESC: u8 = 0x1b;
const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// How long a lone `ESC` waits for the rest of an escape sequence before it counts as the Esc
/// key.
pub const ESCAPE_TIMEOUT: Duration = Duration::from_millis(50);

/// The default cap on one undecoded sequence (a bracketed paste is one sequence).
const DEFAULT_MAX_PENDING: usize = 16 * 1024 * 1024;

/// Turns the bytes a terminal sends into [`Event`]s, whatever way `read` split them.
///
/// Feed it every chunk read; take decoded events with [`InputParser::next_event`]. Bytes that form
/// no known sequence are dropped (with a debug log) so one odd sequence never wedges the stream.
///
/// ```
/// use rrt_reactor::terminal::{InputParser, terminput::{Event, KeyCode}};
///
/// let mut parser = InputParser::default();
/// parser.feed(b"\x1b[");
/// assert_eq!(parser.next_event(), None);
/// parser.feed(b"Aq");
/// assert_eq!(parser.next_event(), Some(Event::Key(KeyCode::Up.into())));
/// assert_eq!(parser.next_event(), Some(Event::Key(KeyCode::Char('q').into())));
/// ```
#[derive(Debug)]
pub struct InputParser {
    pending: Vec<u8>,
    events: VecDeque<Event>,
    max_pending: usize,
    /// Inside a paste that outgrew the cap: skip to its closing marker rather than read the rest
    /// as typed keys.
    discarding_paste: bool,
}

impl Default for InputParser {
    fn default() -> Self {
        Self::with_max_pending(DEFAULT_MAX_PENDING)
    }
}

impl InputParser {
    /// A parser that drops an undecoded sequence (an unterminated paste) longer than
    /// `max_pending` bytes.
    pub fn with_max_pending(max_pending: usize) -> Self {
        Self {
            pending: Vec::new(),
            events: VecDeque::new(),
            max_pending,
            discarding_paste: false,
        }
    }

    /// Decodes `bytes`, continuing any sequence an earlier chunk began.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.pending.push(byte);
            if self.discarding_paste {
                self.skip_paste();
                continue;
            }
            if self.pending == [ESC] {
                // The Esc key, or the start of a sequence: the next byte or the timeout decides.
                continue;
            }
            match Event::parse_from(&self.pending) {
                Ok(Some(event)) => {
                    self.events.push_back(event);
                    self.pending.clear();
                }
                Ok(None) if self.pending.len() > self.max_pending => {
                    tracing::warn!(
                        cap = self.max_pending,
                        "dropping an input sequence (a paste) larger than the cap"
                    );
                    self.discarding_paste = self.pending.starts_with(PASTE_START);
                    self.pending.clear();
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(sequence = ?self.pending, %error, "dropping unknown input");
                    self.pending.clear();
                }
            }
        }
    }

    /// Keeps only what could be the start of the closing marker, until it is complete.
    fn skip_paste(&mut self) {
        if self.pending.ends_with(PASTE_END) {
            self.discarding_paste = false;
            self.pending.clear();
        } else if self.pending.len() >= PASTE_END.len() {
            self.pending
                .drain(..self.pending.len() + 1 - PASTE_END.len());
        }
    }

    /// The next decoded event, oldest first.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether an incomplete sequence is held that [`InputParser::flush`] would resolve; a paste
    /// in progress is not (it ends only with its closing marker).
    pub fn is_awaiting_timeout(&self) -> bool {
        !self.discarding_paste && !self.pending.is_empty() && !self.pending.starts_with(PASTE_START)
    }

    /// Gives up waiting for the rest of a sequence: a lone `ESC` becomes the Esc key; any other
    /// incomplete sequence is dropped.
    pub fn flush(&mut self) {
        if !self.is_awaiting_timeout() {
            return;
        }
        if self.pending == [ESC] {
            self.events.push_back(Event::Key(KeyCode::Esc.into()));
        } else {
            tracing::debug!(sequence = ?self.pending, "dropping an incomplete input sequence");
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use terminput::{
        KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind, ScrollDirection,
    };

    use super::*;

    fn decode_in_chunks(bytes: &[u8], chunk: usize) -> Vec<Event> {
        let mut parser = InputParser::default();
        let mut events = Vec::new();
        for piece in bytes.chunks(chunk) {
            parser.feed(piece);
            events.extend(std::iter::from_fn(|| parser.next_event()));
        }
        parser.flush();
        events.extend(std::iter::from_fn(|| parser.next_event()));
        events
    }

    fn key(code: KeyCode) -> Event {
        Event::Key(code.into())
    }

    #[test]
    fn every_split_of_a_mixed_stream_decodes_the_same() {
        let stream = b"a\x1b[A\x1b[<0;10;5M\x1b[200~hi\nthere\x1b[201~\xc3\xa9\x03\x1b";
        let expected = vec![
            key(KeyCode::Char('a')),
            key(KeyCode::Up),
            Event::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: 9,
                row: 4,
                modifiers: KeyModifiers::empty(),
            }),
            Event::Paste("hi\nthere".to_owned()),
            key(KeyCode::Char('é')),
            Event::Key(KeyEvent::new(KeyCode::Char('c')).modifiers(KeyModifiers::CTRL)),
            key(KeyCode::Esc),
        ];
        for chunk in 1..=stream.len() {
            assert_eq!(
                decode_in_chunks(stream, chunk),
                expected,
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn a_lone_escape_waits_for_the_timeout() {
        let mut parser = InputParser::default();
        parser.feed(b"\x1b");
        assert_eq!(parser.next_event(), None);
        assert!(parser.is_awaiting_timeout());
        parser.flush();
        assert_eq!(parser.next_event(), Some(key(KeyCode::Esc)));
        assert!(!parser.is_awaiting_timeout());
    }

    #[test]
    fn a_paste_in_progress_is_not_flushed() {
        let mut parser = InputParser::default();
        parser.feed(b"\x1b[200~partial");
        assert!(!parser.is_awaiting_timeout());
        parser.flush();
        parser.feed(b" paste\x1b[201~");
        assert_eq!(
            parser.next_event(),
            Some(Event::Paste("partial paste".into()))
        );
    }

    #[test]
    fn unknown_sequences_are_dropped_and_decoding_goes_on() {
        let mut parser = InputParser::default();
        parser.feed(b"\x1bO\x01x\xffy\x1b[<65;1;1M");
        let events: Vec<_> = std::iter::from_fn(|| parser.next_event()).collect();
        assert_eq!(events.first(), Some(&key(KeyCode::Char('x'))));
        assert_eq!(events.get(1), Some(&key(KeyCode::Char('y'))));
        assert!(matches!(
            events.get(2),
            Some(Event::Mouse(MouseEvent {
                kind: MouseEventKind::Scroll(ScrollDirection::Down),
                ..
            }))
        ));
    }

    #[test]
    fn a_paste_over_the_cap_is_skipped_to_its_end() {
        let mut parser = InputParser::with_max_pending(16);
        parser.feed(b"\x1b[200~0123456789abcdef\x1b[201");
        assert_eq!(parser.next_event(), None);
        parser.feed(b"~z");
        assert_eq!(parser.next_event(), Some(key(KeyCode::Char('z'))));
    }
}
