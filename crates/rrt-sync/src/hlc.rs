//! Hybrid logical clocks (Kulkarni et al., 2014): physical time where it can, logical where it
//! must.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// One instance's hybrid logical clock.
///
/// ```
/// use rrt_sync::{HybridClock, Timestamp};
///
/// let mut clock = HybridClock::default();
/// let a = clock.tick(1_000);
/// let b = clock.tick(1_000); // same millisecond: the counter orders them
/// assert!(b > a);
/// // A peer 10 s ahead: our next stamp still comes after what we saw.
/// clock.observe(Timestamp { wall_ms: 11_000, counter: 4 }, 1_001);
/// assert!(clock.tick(1_002) > Timestamp { wall_ms: 11_000, counter: 4 });
/// ```
#[derive(Debug, Clone, Default)]
pub struct HybridClock {
    last: Timestamp,
}

impl HybridClock {
    /// The latest time this clock has issued or observed.
    pub fn last(&self) -> Timestamp {
        self.last
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

    /// Takes a remote time into account, so later local times order after it.
    pub fn observe(&mut self, remote: Timestamp, now_ms: u64) {
        let wall_ms = self.last.wall_ms.max(remote.wall_ms).max(now_ms);
        let counter = match (wall_ms == self.last.wall_ms, wall_ms == remote.wall_ms) {
            (true, true) => self.last.counter.max(remote.counter),
            (true, false) => self.last.counter,
            (false, true) => remote.counter,
            (false, false) => 0,
        };
        self.last = self.last.max(Timestamp { wall_ms, counter });
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

    proptest! {
        #[test]
        fn ticks_strictly_increase_whatever_the_wall_clock_does(
            steps in proptest::collection::vec((any::<bool>(), 0u64..10_000, 0u64..20_000, 0u32..5), 1..200),
        ) {
            let mut clock = HybridClock::default();
            let mut previous = Timestamp::default();
            for (observe, now, remote_wall, remote_counter) in steps {
                if observe {
                    let remote = Timestamp { wall_ms: remote_wall, counter: remote_counter };
                    clock.observe(remote, now);
                    prop_assert!(clock.last() >= remote);
                    prop_assert!(clock.last() >= previous);
                    previous = clock.last();
                } else {
                    let next = clock.tick(now);
                    prop_assert!(next > previous);
                    prop_assert!(next.wall_ms >= now);
                    previous = next;
                }
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
        clock.observe(
            Timestamp {
                wall_ms: 7,
                counter: u32::MAX,
            },
            0,
        );
        assert_eq!(
            clock.tick(0),
            Timestamp {
                wall_ms: 8,
                counter: 0
            }
        );
    }
}
