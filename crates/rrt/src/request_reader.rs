//! Reading control requests within bounds: a longest line, an idle deadline, and one memory
//! budget shared by every client.
//!
//! A line may be as long as [`MAX_REQUEST`] (a clipboard value at the frame limit, escaped), but
//! a client that stalls half-way held its connection for good, and six clients each holding 60 MB
//! of an unfinished line took the daemon to 396 MB. So:
//!
//! - a request stalls at most [`IDLE_DEADLINE`] without a byte — counted from the connection's
//!   start for its first request, from a request's first byte for later ones. A connection that
//!   has been answered may wait for its next request as long as it likes (the TUI keeps one for
//!   its edits), and a stream is never cut for silence (its client has nothing to say);
//! - a request's buffer is drawn from a [`RequestBudget`] as it grows and given back once the
//!   request has been answered; a client whose next bytes would overdraw it is refused and
//!   closed. Lines longer than [`SMALL_REQUEST`] may not take the budget's last [`SMALL_RESERVE`]:
//!   large requests cannot starve the small ones every command sends.
//!
//! ```text
//! client ─▶ BufReader ─▶ read_request ─┬─▶ line (its buffer charged) ─▶ parse, answer ─▶ charge
//!                           │ Charge   │                                                released
//!                           ▼          └─▶ RequestError ─▶ {"error": …}, connection closed
//!                      RequestBudget (shared)
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::control::MAX_REQUEST;

/// How long a request may go without a byte.
pub(crate) const IDLE_DEADLINE: Duration = Duration::from_secs(10);
/// What all clients' requests may hold at once: two of the longest.
pub(crate) const BUDGET: usize = 2 * MAX_REQUEST;
/// The longest line the [`SMALL_RESERVE`] is kept for: far above any command but a copy.
pub(crate) const SMALL_REQUEST: usize = 64 * 1024;
/// The part of the budget only lines up to [`SMALL_REQUEST`] may use.
pub(crate) const SMALL_RESERVE: usize = 8 * 1024 * 1024;

/// The bounds a request is read within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The longest line, its newline included.
    pub(crate) max_request: usize,
    /// How long a request may go without a byte.
    pub(crate) idle: Duration,
}

impl Limits {
    /// The daemon's: [`MAX_REQUEST`] and [`IDLE_DEADLINE`].
    pub(crate) const DAEMON: Self = Self {
        max_request: MAX_REQUEST,
        idle: IDLE_DEADLINE,
    };
}

/// Why a request could not be read. Each ends the connection, after an error line saying why;
/// nothing of the request was acted on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The line reached the longest allowed without ending.
    #[error("a request over {0} bytes")]
    TooLong(usize),
    /// The rest of the line would overdraw the budget that all clients share.
    #[error(transparent)]
    Budget(#[from] BudgetSpent),
    /// No byte came for the idle deadline while a request was expected.
    #[error("no byte of the request for {} s", .0.as_secs())]
    Idle(Duration),
    /// The connection failed.
    #[error("reading the request: {0}")]
    Read(#[source] std::io::Error),
}

/// Reads one request line, without its newline, growing its buffer only as `charge` allows.
/// `Ok(None)`: the client closed between requests. A client that closes in the middle of a
/// line ends it: what it sent is the request. `patient`: whether the client may take its time
/// before the first byte (it has been answered before).
pub(crate) async fn read_request(
    reader: &mut (impl AsyncBufRead + Unpin),
    charge: &mut Charge,
    patient: bool,
    limits: Limits,
) -> Result<Option<Vec<u8>>, RequestError> {
    let mut line = Vec::new();
    loop {
        let filled = if patient && line.is_empty() {
            reader.fill_buf().await
        } else {
            tokio::time::timeout(limits.idle, reader.fill_buf())
                .await
                .map_err(|_| RequestError::Idle(limits.idle))?
        };
        let available = filled.map_err(RequestError::Read)?;
        if available.is_empty() {
            return Ok((!line.is_empty()).then_some(line));
        }
        let (piece, ended) = match available.iter().position(|byte| *byte == b'\n') {
            Some(newline) => (&available[..newline], true),
            None => (available, false),
        };
        let length = line.len() + piece.len();
        // The newline must fit too.
        if length >= limits.max_request {
            return Err(RequestError::TooLong(limits.max_request));
        }
        if length > line.capacity() {
            let wanted = line.capacity().saturating_mul(2).min(limits.max_request);
            let size = charge.grow(length, wanted)?;
            line.reserve_exact(size - line.len());
        }
        line.extend_from_slice(piece);
        let consumed = piece.len() + usize::from(ended);
        reader.consume(consumed);
        if ended {
            return Ok(Some(line));
        }
    }
}

/// The bytes all clients' requests may hold at once, shared by the clients' tasks.
#[derive(Debug, Clone)]
pub(crate) struct RequestBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    total: usize,
    small_request: usize,
    small_reserve: usize,
    used: AtomicUsize,
}

/// The budget is spent: what a request was refused with.
#[derive(Debug, thiserror::Error)]
#[error(
    "other requests hold the {} MiB the daemon keeps for requests; try again once they are \
     answered",
    .total / (1024 * 1024)
)]
pub(crate) struct BudgetSpent {
    total: usize,
}

impl RequestBudget {
    /// `total` bytes, of which the last `small_reserve` only go to lines up to `small_request`.
    pub(crate) fn new(total: usize, small_request: usize, small_reserve: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                total,
                small_request,
                small_reserve: small_reserve.min(total),
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// The daemon's: [`BUDGET`], keeping [`SMALL_RESERVE`] for lines up to [`SMALL_REQUEST`].
    pub(crate) fn daemon() -> Self {
        Self::new(BUDGET, SMALL_REQUEST, SMALL_RESERVE)
    }

    /// A charge of nothing yet, for one request.
    pub(crate) fn charge(&self) -> Charge {
        Charge {
            budget: self.clone(),
            bytes: 0,
        }
    }

    /// The bytes charged now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.shared.used.load(Ordering::Relaxed)
    }
}

/// What one request holds of the budget; given back when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: RequestBudget,
    bytes: usize,
}

impl Charge {
    /// Grows this charge to at least `needed` bytes, to `wanted` if the budget has them (a buffer
    /// grows by doubling), and returns its size; nothing changes when even `needed` is too much.
    pub(crate) fn grow(&mut self, needed: usize, wanted: usize) -> Result<usize, BudgetSpent> {
        if needed <= self.bytes {
            return Ok(self.bytes);
        }
        let shared = &self.budget.shared;
        let (limit, wanted) = if needed <= shared.small_request {
            (shared.total, wanted.min(shared.small_request))
        } else {
            (shared.total - shared.small_reserve, wanted)
        };
        let spent = BudgetSpent {
            total: shared.total,
        };
        let mut size = 0;
        shared
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let others = used - self.bytes;
                let most = limit.checked_sub(others)?;
                if most < needed {
                    return None;
                }
                size = wanted.clamp(needed, most);
                Some(others + size)
            })
            .map_err(|_| spent)?;
        self.bytes = size;
        Ok(size)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget
            .shared
            .used
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncWriteExt, BufReader};

    use super::*;

    const LIMITS: Limits = Limits {
        max_request: 1000,
        idle: Duration::from_millis(20),
    };

    #[test]
    fn charges_draw_from_one_budget_and_give_back_when_dropped() {
        let budget = RequestBudget::new(1000, 10, 0);
        let mut first = budget.charge();
        assert_eq!(first.grow(100, 200).ok(), Some(200));
        let mut second = budget.charge();
        assert_eq!(second.grow(500, 1000).ok(), Some(800), "what is left");
        assert!(first.grow(300, 400).is_err(), "the budget is spent");
        assert_eq!(budget.used(), 1000, "a refusal changes nothing");
        drop(second);
        assert_eq!(first.grow(300, 400).ok(), Some(400));
        assert_eq!(first.grow(50, 60).ok(), Some(400), "a charge never shrinks");
        drop(first);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn large_lines_leave_the_reserve_to_small_ones() {
        let budget = RequestBudget::new(1000, 10, 100);
        let mut large = budget.charge();
        assert_eq!(large.grow(800, 2000).ok(), Some(900));
        assert!(large.grow(901, 901).is_err(), "not into the reserve");
        let mut small = budget.charge();
        assert_eq!(
            small.grow(5, 1000).ok(),
            Some(10),
            "a small line stays small"
        );
        let mut others: Vec<Charge> = (0..9).map(|_| budget.charge()).collect();
        for other in &mut others {
            assert_eq!(other.grow(10, 10).ok(), Some(10));
        }
        assert!(
            budget.charge().grow(1, 1).is_err(),
            "all of it is taken now"
        );
    }

    #[tokio::test]
    async fn lines_are_read_one_by_one_and_a_last_one_may_lack_its_newline() {
        let budget = RequestBudget::new(10_000, 100, 0);
        let mut reader = BufReader::new(&b"{\"op\":\"paste\"}\n\nlast"[..]);
        let mut lines = Vec::new();
        while let Some(line) = read_request(&mut reader, &mut budget.charge(), true, LIMITS)
            .await
            .expect("a line")
        {
            lines.push(String::from_utf8(line).expect("UTF-8"));
        }
        assert_eq!(lines, ["{\"op\":\"paste\"}", "", "last"]);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_line_at_the_limit_is_refused_and_one_below_is_read() {
        let budget = RequestBudget::new(10_000, 100, 0);
        let mut fits = vec![b'x'; LIMITS.max_request - 1];
        fits.push(b'\n');
        let mut reader = BufReader::with_capacity(64, &fits[..]);
        let mut charge = budget.charge();
        let line = read_request(&mut reader, &mut charge, false, LIMITS).await;
        assert_eq!(line.ok().flatten().map(|line| line.len()), Some(999));
        assert!(budget.used() >= 999, "charged while held");
        drop(charge);

        let over = vec![b'x'; LIMITS.max_request];
        let mut reader = BufReader::with_capacity(64, &over[..]);
        let line = read_request(&mut reader, &mut budget.charge(), false, LIMITS).await;
        assert!(matches!(line, Err(RequestError::TooLong(1000))), "{line:?}");
    }

    #[tokio::test]
    async fn a_line_the_budget_cannot_hold_is_refused() {
        let budget = RequestBudget::new(500, 100, 0);
        let long = vec![b'x'; 600];
        let mut reader = BufReader::with_capacity(64, &long[..]);
        let line = read_request(&mut reader, &mut budget.charge(), false, LIMITS).await;
        assert!(matches!(line, Err(RequestError::Budget(_))), "{line:?}");
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_stalled_line_and_a_silent_first_request_meet_the_deadline_but_a_patient_wait_does_not()
     {
        let budget = RequestBudget::new(10_000, 100, 0);
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = BufReader::new(server);
        let silent = read_request(&mut reader, &mut budget.charge(), false, LIMITS).await;
        assert!(matches!(silent, Err(RequestError::Idle(_))), "{silent:?}");

        client.write_all(b"{\"op\":").await.expect("write");
        let stalled = read_request(&mut reader, &mut budget.charge(), true, LIMITS).await;
        assert!(matches!(stalled, Err(RequestError::Idle(_))), "{stalled:?}");

        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = BufReader::new(server);
        let mut charge = budget.charge();
        let patient = read_request(&mut reader, &mut charge, true, LIMITS);
        let later = async {
            // Well past the deadline, but nothing was started.
            tokio::time::sleep(LIMITS.idle * 5).await;
            client.write_all(b"{}\n").await.expect("write");
        };
        let (line, ()) = tokio::join!(patient, later);
        assert_eq!(line.ok().flatten().as_deref(), Some(&b"{}"[..]));
    }
}
