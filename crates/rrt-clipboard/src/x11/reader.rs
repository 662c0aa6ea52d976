//! Following the X11 clipboard over time, sans IO: one read ([`Transfer`]) at a time, because an
//! owner's answer names only the target it converted to, not the request it answers. A new owner
//! or a value set by us during a read makes that read stale: its result is dropped — the rest of
//! it may have come from the new owner without the secret check — no further target is
//! converted, and the clipboard is read again when the read ends.
//!
//! An owner that stops answering is given up: after [`TARGETS_TIMEOUT`] when it does not even
//! list its targets (any live program answers that at once), after [`CONVERT_TIMEOUT`] during a
//! conversion or between INCR chunks (a program may take a while to encode an image). What was
//! read before is still reported.

use std::time::{Duration, Instant};

use super::transfer::{Next, Outcome, Transfer};

/// How long an owner may take to list its targets. An owner that exits right after losing the
/// clipboard can have its last answer dropped by the server.
pub(crate) const TARGETS_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an owner may take to convert a value, or to send the next INCR chunk.
pub(crate) const CONVERT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the driver converts the selection to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ask {
    /// `TARGETS`.
    Targets,
    /// The target of this name.
    Target(String),
}

/// What the driver does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Convert the selection to this and feed back the answer.
    Convert(Ask),
    /// Nothing until an answer or an INCR chunk.
    Wait,
    /// A read ended: with this outcome, or `None` when it was stale. With `reread`, a new read
    /// has begun: convert to `TARGETS`.
    Done {
        /// What the clipboard held, unless the read was stale.
        outcome: Option<Outcome>,
        /// A new read has begun.
        reread: bool,
    },
}

/// The clipboard reader's state.
#[derive(Debug)]
pub(crate) struct Reader {
    max: usize,
    transfer: Option<Transfer>,
    asked: Option<Ask>,
    /// When the read last made progress.
    since: Instant,
    stale: bool,
    reread: bool,
}

impl Reader {
    /// A reader of values up to `max` bytes per target.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            transfer: None,
            asked: None,
            since: Instant::now(),
            stale: false,
            reread: false,
        }
    }

    /// Another program took the clipboard.
    pub(crate) fn new_owner(&mut self, now: Instant) -> Step {
        if self.transfer.is_some() {
            self.stale = true;
            self.reread = true;
            return Step::Wait;
        }
        self.start(now);
        Step::Convert(Ask::Targets)
    }

    /// We set the clipboard: a read in flight would end with an older value.
    pub(crate) fn set(&mut self) {
        if self.transfer.is_some() {
            self.stale = true;
        }
    }

    /// Whether an answer for `ask` is the one awaited.
    pub(crate) fn awaits(&self, ask: &Ask) -> bool {
        self.asked.as_ref() == Some(ask)
    }

    /// Whether the read waits for INCR chunks.
    pub(crate) fn awaits_chunks(&self) -> bool {
        self.transfer.as_ref().is_some_and(Transfer::awaits_chunks)
    }

    /// The owner would not convert.
    pub(crate) fn refused(&mut self, now: Instant) -> Step {
        self.advance(now, Transfer::on_refused)
    }

    /// The owner's targets, by name.
    pub(crate) fn targets<S: AsRef<str>>(&mut self, targets: &[S], now: Instant) -> Step {
        self.advance(now, |transfer| transfer.on_targets(targets))
    }

    /// The converted value, whole or as the announcement of INCR chunks of `incremental` bytes.
    pub(crate) fn value(&mut self, bytes: &[u8], incremental: Option<usize>, now: Instant) -> Step {
        self.advance(now, |transfer| transfer.on_value(bytes, incremental))
    }

    /// A value of `len` bytes, more than was asked for.
    pub(crate) fn oversize(&mut self, len: usize, now: Instant) -> Step {
        self.advance(now, |transfer| transfer.on_oversize(len))
    }

    /// An INCR chunk.
    pub(crate) fn chunk(&mut self, bytes: &[u8], now: Instant) -> Step {
        self.advance(now, |transfer| transfer.on_chunk(bytes))
    }

    /// When the read in flight is given up, if one is.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let timeout = match self.asked {
            Some(Ask::Targets) => TARGETS_TIMEOUT,
            _ => CONVERT_TIMEOUT,
        };
        self.transfer.as_ref().map(|_| self.since + timeout)
    }

    /// The owner did not answer in time.
    pub(crate) fn timed_out(&mut self, now: Instant) -> Step {
        let outcome = self.transfer.take().map(Transfer::give_up);
        self.finish(outcome, now)
    }

    fn start(&mut self, now: Instant) {
        self.transfer = Some(Transfer::start(self.max));
        self.asked = Some(Ask::Targets);
        self.since = now;
    }

    fn advance(&mut self, now: Instant, step: impl FnOnce(&mut Transfer) -> Next) -> Step {
        let Some(transfer) = self.transfer.as_mut() else {
            return Step::Wait;
        };
        self.since = now;
        match step(transfer) {
            // Whatever a stale read would convert next comes from an owner not checked.
            Next::Convert(_) if self.stale => self.finish(None, now),
            Next::Convert(target) => {
                let ask = Ask::Target(target);
                self.asked = Some(ask.clone());
                Step::Convert(ask)
            }
            Next::AwaitChunk => {
                self.asked = None;
                Step::Wait
            }
            Next::Done(outcome) => self.finish(Some(outcome), now),
        }
    }

    fn finish(&mut self, outcome: Option<Outcome>, now: Instant) -> Step {
        let stale = std::mem::take(&mut self.stale);
        self.transfer = None;
        self.asked = None;
        let reread = std::mem::take(&mut self.reread);
        if reread {
            self.start(now);
        }
        Step::Done {
            outcome: outcome.filter(|_| !stale),
            reread,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Representation, TEXT};

    fn target(name: &str) -> Ask {
        Ask::Target(name.to_owned())
    }

    fn read(text: &str) -> Option<Outcome> {
        Some(Outcome::Read(vec![Representation {
            mime: TEXT.to_owned(),
            data: text.as_bytes().to_vec(),
        }]))
    }

    #[test]
    fn a_read_asks_targets_then_each_target_and_ends_with_the_value() {
        let now = Instant::now();
        let mut reader = Reader::new(100);
        assert_eq!(reader.new_owner(now), Step::Convert(Ask::Targets));
        assert!(reader.awaits(&Ask::Targets));
        assert!(!reader.awaits(&target("UTF8_STRING")));
        assert_eq!(
            reader.targets(&["UTF8_STRING", "text/html"], now),
            Step::Convert(target("UTF8_STRING"))
        );
        assert!(
            !reader.awaits(&Ask::Targets),
            "a late TARGETS answer is not taken"
        );
        assert_eq!(
            reader.value(b"hi", None, now),
            Step::Convert(target("text/html"))
        );
        assert!(reader.awaits(&target("text/html")));
        assert_eq!(
            reader.refused(now),
            Step::Done {
                outcome: read("hi"),
                reread: false
            }
        );
        assert_eq!(reader.deadline(), None);
    }

    #[test]
    fn a_new_owner_during_a_read_drops_its_result_and_reads_again() {
        let now = Instant::now();
        let mut reader = Reader::new(100);
        reader.new_owner(now);
        reader.targets(&["UTF8_STRING"], now);
        // A password manager takes the clipboard: the text answer may be its secret.
        assert_eq!(reader.new_owner(now), Step::Wait);
        assert_eq!(
            reader.value(b"hunter2", None, now),
            Step::Done {
                outcome: None,
                reread: true
            }
        );
        assert!(
            reader.awaits(&Ask::Targets),
            "the new read checks the targets first"
        );
    }

    #[test]
    fn a_stale_read_converts_nothing_more() {
        let now = Instant::now();
        let mut reader = Reader::new(100);
        reader.new_owner(now);
        reader.targets(&["UTF8_STRING", "image/png"], now);
        reader.set();
        assert_eq!(
            reader.value(b"older", None, now),
            Step::Done {
                outcome: None,
                reread: false
            },
            "the image is not asked of whoever owns the clipboard now"
        );
    }

    #[test]
    fn a_silent_owner_is_given_up_at_the_deadline() {
        let now = Instant::now();
        let mut reader = Reader::new(100);
        reader.new_owner(now);
        assert_eq!(reader.deadline(), Some(now + TARGETS_TIMEOUT));
        reader.new_owner(now);
        assert_eq!(
            reader.timed_out(now + TARGETS_TIMEOUT),
            Step::Done {
                outcome: None,
                reread: true
            }
        );
        assert_eq!(reader.deadline(), Some(now + TARGETS_TIMEOUT * 2));
    }

    #[test]
    fn an_owner_slow_to_convert_is_given_more_time_and_what_it_gave_is_kept() {
        let now = Instant::now();
        let mut reader = Reader::new(100);
        reader.new_owner(now);
        reader.targets(&["UTF8_STRING", "image/png"], now);
        assert_eq!(reader.deadline(), Some(now + CONVERT_TIMEOUT));
        let later = now + Duration::from_secs(2);
        reader.value(b"hi", None, later);
        assert_eq!(reader.value(&[], Some(1000), later), Step::Wait);
        assert_eq!(reader.deadline(), Some(later + CONVERT_TIMEOUT));
        assert_eq!(
            reader.timed_out(later + CONVERT_TIMEOUT),
            Step::Done {
                outcome: read("hi"),
                reread: false
            }
        );
    }
}
