//! Following the X11 clipboard over time, sans IO: one read ([`Transfer`]) at a time, because an
//! owner's answer names only the target it converted to, not the request it answers. A new owner
//! or a value set by us during a read makes that read stale: its result is dropped — the rest of
//! it may have come from the new owner without the secret check — and the clipboard is read again
//! when it ends. A read whose owner stops answering is given up after [`READ_TIMEOUT`].

use std::time::{Duration, Instant};

use super::transfer::{Next, Offer, Outcome, TextTarget, Transfer};

/// How long an owner may take to answer one request (each INCR chunk restarts it). An owner
/// that exits right after losing the clipboard can have its last answer dropped by the server.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// What the driver converts the selection to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// `TARGETS`.
    Targets,
    /// A text target.
    Text(TextTarget),
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
    /// A reader of values up to `max` bytes.
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
    pub(crate) fn awaits(&self, ask: Ask) -> bool {
        self.asked == Some(ask)
    }

    /// Whether the read waits for INCR chunks.
    pub(crate) fn awaits_chunks(&self) -> bool {
        self.transfer.as_ref().is_some_and(Transfer::awaits_chunks)
    }

    /// The owner would not convert.
    pub(crate) fn refused(&mut self, now: Instant) -> Step {
        self.advance(now, Transfer::on_refused)
    }

    /// The owner's targets.
    pub(crate) fn targets(&mut self, offer: Offer, now: Instant) -> Step {
        self.advance(now, |transfer| transfer.on_targets(offer))
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
        self.transfer.as_ref().map(|_| self.since + READ_TIMEOUT)
    }

    /// The owner did not answer in time.
    pub(crate) fn timed_out(&mut self, now: Instant) -> Step {
        self.stale = true;
        self.finish(None, now)
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
            Next::Convert(target) => {
                self.asked = Some(Ask::Text(target));
                Step::Convert(Ask::Text(target))
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

    const TEXT: Offer = Offer {
        utf8: true,
        latin1: false,
        secret: false,
    };

    #[test]
    fn a_read_asks_targets_then_text_and_ends_with_the_value() {
        let now = Instant::now();
        let mut reader = Reader::new(100);
        assert_eq!(reader.new_owner(now), Step::Convert(Ask::Targets));
        assert!(reader.awaits(Ask::Targets));
        assert!(!reader.awaits(Ask::Text(TextTarget::Utf8)));
        assert_eq!(
            reader.targets(TEXT, now),
            Step::Convert(Ask::Text(TextTarget::Utf8))
        );
        assert!(
            !reader.awaits(Ask::Targets),
            "a late TARGETS answer is not taken"
        );
        assert_eq!(
            reader.value(b"hi", None, now),
            Step::Done {
                outcome: Some(Outcome::Text("hi".to_owned())),
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
        reader.targets(TEXT, now);
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
            reader.awaits(Ask::Targets),
            "the new read checks the targets first"
        );
    }

    #[test]
    fn a_value_set_during_a_read_drops_its_result() {
        let now = Instant::now();
        let mut reader = Reader::new(100);
        reader.new_owner(now);
        reader.set();
        reader.targets(TEXT, now);
        assert_eq!(
            reader.value(b"older", None, now),
            Step::Done {
                outcome: None,
                reread: false
            }
        );
    }

    #[test]
    fn a_silent_owner_is_given_up_at_the_deadline() {
        let now = Instant::now();
        let mut reader = Reader::new(100);
        reader.new_owner(now);
        assert_eq!(reader.deadline(), Some(now + READ_TIMEOUT));
        reader.new_owner(now);
        assert_eq!(
            reader.timed_out(now + READ_TIMEOUT),
            Step::Done {
                outcome: None,
                reread: true
            }
        );
        assert_eq!(reader.deadline(), Some(now + READ_TIMEOUT * 2));
    }
}
