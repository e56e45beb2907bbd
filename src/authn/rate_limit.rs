//! Per-key request rate limits: an API key's `rate_limit_rps` admits that many requests per
//! second on average, with a burst of one second's worth (GCRA, the `governor` crate).
//!
//! Limiters live in a bounded moka cache keyed by key id and dropped after two idle seconds: a
//! limiter idle for one second has refilled its burst and is indistinguishable from a new one.
//! A refused request waits at most `1 / rps` ≤ 1 s for the next cell, so `Retry-After: 1` is
//! exact. The state is per gateway process (each replica admits the full rate) and starts fresh
//! when the authentication config is reloaded.

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use moka::sync::Cache;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Most keys tracked at once; beyond it the least recently used limiters are dropped.
const MAX_TRACKED_KEYS: u64 = 100_000;

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The rate limiters of every key in use, on clock `C` (the monotonic clock outside tests).
pub struct RateLimits<C: Clock = DefaultClock> {
    limiters: Cache<String, Arc<(u32, Limiter<C>)>>,
    clock: C,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::with_clock(DefaultClock::default())
    }
}

impl<C> RateLimits<C>
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    /// Limits measured on `clock`.
    pub fn with_clock(clock: C) -> Self {
        RateLimits {
            limiters: Cache::builder()
                .max_capacity(MAX_TRACKED_KEYS)
                .time_to_idle(Duration::from_secs(2))
                .build(),
            clock,
        }
    }

    /// Admits one request of key `key_id` limited to `rps` per second, or says how long until
    /// the next one would be admitted. A changed `rps` starts a fresh limiter.
    pub fn admit(&self, key_id: &str, rps: NonZeroU32) -> Result<(), Duration> {
        let fresh = || {
            let quota = Quota::per_second(rps);
            Arc::new((
                rps.get(),
                RateLimiter::direct_with_clock(quota, self.clock.clone()),
            ))
        };
        let mut limiter = self.limiters.get_with_by_ref(key_id, fresh);
        if limiter.0 != rps.get() {
            limiter = fresh();
            self.limiters.insert(key_id.to_owned(), limiter.clone());
        }
        limiter
            .1
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn rps(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
    }

    #[test]
    fn a_key_gets_its_burst_then_one_request_per_cell() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock(clock.clone());
        for i in 0..5 {
            assert_eq!(limits.admit("k1", rps(5)), Ok(()), "request {i}");
        }
        let wait = limits
            .admit("k1", rps(5))
            .expect_err("the sixth is refused");
        assert_eq!(wait, Duration::from_millis(200));
        // Other keys are not affected.
        assert_eq!(limits.admit("k2", rps(5)), Ok(()));
        clock.advance(Duration::from_millis(200));
        assert_eq!(limits.admit("k1", rps(5)), Ok(()));
        assert!(limits.admit("k1", rps(5)).is_err());
    }

    #[test]
    fn a_changed_rate_starts_a_fresh_limiter() {
        let limits = RateLimits::with_clock(FakeRelativeClock::default());
        assert_eq!(limits.admit("k", rps(1)), Ok(()));
        assert!(limits.admit("k", rps(1)).is_err());
        assert_eq!(limits.admit("k", rps(2)), Ok(()));
    }
}
