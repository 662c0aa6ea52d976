//! Hybrid logical clocks (Kulkarni et al., 2014): physical time where it can, logical where it
//! must — bounded, as CockroachDB bounds them, by a maximum offset.
//!
//! An unbounded HLC trusts every peer's wall clock: one stamp at `u64::MAX` moves every clock that
//! observes it to the end of time, and the value it carries wins every later comparison — a
//! register frozen for good. So a remote time more than [`HybridClock::max_offset_ms`] ahead of
//! the local wall clock is refused ([`ClockError::TooFarAhead`]) and changes nothing; within the
//! bound a clock follows a fast peer, as an HLC must. With every observed time bounded, a clock is
//! never more than the offset ahead of the fastest honest wall clock, so its counter's overflow
//! (borrowing the next millisecond) and its wall time's growth stay bounded too.
//!
//! Why not `uhlc` (Zenoh's HLC, which has the same bound): its times are NTP64 values with the
//! counter folded into the low bits of the fraction and a 128-bit id beside them, while rrt's wire
//! carries `timestamp` (Unix milliseconds) and `counter` (u32) as two fields that a client in
//! another language can read — converting both ways would be lossy, and the clock itself is these
//! fifty lines.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How far ahead of the local wall clock a remote time may be, by default: one minute, far beyond
/// what NTP leaves between honest machines and far short of "forever".
pub const DEFAULT_MAX_OFFSET_MS: u64 = 60_000;

/// A hybrid logical time: wall-clock milliseconds since the Unix epoch and a counter that orders
/// events within one millisecond (or while the wall clock lags a time already observed).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp {
    /// Milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// Events at the same `wall_ms`.
    pub counter: u32,
}

/// A total order over every write in the mesh: the time, then the writer's id to break ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// When.
    pub time: Timestamp,
    /// Who: the instance that wrote.
    pub origin: Uuid,
}

/// A remote time this clock refuses to observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The remote time is further ahead of the local wall clock than the maximum offset. The
    /// clock did not move.
    #[error(
        "a time {ahead_ms} ms ahead of this clock's wall time, beyond the maximum offset of {max_offset_ms} ms"
    )]
    TooFarAhead {
        /// How far ahead of the wall clock the remote time was.
        ahead_ms: u64,
        /// The bound it broke.
        max_offset_ms: u64,
    },
}

/// One instance's hybrid logical clock.
///
/// ```
/// use rrt_sync::{ClockError, HybridClock, Timestamp};
///
/// let mut clock = HybridClock::new(60_000);
/// let a = clock.tick(1_000);
/// let b = clock.tick(1_000); // same millisecond: the counter orders them
/// assert!(b > a);
/// // A peer 10 s ahead: our next stamp still comes after what we saw.
/// clock.observe(Timestamp { wall_ms: 11_000, counter: 4 }, 1_001)?;
/// assert!(clock.tick(1_002) > Timestamp { wall_ms: 11_000, counter: 4 });
/// // A peer at the end of time is refused, and the clock stays where it was.
/// let before = clock.last();
/// assert!(clock.observe(Timestamp { wall_ms: u64::MAX, counter: u32::MAX }, 1_003).is_err());
/// assert_eq!(clock.last(), before);
/// # Ok::<(), ClockError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HybridClock {
    last: Timestamp,
    max_offset_ms: u64,
}

impl Default for HybridClock {
    /// A clock bounded by [`DEFAULT_MAX_OFFSET_MS`].
    fn default() -> Self {
        Self::new(DEFAULT_MAX_OFFSET_MS)
    }
}

impl HybridClock {
    /// A clock that refuses remote times more than `max_offset_ms` ahead of its wall clock.
    pub fn new(max_offset_ms: u64) -> Self {
        Self {
            last: Timestamp::default(),
            max_offset_ms,
        }
    }

    /// The latest time this clock has issued or observed.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// How far ahead of the wall clock a remote time may be.
    pub fn max_offset_ms(&self) -> u64 {
        self.max_offset_ms
    }

    /// Whether `remote` is within the bound at wall-clock `now_ms`.
    pub fn check(&self, remote: Timestamp, now_ms: u64) -> Result<(), ClockError> {
        let ahead_ms = remote.wall_ms.saturating_sub(now_ms);
        if ahead_ms > self.max_offset_ms {
            return Err(ClockError::TooFarAhead {
                ahead_ms,
                max_offset_ms: self.max_offset_ms,
            });
        }
        Ok(())
    }

    /// A new time for a local event, given the wall clock `now_ms`; greater than every time
    /// issued or observed before.
    pub fn tick(&mut self, now_ms: u64) -> Timestamp {
        self.last = if now_ms > self.last.wall_ms {
            Timestamp {
                wall_ms: now_ms,
                counter: 0,
            }
        } else {
            self.after_last()
        };
        self.last
    }

    /// Takes a remote time into account, so later local times order after it — unless it is
    /// beyond the maximum offset, which is refused and leaves the clock as it was.
    pub fn observe(&mut self, remote: Timestamp, now_ms: u64) -> Result<(), ClockError> {
        self.check(remote, now_ms)?;
        let wall_ms = self.last.wall_ms.max(remote.wall_ms).max(now_ms);
        let counter = match (wall_ms == self.last.wall_ms, wall_ms == remote.wall_ms) {
            (true, true) => self.last.counter.max(remote.counter),
            (true, false) => self.last.counter,
            (false, true) => remote.counter,
            (false, false) => 0,
        };
        self.last = self.last.max(Timestamp { wall_ms, counter });
        Ok(())
    }

    fn after_last(&self) -> Timestamp {
        match self.last.counter.checked_add(1) {
            Some(counter) => Timestamp {
                wall_ms: self.last.wall_ms,
                counter,
            },
            // 4 billion events in one millisecond: borrow the next millisecond.
            None => Timestamp {
                wall_ms: self.last.wall_ms.saturating_add(1),
                counter: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MAX_OFFSET: u64 = 60_000;

    /// Remote times as a hostile peer picks them: honest ones near the wall clock, and the edges
    /// of both fields.
    fn remote_time() -> impl Strategy<Value = Timestamp> {
        let wall = prop_oneof![
            0u64..200_000,
            Just(u64::MAX),
            Just(u64::MAX - 1),
            any::<u64>(),
        ];
        let counter = prop_oneof![0u32..5, Just(u32::MAX), Just(u32::MAX - 1), any::<u32>()];
        (wall, counter).prop_map(|(wall_ms, counter)| Timestamp { wall_ms, counter })
    }

    proptest! {
        #[test]
        fn ticks_strictly_increase_and_stay_within_the_offset_whatever_peers_send(
            steps in proptest::collection::vec((any::<bool>(), 0u64..100_000, remote_time()), 1..200),
        ) {
            let mut clock = HybridClock::new(MAX_OFFSET);
            let mut previous = Timestamp::default();
            let mut latest_now = 0;
            for (step, (observe, now, remote)) in steps.into_iter().enumerate() {
                latest_now = latest_now.max(now);
                if observe {
                    let before = clock.last();
                    match clock.observe(remote, now) {
                        Ok(()) => {
                            prop_assert!(remote.wall_ms <= now + MAX_OFFSET);
                            prop_assert!(clock.last() >= remote);
                        }
                        Err(ClockError::TooFarAhead { ahead_ms, .. }) => {
                            prop_assert!(ahead_ms > MAX_OFFSET);
                            prop_assert_eq!(clock.last(), before, "a refused time moves nothing");
                        }
                    }
                    prop_assert!(clock.last() >= previous);
                    previous = clock.last();
                } else {
                    let next = clock.tick(now);
                    prop_assert!(next > previous);
                    prop_assert!(next.wall_ms >= now);
                    previous = next;
                }
                // Only the offset, and one borrowed millisecond per step at most, can put the
                // clock ahead of the wall clock.
                prop_assert!(clock.last().wall_ms <= latest_now + MAX_OFFSET + step as u64 + 1);
            }
        }
    }

    #[test]
    fn the_wall_clock_wins_when_it_moves_on() {
        let mut clock = HybridClock::default();
        clock.tick(5);
        clock.tick(5);
        assert_eq!(
            clock.tick(9),
            Timestamp {
                wall_ms: 9,
                counter: 0
            }
        );
    }

    #[test]
    fn a_saturated_counter_borrows_the_next_millisecond() {
        let mut clock = HybridClock::default();
        let saturated = Timestamp {
            wall_ms: 7,
            counter: u32::MAX,
        };
        clock.observe(saturated, 0).expect("within the offset");
        assert_eq!(
            clock.tick(0),
            Timestamp {
                wall_ms: 8,
                counter: 0
            }
        );
    }

    #[test]
    fn the_end_of_time_is_refused_and_the_clock_keeps_running() {
        let mut clock = HybridClock::new(MAX_OFFSET);
        let before = clock.tick(1_000);
        for counter in [0, u32::MAX] {
            let poison = Timestamp {
                wall_ms: u64::MAX,
                counter,
            };
            assert_eq!(
                clock.observe(poison, 1_000),
                Err(ClockError::TooFarAhead {
                    ahead_ms: u64::MAX - 1_000,
                    max_offset_ms: MAX_OFFSET
                })
            );
        }
        assert_eq!(clock.last(), before);
        assert_eq!(
            clock.tick(2_000),
            Timestamp {
                wall_ms: 2_000,
                counter: 0
            }
        );
    }

    #[test]
    fn a_time_exactly_at_the_offset_is_followed() {
        let mut clock = HybridClock::new(MAX_OFFSET);
        let edge = Timestamp {
            wall_ms: 1_000 + MAX_OFFSET,
            counter: 3,
        };
        clock.observe(edge, 1_000).expect("at the bound");
        assert!(clock.tick(1_001) > edge);
        let beyond = Timestamp {
            wall_ms: 1_001 + MAX_OFFSET,
            counter: 0,
        };
        assert!(clock.observe(beyond, 1_000).is_err());
    }
}
