//! Metrics of the gateway's own calls to Umbraco. Labels are bounded: `endpoint` is a fixed id
//! (`token`, `user_current`, `tree_ancestors`, …) and `result` one of `ok`, `rejected`
//! (Umbraco answered 4xx) or `error` (unreachable, 5xx, unreadable answer).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::UmbracoError;

/// Handles to the Umbraco client metrics. Cheap to clone.
#[derive(Clone)]
pub struct UmbracoMetrics {
    /// `portcullis_umbraco_calls_total{endpoint,result}`.
    pub calls: IntCounterVec,
    /// `portcullis_umbraco_call_duration_seconds{endpoint}`.
    pub duration: HistogramVec,
}

impl UmbracoMetrics {
    /// Creates the metrics and registers them in `registry` (fails if already registered).
    pub fn register(registry: &Registry) -> Result<Self, UmbracoError> {
        let m = Self::unregistered()?;
        registry
            .register(Box::new(m.calls.clone()))
            .map_err(UmbracoError::Metrics)?;
        registry
            .register(Box::new(m.duration.clone()))
            .map_err(UmbracoError::Metrics)?;
        Ok(m)
    }

    /// The metrics without a registry (one-shot commands and tests).
    pub fn unregistered() -> Result<Self, UmbracoError> {
        let calls = IntCounterVec::new(
            Opts::new(
                "portcullis_umbraco_calls_total",
                "Calls the gateway made to Umbraco's Management API, by endpoint and result",
            ),
            &["endpoint", "result"],
        )
        .map_err(UmbracoError::Metrics)?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "portcullis_umbraco_call_duration_seconds",
                "Duration of the gateway's calls to Umbraco, by endpoint",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["endpoint"],
        )
        .map_err(UmbracoError::Metrics)?;
        Ok(UmbracoMetrics { calls, duration })
    }

    /// Counts one call to `endpoint` that took `elapsed`, by its outcome.
    pub fn observe<T>(
        &self,
        endpoint: &str,
        elapsed: std::time::Duration,
        outcome: &Result<T, UmbracoError>,
    ) {
        let result = match outcome {
            Ok(_) => "ok",
            Err(UmbracoError::Rejected { .. }) => "rejected",
            Err(UmbracoError::Status { status, .. }) if (400..500).contains(status) => "rejected",
            Err(_) => "error",
        };
        self.calls.with_label_values(&[endpoint, result]).inc();
        self.duration
            .with_label_values(&[endpoint])
            .observe(elapsed.as_secs_f64());
    }
}
