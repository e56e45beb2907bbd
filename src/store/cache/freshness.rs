//! How current the cache is: push invalidation, the listener's confirmations, the TTL in force,
//! whether an entry may still be served, and the last reload failure (readiness).

use super::PolicyCache;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What readiness and the staleness metric report about the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Push invalidation is up and confirmed (or the store is a file).
    Current,
    /// Not confirmed for `since`; cached grants are still honoured (up to `max_staleness`).
    Degraded { since: Option<Duration> },
    /// Not confirmed for longer than `max_staleness`: entries older than that are not honoured.
    Stale { since: Option<Duration> },
}

impl PolicyCache {
    /// True while push invalidation is connected and its heartbeat comes back.
    pub fn listener_up(&self) -> bool {
        self.inner.listener_up.load(Ordering::Acquire)
    }

    /// Marks push invalidation up or down (the listener calls it).
    pub fn set_push_invalidation(&self, up: bool) {
        self.inner.listener_up.store(up, Ordering::Release);
        self.inner.metrics.listener_up.set(i64::from(up));
    }

    /// For a store whose every change evicts the whole cache (the file store): push
    /// invalidation counts as up and the cache as always current.
    pub fn set_always_current(&self) {
        self.inner.always_current.store(true, Ordering::Release);
        self.set_push_invalidation(true);
    }

    /// Records that every change committed before `at` has been applied (the listener's
    /// heartbeat, sent at `at`, came back behind them).
    pub fn confirm_current(&self, at: Instant) {
        let ms = u64::try_from(at.saturating_duration_since(self.inner.epoch).as_millis())
            .unwrap_or(u64::MAX - 1);
        self.inner.confirmed_ms.fetch_max(ms + 1, Ordering::AcqRel);
    }

    /// When the cache was last confirmed current (`None`: never).
    pub(super) fn confirmed_at(&self) -> Option<Instant> {
        match self.inner.confirmed_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(self.inner.epoch + Duration::from_millis(ms - 1)),
        }
    }

    /// Whether the cache is confirmed current, degraded, or past `max_staleness`; also sets
    /// `portcullis_policy_staleness_seconds`.
    pub fn freshness(&self) -> Freshness {
        let m = &self.inner.metrics;
        if self.inner.always_current.load(Ordering::Acquire) {
            m.staleness.set(0.0);
            return Freshness::Current;
        }
        let since = self.confirmed_at().map(|c| c.elapsed());
        m.staleness
            .set(since.map_or(f64::INFINITY, |d| d.as_secs_f64()));
        match since {
            _ if self.listener_up() => Freshness::Current,
            Some(d) if d <= self.inner.max_staleness => Freshness::Degraded { since },
            _ => Freshness::Stale { since },
        }
    }

    /// `max_staleness`, for readiness details.
    pub fn max_staleness(&self) -> Duration {
        self.inner.max_staleness
    }

    pub(super) fn ttl(&self) -> Duration {
        if self.listener_up() {
            self.inner.cfg.ttl
        } else {
            self.inner.cfg.listener_fallback_ttl
        }
    }

    /// Whether an entry loaded at `loaded_at` may still be served: it is known current as of
    /// its load or the last confirmation, whichever is later, and that is within
    /// `max_staleness` (always, for the file store).
    pub(super) fn honoured(&self, loaded_at: Instant, now: Instant) -> bool {
        if self.inner.always_current.load(Ordering::Acquire) {
            return true;
        }
        let current_as_of = self.confirmed_at().map_or(loaded_at, |c| c.max(loaded_at));
        now.saturating_duration_since(current_as_of) <= self.inner.max_staleness
    }

    /// Records the outcome of a policy source reload (`None`: it worked), for readiness.
    pub fn set_reload_error(&self, error: Option<String>) {
        *self
            .inner
            .reload_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = error;
    }

    /// The last reload failure still in force (the previous policy is kept), if any.
    pub fn reload_error(&self) -> Option<String> {
        self.inner
            .reload_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
