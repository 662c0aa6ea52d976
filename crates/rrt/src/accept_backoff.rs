//! When `accept` fails on the control socket, stop accepting for a while.
//!
//! The usual failure is running out of file descriptors (`EMFILE`, `ENFILE`): the connection
//! stays in the listen queue, so the socket stays readable and every retry fails at once. Retried
//! in a loop, that took a core and wrote 2.3 million log lines in five seconds. So a failure
//! pauses accepting — 100 ms, doubling to 1 s while failures go on — and the driver also ends a
//! pause early when one of its own clients closes (a descriptor is free).
//!
//! The log hears of an episode twice: at its first failure, and at the first accept after a
//! quiet spell ([`QUIET`] without a failure) that ends it, with the number of failures. At the
//! limit, clients coming and going make accepts alternate with failures; that is one episode,
//! not a line per turn.
//!
//! ```text
//! accept ──Err──▶ failed(now)   ─▶ Pause { duration, first } ─▶ no accept until it passes
//!        ──Ok───▶ accepted(now) ─▶ Some(failures) once an episode is over
//! ```

use std::time::{Duration, Instant};

/// The first pause after a failed accept.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause: a freed descriptor is noticed within it even when nothing else says so.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// How long accepts must go without a failure to end an episode.
const QUIET: Duration = Duration::from_secs(10);

/// Failing accepts, as episodes (sans-IO: the driver performs the pauses and keeps the log).
#[derive(Debug, Default)]
pub(crate) struct AcceptBackoff {
    /// Failures since the last accept that succeeded: they set the pause.
    in_a_row: u32,
    /// The open episode, if any.
    episode: Option<Episode>,
}

#[derive(Debug)]
struct Episode {
    failures: u32,
    last_failure: Instant,
}

/// What to do after a failed accept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pause {
    /// How long not to accept (unless a descriptor frees first).
    pub(crate) duration: Duration,
    /// Whether this failure starts an episode: the one to log.
    pub(crate) first: bool,
}

impl AcceptBackoff {
    /// An accept failed at `now`: how long to pause accepting.
    pub(crate) fn failed(&mut self, now: Instant) -> Pause {
        let doublings = self.in_a_row.min(16);
        self.in_a_row = self.in_a_row.saturating_add(1);
        let first = self.episode.is_none();
        let episode = self.episode.get_or_insert(Episode {
            failures: 0,
            last_failure: now,
        });
        episode.failures = episode.failures.saturating_add(1);
        episode.last_failure = now;
        Pause {
            duration: FIRST_PAUSE
                .saturating_mul(1 << doublings)
                .min(LONGEST_PAUSE),
            first,
        }
    }

    /// An accept succeeded at `now`: the number of failures of the episode it ends, if it ends
    /// one (to log).
    pub(crate) fn accepted(&mut self, now: Instant) -> Option<u32> {
        self.in_a_row = 0;
        let over = self
            .episode
            .as_ref()
            .is_some_and(|episode| now.duration_since(episode.last_failure) >= QUIET);
        if !over {
            return None;
        }
        self.episode.take().map(|episode| episode.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_to_a_second_and_only_the_first_failure_is_logged() {
        let mut backoff = AcceptBackoff::default();
        let now = Instant::now();
        let pauses: Vec<Pause> = (0..7).map(|_| backoff.failed(now)).collect();
        let millis: Vec<u128> = pauses.iter().map(|p| p.duration.as_millis()).collect();
        assert_eq!(millis, [100, 200, 400, 800, 1000, 1000, 1000]);
        let firsts: Vec<bool> = pauses.iter().map(|p| p.first).collect();
        assert_eq!(firsts, [true, false, false, false, false, false, false]);
    }

    #[test]
    fn a_success_resets_the_pause_but_ends_the_episode_only_after_a_quiet_spell() {
        let mut backoff = AcceptBackoff::default();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        for _ in 0..3 {
            backoff.failed(at(0));
        }
        assert_eq!(backoff.accepted(at(1)), None, "too soon to call it over");
        // Accepts and failures taking turns, as at the limit: one episode, each pause short.
        for second in 2..20 {
            let pause = backoff.failed(at(second));
            assert_eq!(pause.duration, FIRST_PAUSE);
            assert!(!pause.first);
            assert_eq!(backoff.accepted(at(second)), None);
        }
        assert_eq!(backoff.accepted(at(29)), Some(21));
        assert_eq!(backoff.accepted(at(30)), None, "already ended");
        assert_eq!(
            backoff.failed(at(31)),
            Pause {
                duration: FIRST_PAUSE,
                first: true
            }
        );
    }

    #[test]
    fn endless_failures_neither_overflow_nor_log_again() {
        let mut backoff = AcceptBackoff::default();
        let now = Instant::now();
        backoff.failed(now);
        backoff.in_a_row = u32::MAX;
        if let Some(episode) = backoff.episode.as_mut() {
            episode.failures = u32::MAX;
        }
        for _ in 0..3 {
            assert_eq!(
                backoff.failed(now),
                Pause {
                    duration: LONGEST_PAUSE,
                    first: false
                }
            );
        }
        assert_eq!(backoff.accepted(now + QUIET), Some(u32::MAX));
    }
}
