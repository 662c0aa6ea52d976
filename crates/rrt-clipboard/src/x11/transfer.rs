//! Reading one X11 clipboard value, as a sans-IO state machine: ask for the owner's targets,
//! refuse a secret, [`plan`](crate::read::plan()) the targets worth reading, then convert to each
//! in turn — taking the value whole, or in INCR chunks — under a size cap per target. The driver
//! performs the X requests this asks for and feeds back what the server answered.
//!
//! ```text
//!  Targets ──targets──▶ Value(next) ──whole──────────────▶ Value(next) … Done(Read)
//!     │ secret: Done      │ INCR ≤ cap ─▶ Chunks ──empty──▶ Value(next)
//!     │                   │ INCR > cap ─▶ Discard ─empty──▶ Value(next)
//!     │ refused: UTF8_STRING, as old owners only answer that
//! ```
//!
//! An INCR value found too large is still drained to its end, its chunks dropped: abandoned
//! half-way, its owner would go on writing chunks into our property while a later target's value
//! is read from it.

use crate::{
    Representation,
    read::{Collector, Encoding, SECRET_HINT, Want, plan},
};

/// The text targets, best first. (`TEXT` is left out: its encoding is the owner's choice.)
pub(crate) const TEXT_TARGETS: [(&str, Encoding); 3] = [
    ("UTF8_STRING", Encoding::Utf8),
    ("text/plain;charset=utf-8", Encoding::Utf8),
    ("STRING", Encoding::Latin1),
];

/// The target asked of an owner that cannot list its targets.
const FALLBACK: &str = "UTF8_STRING";

/// What the driver does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Convert the selection to the target of this name and report the answer.
    Convert(String),
    /// Wait for the next INCR chunk (a property change on our window).
    AwaitChunk,
    /// The transfer is over.
    Done(Outcome),
}

/// How a transfer ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// What was read of the value (empty when nothing worth reading could be had).
    Read(Vec<Representation>),
    /// Marked as a secret: not to be shared.
    Secret,
}

#[derive(Debug)]
enum State {
    Targets,
    Value,
    Chunks,
    Discard,
}

/// One read of the clipboard.
#[derive(Debug)]
pub(crate) struct Transfer {
    state: State,
    collector: Collector,
    max: usize,
}

impl Transfer {
    /// A read that accepts values up to `max` bytes per target; the driver first asks for the
    /// targets.
    pub(crate) fn start(max: usize) -> Self {
        Self {
            state: State::Targets,
            collector: Collector::new(Vec::new(), max),
            max,
        }
    }

    /// The owner's targets arrived, by name.
    pub(crate) fn on_targets<S: AsRef<str>>(&mut self, targets: &[S]) -> Next {
        if !matches!(self.state, State::Targets) {
            return self.end();
        }
        if targets.iter().any(|target| target.as_ref() == SECRET_HINT) {
            return Next::Done(Outcome::Secret);
        }
        self.collector = Collector::new(plan(targets, &TEXT_TARGETS), self.max);
        self.convert_next()
    }

    /// The owner would not convert (the property came back empty-handed). An owner that cannot
    /// list its targets still gets asked for UTF-8 text, as old clients only answer that.
    pub(crate) fn on_refused(&mut self) -> Next {
        match self.state {
            State::Targets => self.on_targets(&[FALLBACK]),
            State::Value => {
                self.collector.skip();
                self.convert_next()
            }
            State::Chunks | State::Discard => self.end(),
        }
    }

    /// The converted value arrived: whole, or (`incremental`) as the announcement of INCR chunks
    /// of about that many bytes in all.
    pub(crate) fn on_value(&mut self, bytes: &[u8], incremental: Option<usize>) -> Next {
        if !matches!(self.state, State::Value) {
            return self.end();
        }
        if let Some(announced) = incremental {
            self.state = if self.collector.expect(announced) {
                State::Chunks
            } else {
                State::Discard
            };
            return Next::AwaitChunk;
        }
        if self.collector.take(bytes) {
            self.collector.complete();
        }
        self.convert_next()
    }

    /// The value is `len` bytes, more than was asked for (so over the cap).
    pub(crate) fn on_oversize(&mut self, len: usize) -> Next {
        if !matches!(self.state, State::Value) {
            return self.end();
        }
        self.collector.expect(len);
        self.collector.skip();
        self.convert_next()
    }

    /// An INCR chunk arrived; an empty one ends the value.
    pub(crate) fn on_chunk(&mut self, bytes: &[u8]) -> Next {
        match self.state {
            State::Chunks if bytes.is_empty() => {
                self.collector.complete();
                self.convert_next()
            }
            State::Chunks => {
                if !self.collector.take(bytes) {
                    self.state = State::Discard;
                }
                Next::AwaitChunk
            }
            State::Discard if bytes.is_empty() => self.convert_next(),
            State::Discard => Next::AwaitChunk,
            State::Targets | State::Value => self.end(),
        }
    }

    /// Whether the transfer waits for INCR chunks.
    pub(crate) fn awaits_chunks(&self) -> bool {
        matches!(self.state, State::Chunks | State::Discard)
    }

    /// The owner stopped answering: what was read so far.
    pub(crate) fn give_up(mut self) -> Outcome {
        Outcome::Read(self.collector.take_read())
    }

    fn convert_next(&mut self) -> Next {
        match self.collector.begin_next() {
            Some(Want { offered, .. }) => {
                self.state = State::Value;
                Next::Convert(offered.clone())
            }
            None => self.end(),
        }
    }

    fn end(&mut self) -> Next {
        Next::Done(Outcome::Read(self.collector.take_read()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TEXT;

    fn read(representations: &[(&str, &[u8])]) -> Next {
        Next::Done(Outcome::Read(
            representations
                .iter()
                .map(|(mime, data)| Representation {
                    mime: (*mime).to_owned(),
                    data: data.to_vec(),
                })
                .collect(),
        ))
    }

    fn convert(target: &str) -> Next {
        Next::Convert(target.to_owned())
    }

    #[test]
    fn every_planned_target_is_converted_in_turn() {
        let mut transfer = Transfer::start(100);
        let targets = ["TARGETS", "image/png", "STRING", "UTF8_STRING", "text/html"];
        assert_eq!(transfer.on_targets(&targets), convert("UTF8_STRING"));
        assert_eq!(
            transfer.on_value("héllo".as_bytes(), None),
            convert("text/html")
        );
        assert_eq!(transfer.on_value(b"<i>h</i>", None), convert("image/png"));
        assert_eq!(
            transfer.on_value(b"\x89PNG", None),
            read(&[
                (TEXT, "héllo".as_bytes()),
                ("text/html", b"<i>h</i>"),
                ("image/png", b"\x89PNG"),
            ])
        );
    }

    #[test]
    fn a_secret_is_never_read() {
        let mut transfer = Transfer::start(100);
        let targets = ["UTF8_STRING", SECRET_HINT];
        assert_eq!(transfer.on_targets(&targets), Next::Done(Outcome::Secret));
    }

    #[test]
    fn latin1_is_decoded_and_nothing_readable_is_nothing() {
        let mut transfer = Transfer::start(100);
        assert_eq!(transfer.on_targets(&["STRING"]), convert("STRING"));
        assert_eq!(
            transfer.on_value(&[0x63, 0x61, 0x66, 0xe9], None),
            read(&[(TEXT, "café".as_bytes())])
        );
        let mut other = Transfer::start(100);
        assert_eq!(other.on_targets(&["application/x-foo"]), read(&[]));
    }

    #[test]
    fn incremental_values_are_assembled_and_capped_and_the_rest_still_read() {
        let mut transfer = Transfer::start(10);
        transfer.on_targets(&["UTF8_STRING", "text/html", "text/uri-list", "image/png"]);
        assert_eq!(transfer.on_value(&[], Some(8)), Next::AwaitChunk);
        assert!(transfer.awaits_chunks());
        assert_eq!(transfer.on_chunk(b"1234"), Next::AwaitChunk);
        assert_eq!(transfer.on_chunk(b"5678"), Next::AwaitChunk);
        assert_eq!(transfer.on_chunk(b""), convert("text/html"));

        // An owner announcing less than it sends: dropped once over the cap, drained to its end.
        assert_eq!(transfer.on_value(&[], Some(4)), Next::AwaitChunk);
        assert_eq!(transfer.on_chunk(b"123456"), Next::AwaitChunk);
        assert_eq!(transfer.on_chunk(b"789012"), Next::AwaitChunk);
        assert!(transfer.awaits_chunks(), "drained");
        assert_eq!(transfer.on_chunk(b"345"), Next::AwaitChunk);
        assert_eq!(transfer.on_chunk(b""), convert("text/uri-list"));

        // Announced over the cap: drained without keeping anything.
        assert_eq!(transfer.on_value(&[], Some(11)), Next::AwaitChunk);
        assert_eq!(transfer.on_chunk(b"12345678901"), Next::AwaitChunk);
        assert_eq!(transfer.on_chunk(b""), convert("image/png"));

        // Whole, but more than asked for.
        assert_eq!(transfer.on_oversize(50), read(&[(TEXT, b"12345678")]));
    }

    #[test]
    fn answers_out_of_turn_end_the_read_with_what_it_has() {
        let mut transfer = Transfer::start(100);
        transfer.on_targets(&["UTF8_STRING", "text/html"]);
        transfer.on_value(b"hi", None);
        assert_eq!(
            transfer.on_targets(&["UTF8_STRING"]),
            read(&[(TEXT, b"hi")])
        );
        let mut chunky = Transfer::start(100);
        assert_eq!(chunky.on_chunk(b"stray"), read(&[]));
    }

    #[test]
    fn an_owner_without_targets_is_asked_for_utf8_once_and_a_refusal_skips_a_target() {
        let mut transfer = Transfer::start(100);
        assert_eq!(transfer.on_refused(), convert("UTF8_STRING"));
        assert_eq!(transfer.on_refused(), read(&[]));

        let mut refusing = Transfer::start(100);
        refusing.on_targets(&["UTF8_STRING", "image/png"]);
        assert_eq!(refusing.on_refused(), convert("image/png"));
        assert_eq!(
            refusing.on_value(b"png", None),
            read(&[("image/png", b"png")])
        );
    }

    #[test]
    fn giving_up_keeps_what_was_read() {
        let mut transfer = Transfer::start(100);
        transfer.on_targets(&["UTF8_STRING", "image/png"]);
        transfer.on_value(b"hi", None);
        transfer.on_value(&[], Some(50));
        transfer.on_chunk(b"half a png");
        assert_eq!(
            transfer.give_up(),
            Outcome::Read(vec![Representation {
                mime: TEXT.to_owned(),
                data: b"hi".to_vec()
            }])
        );
    }
}
