//! How often and how fast a failing worker is re-created.

use std::time::Duration;

/// Exponential backoff for worker restarts, with a budget that refills after a healthy run.
///
/// Attempt `n` (1-based) waits `initial_delay × multiplierⁿ⁻¹`, capped at `max_delay`; after
/// `max_attempts` consecutive attempts the reactor gives up
/// ([`ReactorError::RestartBudgetExhausted`](crate::ReactorError::RestartBudgetExhausted)). A
/// worker that ran for at least `healthy_after` before failing starts again from attempt 1.
///
/// ```
/// use std::time::Duration;
/// use rrt_reactor::RestartPolicy;
///
/// let policy = RestartPolicy::default();
/// assert_eq!(policy.delay(1), Some(Duration::from_millis(100)));
/// assert_eq!(policy.delay(2), Some(Duration::from_millis(200)));
/// assert_eq!(policy.delay(9), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    max_attempts: u32,
    initial_delay: Duration,
    multiplier: u32,
    max_delay: Duration,
    healthy_after: Duration,
}

impl Default for RestartPolicy {
    /// 100 ms, ×2, capped at 5 s, at most 8 consecutive attempts, healthy after 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_delay: Duration::from_millis(100),
            multiplier: 2,
            max_delay: Duration::from_secs(5),
            healthy_after: Duration::from_secs(30),
        }
    }
}

impl RestartPolicy {
    /// A policy that never restarts: the first failure stops the reactor.
    pub fn never() -> Self {
        Self::default().max_attempts(0)
    }

    /// Consecutive restart attempts allowed before giving up.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The delay before the first attempt; `Duration::ZERO` restarts at once.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The factor each further attempt multiplies the delay by.
    pub fn multiplier(mut self, multiplier: u32) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The longest delay between attempts.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How long a worker must run for its failure not to count against the budget.
    pub fn healthy_after(mut self, after: Duration) -> Self {
        self.healthy_after = after;
        self
    }

    /// How long to wait before restart attempt `attempt` (1-based), or `None` when the budget is
    /// spent.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt > self.max_attempts {
            return None;
        }
        let factor = self.multiplier.saturating_pow(attempt - 1);
        Some(
            self.initial_delay
                .saturating_mul(factor)
                .min(self.max_delay),
        )
    }

    /// Whether a worker that ran for `ran` was healthy, refilling the budget.
    pub fn was_healthy(&self, ran: Duration) -> bool {
        ran >= self.healthy_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_until_the_cap_then_runs_out() {
        let policy = RestartPolicy::default().max_attempts(8);
        let delays: Vec<_> = (1..=9)
            .map(|n| policy.delay(n).map(|d| d.as_millis()))
            .collect();
        let expected = [100, 200, 400, 800, 1600, 3200, 5000, 5000].map(Some);
        assert_eq!(delays[..8], expected);
        assert_eq!(delays[8], None);
    }

    #[test]
    fn huge_attempt_numbers_saturate_instead_of_overflowing() {
        let policy = RestartPolicy::default().max_attempts(u32::MAX);
        assert_eq!(policy.delay(u32::MAX), Some(Duration::from_secs(5)));
    }

    #[test]
    fn never_gives_no_attempt() {
        assert_eq!(RestartPolicy::never().delay(1), None);
    }
}
