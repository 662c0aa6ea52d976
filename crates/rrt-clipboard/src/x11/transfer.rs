//! Reading the X11 clipboard, as a sans-IO state machine: ask for the owner's targets, refuse a
//! secret, pick the best text target, take the value whole or in INCR chunks, and stop at a size
//! cap. The driver performs the X requests this asks for and feeds back what the server answered.

/// A text target to convert the selection to, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextTarget {
    /// `UTF8_STRING`.
    Utf8,
    /// `STRING` (ISO 8859-1, ICCCM).
    Latin1,
}

/// What the selection's owner offers, as far as this machine cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Offer {
    /// `UTF8_STRING` is offered.
    pub utf8: bool,
    /// `STRING` is offered.
    pub latin1: bool,
    /// A password manager marked the value as a secret (`x-kde-passwordManagerHint`).
    pub secret: bool,
}

/// What the driver does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Convert the selection to this target and report the answer.
    Convert(TextTarget),
    /// Wait for the next INCR chunk (a property change on our window).
    AwaitChunk,
    /// The transfer is over.
    Done(Outcome),
}

/// How a transfer ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The clipboard holds this text.
    Text(String),
    /// Marked as a secret: not to be shared.
    Secret,
    /// No text target, or the owner refused to convert.
    NoText,
    /// Over the cap (in bytes).
    TooLarge(usize),
}

#[derive(Debug)]
enum State {
    Targets,
    Value(TextTarget),
    Chunks(TextTarget),
}

/// One read of the clipboard.
#[derive(Debug)]
pub(crate) struct Transfer {
    state: State,
    buffer: Vec<u8>,
    max: usize,
}

impl Transfer {
    /// A read that accepts values up to `max` bytes; the driver first asks for the targets.
    pub(crate) fn start(max: usize) -> Self {
        Self {
            state: State::Targets,
            buffer: Vec::new(),
            max,
        }
    }

    /// The owner's targets arrived.
    pub(crate) fn on_targets(&mut self, offer: Offer) -> Next {
        if !matches!(self.state, State::Targets) {
            return Next::Done(Outcome::NoText);
        }
        if offer.secret {
            return Next::Done(Outcome::Secret);
        }
        let target = if offer.utf8 {
            TextTarget::Utf8
        } else if offer.latin1 {
            TextTarget::Latin1
        } else {
            return Next::Done(Outcome::NoText);
        };
        self.state = State::Value(target);
        Next::Convert(target)
    }

    /// The owner would not convert (the property came back empty-handed). An owner that cannot
    /// list its targets still gets asked for UTF-8 text, as old clients only answer that.
    pub(crate) fn on_refused(&mut self) -> Next {
        match self.state {
            State::Targets => {
                self.state = State::Value(TextTarget::Utf8);
                Next::Convert(TextTarget::Utf8)
            }
            State::Value(_) | State::Chunks(_) => Next::Done(Outcome::NoText),
        }
    }

    /// The converted value arrived: whole, or (`incremental`) as the announcement of INCR chunks
    /// of about `announced` bytes in all.
    pub(crate) fn on_value(&mut self, bytes: &[u8], incremental: Option<usize>) -> Next {
        let State::Value(target) = self.state else {
            return Next::Done(Outcome::NoText);
        };
        if let Some(announced) = incremental {
            if announced > self.max {
                return Next::Done(Outcome::TooLarge(announced));
            }
            self.state = State::Chunks(target);
            return Next::AwaitChunk;
        }
        if bytes.len() > self.max {
            return Next::Done(Outcome::TooLarge(bytes.len()));
        }
        Next::Done(decode(target, bytes))
    }

    /// The value is `len` bytes, more than was asked for.
    pub(crate) fn on_oversize(&mut self, len: usize) -> Next {
        Next::Done(Outcome::TooLarge(len))
    }

    /// An INCR chunk arrived; an empty one ends the value.
    pub(crate) fn on_chunk(&mut self, bytes: &[u8]) -> Next {
        let State::Chunks(target) = self.state else {
            return Next::Done(Outcome::NoText);
        };
        if bytes.is_empty() {
            return Next::Done(decode(target, &std::mem::take(&mut self.buffer)));
        }
        if self.buffer.len() + bytes.len() > self.max {
            return Next::Done(Outcome::TooLarge(self.buffer.len() + bytes.len()));
        }
        self.buffer.extend_from_slice(bytes);
        Next::AwaitChunk
    }

    /// Whether the transfer waits for INCR chunks.
    pub(crate) fn awaits_chunks(&self) -> bool {
        matches!(self.state, State::Chunks(_))
    }
}

fn decode(target: TextTarget, bytes: &[u8]) -> Outcome {
    let text = match target {
        // Invalid UTF-8 from another program is repaired, not refused: the user copied it.
        TextTarget::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        TextTarget::Latin1 => bytes.iter().map(|&byte| char::from(byte)).collect(),
    };
    if text.is_empty() {
        Outcome::NoText
    } else {
        Outcome::Text(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: Offer = Offer {
        utf8: true,
        latin1: true,
        secret: false,
    };

    #[test]
    fn utf8_is_preferred_and_read_whole() {
        let mut transfer = Transfer::start(100);
        assert_eq!(transfer.on_targets(TEXT), Next::Convert(TextTarget::Utf8));
        assert_eq!(
            transfer.on_value("héllo".as_bytes(), None),
            Next::Done(Outcome::Text("héllo".to_owned()))
        );
    }

    #[test]
    fn a_secret_is_never_read() {
        let mut transfer = Transfer::start(100);
        let offer = Offer {
            secret: true,
            ..TEXT
        };
        assert_eq!(transfer.on_targets(offer), Next::Done(Outcome::Secret));
    }

    #[test]
    fn latin1_is_decoded_and_no_text_is_no_text() {
        let mut transfer = Transfer::start(100);
        let latin1 = Offer {
            latin1: true,
            ..Offer::default()
        };
        assert_eq!(
            transfer.on_targets(latin1),
            Next::Convert(TextTarget::Latin1)
        );
        assert_eq!(
            transfer.on_value(&[0x63, 0x61, 0x66, 0xe9], None),
            Next::Done(Outcome::Text("café".to_owned()))
        );
        let mut image = Transfer::start(100);
        assert_eq!(
            image.on_targets(Offer::default()),
            Next::Done(Outcome::NoText)
        );
    }

    #[test]
    fn incremental_values_are_assembled_and_capped() {
        let mut transfer = Transfer::start(10);
        transfer.on_targets(TEXT);
        assert_eq!(transfer.on_value(&[], Some(8)), Next::AwaitChunk);
        assert!(transfer.awaits_chunks());
        assert_eq!(transfer.on_chunk(b"1234"), Next::AwaitChunk);
        assert_eq!(transfer.on_chunk(b"5678"), Next::AwaitChunk);
        assert_eq!(
            transfer.on_chunk(b""),
            Next::Done(Outcome::Text("12345678".to_owned()))
        );

        let mut liar = Transfer::start(10);
        liar.on_targets(TEXT);
        liar.on_value(&[], Some(4));
        liar.on_chunk(b"123456");
        assert_eq!(liar.on_chunk(b"789012"), Next::Done(Outcome::TooLarge(12)));

        let mut honest = Transfer::start(10);
        honest.on_targets(TEXT);
        assert_eq!(
            honest.on_value(&[], Some(11)),
            Next::Done(Outcome::TooLarge(11))
        );
    }

    #[test]
    fn targets_are_taken_only_when_asked_for() {
        let mut transfer = Transfer::start(100);
        transfer.on_targets(TEXT);
        assert_eq!(transfer.on_targets(TEXT), Next::Done(Outcome::NoText));
    }

    #[test]
    fn an_owner_without_targets_is_asked_for_utf8_once() {
        let mut transfer = Transfer::start(100);
        assert_eq!(transfer.on_refused(), Next::Convert(TextTarget::Utf8));
        assert_eq!(transfer.on_refused(), Next::Done(Outcome::NoText));
    }
}
