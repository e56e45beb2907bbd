//! Prometheus metrics of the store and its cache, registered once in the registry the app
//! passes in. Cheap to clone (the handles are shared).

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Handles to every store metric.
#[derive(Clone)]
pub struct StoreMetrics {
    pub cache_hits: IntCounterVec,
    pub cache_misses: IntCounterVec,
    pub cache_evictions: IntCounterVec,
    pub cache_entries: IntGaugeVec,
    pub invalidations: IntCounterVec,
    pub listener_up: IntGauge,
    pub query_seconds: HistogramVec,
    pub store_errors: IntCounterVec,
    pub stale_served: IntCounter,
    pub cache_bytes: IntGaugeVec,
    pub staleness: Gauge,
    pub lookups_limited: IntCounter,
    pub policy_reload_failures: IntCounter,
}

impl StoreMetrics {
    /// Creates the metrics and registers them in `registry`; fails when a name is taken.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered()?;
        registry.register(Box::new(m.cache_hits.clone()))?;
        registry.register(Box::new(m.cache_misses.clone()))?;
        registry.register(Box::new(m.cache_evictions.clone()))?;
        registry.register(Box::new(m.cache_entries.clone()))?;
        registry.register(Box::new(m.invalidations.clone()))?;
        registry.register(Box::new(m.listener_up.clone()))?;
        registry.register(Box::new(m.query_seconds.clone()))?;
        registry.register(Box::new(m.store_errors.clone()))?;
        registry.register(Box::new(m.stale_served.clone()))?;
        registry.register(Box::new(m.cache_bytes.clone()))?;
        registry.register(Box::new(m.staleness.clone()))?;
        registry.register(Box::new(m.lookups_limited.clone()))?;
        registry.register(Box::new(m.policy_reload_failures.clone()))?;
        Ok(m)
    }

    /// Metrics not attached to any registry (tests, benches, CLI commands).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        let cache = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["cache"]);
        Ok(StoreMetrics {
            cache_hits: cache("portcullis_cache_hits_total", "Policy cache hits.")?,
            cache_misses: cache(
                "portcullis_cache_misses_total",
                "Policy cache misses (loads).",
            )?,
            cache_evictions: cache(
                "portcullis_cache_evictions_total",
                "Policy cache entries removed (invalidation, capacity, expiry).",
            )?,
            cache_entries: IntGaugeVec::new(
                Opts::new(
                    "portcullis_cache_entries",
                    "Policy cache entries (approximate).",
                ),
                &["cache"],
            )?,
            invalidations: IntCounterVec::new(
                Opts::new(
                    "portcullis_invalidations_total",
                    "Invalidation messages received, by table.",
                ),
                &["table"],
            )?,
            listener_up: IntGauge::new(
                "portcullis_listener_up",
                "1 while the policy invalidation listener is connected.",
            )?,
            query_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "portcullis_store_query_seconds",
                    "Policy store query latency.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
                ]),
                &["query"],
            )?,
            store_errors: IntCounterVec::new(
                Opts::new(
                    "portcullis_store_errors_total",
                    "Failed policy store queries.",
                ),
                &["query"],
            )?,
            stale_served: IntCounter::new(
                "portcullis_stale_served_total",
                "Expired cache entries served while their background refresh runs or fails.",
            )?,
            cache_bytes: IntGaugeVec::new(
                Opts::new(
                    "portcullis_cache_bytes",
                    "Approximate bytes held per policy cache (bounded by its share of max_memory).",
                ),
                &["cache"],
            )?,
            staleness: Gauge::new(
                "portcullis_policy_staleness_seconds",
                "Seconds since the policy cache was last confirmed current (0 for a file store).",
            )?,
            lookups_limited: IntCounter::new(
                "portcullis_api_key_lookups_limited_total",
                "Store lookups of uncached API key ids refused by the rate limit.",
            )?,
            policy_reload_failures: IntCounter::new(
                "portcullis_policy_reload_failures_total",
                "Policy source reloads that failed (the previous policy stays in force).",
            )?,
        })
    }

    /// A timer for one query; observe it with `done`.
    pub(crate) fn time(&self, query: &'static str) -> Histogram {
        self.query_seconds.with_label_values(&[query])
    }
}
