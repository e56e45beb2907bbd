//! Telemetry: the tracing subscriber (human or JSON, with pingora's `log` output bridged in) and
//! the Prometheus registry with the gateway's own request metrics. Other modules register their
//! metrics in the same registry; `/metrics` renders it.

use crate::request::Api;
use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry,
};
use std::sync::Arc;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Installs the global subscriber once. `RUST_LOG`/`PORTCULLIS_LOG` override the default filter.
/// The gateway (`serve`, `dev`) logs to stdout; operator commands log to stderr, so that their
/// output (JSON reports, tables) stays parseable.
pub fn init_logging(format: LogFormat, to_stderr: bool) {
    let writer = if to_stderr {
        fmt::writer::BoxMakeWriter::new(std::io::stderr)
    } else {
        fmt::writer::BoxMakeWriter::new(std::io::stdout)
    };
    let filter = std::env::var("PORTCULLIS_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info,pingora_core=warn,pingora_proxy=warn".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // pingora logs through the `log` crate; route it into tracing. Ignore "already set" (tests).
    let _ = tracing_log::LogTracer::builder()
        .with_max_level(log_max_level(&filter))
        .init();
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Human => registry
            .with(fmt::layer().with_target(true).with_writer(writer))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .with_writer(writer)
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init(),
    };
}

/// The most verbose `log` level any directive of `filter` enables. `log`'s macros compare a
/// record's level with this before anything else, so pingora's `debug!`/`trace!` calls (~23 a
/// proxied request) cost one atomic load instead of a trip through the bridge and the filter
/// (~1.4 k instructions a request, measured); `PORTCULLIS_LOG=pingora_core=debug` still
/// raises it and gets them.
pub fn log_max_level(filter: &EnvFilter) -> log::LevelFilter {
    use tracing_log::AsLog;
    filter
        .max_level_hint()
        .map_or(log::LevelFilter::Trace, |level| level.as_log())
}

/// The `request` span: what a decision logs carries the request's id. A decision that waits (for
/// the store, an issuer, Umbraco or the body) gets it at `info`, where its warnings are; one made
/// from the caches, which logs at `debug` only, gets it only at `debug`, so that at the default
/// level it costs nothing (a span is ~6.4 k instructions a request there, measured).
pub fn request_span(request_id: &str, method: &http::Method, waits: bool) -> tracing::Span {
    if waits {
        tracing::info_span!("request", request.id = %request_id, http.method = %method)
    } else {
        tracing::debug_span!("request", request.id = %request_id, http.method = %method)
    }
}

/// The gateway's own metrics. Cheap to clone (handles are `Arc`s inside).
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// `api`, `decision`, `reason`, `status`.
    pub requests: IntCounterVec,
    /// `api`: whole request, first byte in to last byte out.
    pub request_duration: HistogramVec,
    /// `api`: classification + authentication + authorization.
    pub decision_duration: HistogramVec,
    /// `api`: upstream response time.
    pub upstream_duration: HistogramVec,
    /// `kind`: connect | timeout | other.
    pub upstream_errors: IntCounterVec,
    /// `result`: ok | rejected.
    pub config_reloads: IntCounterVec,
    pub in_flight: IntGauge,
    pub build_info: IntGaugeVec,
    /// The per-API series of the request path, resolved once: `[management, delivery, other]`.
    per_api: Arc<[ApiMetrics; 3]>,
}

/// One API label's series of the request metrics, resolved at start so that a request
/// looks up no label (no hashing, no lock) for them.
pub struct ApiMetrics {
    pub decision_duration: Histogram,
    pub upstream_duration: Histogram,
    pub request_duration: Histogram,
    /// `portcullis_requests_total{decision="allow",reason="",status="200"}`, the common case.
    pub allowed_ok: IntCounter,
}

impl Metrics {
    /// Creates the registry and registers the request metrics.
    pub fn new() -> Metrics {
        // Every module names its metrics in full (`portcullis_…`), so no registry prefix.
        let registry = Registry::new();
        // 10 µs … ~84 s: decisions are µs, upstream calls ms to s.
        let buckets = exponential_buckets(0.00001, 2.5, 18).unwrap_or_default();
        let requests = IntCounterVec::new(
            Opts::new(
                "portcullis_requests_total",
                "Requests by API, decision, deny reason and status",
            ),
            &["api", "decision", "reason", "status"],
        )
        .expect("static metric");
        let request_duration = per_api_histogram(
            "portcullis_request_duration_seconds",
            "Whole request duration",
            buckets.clone(),
        );
        let decision_duration = per_api_histogram(
            "portcullis_decision_duration_seconds",
            "Time to decide allow or deny",
            buckets.clone(),
        );
        let upstream_duration = per_api_histogram(
            "portcullis_upstream_duration_seconds",
            "Upstream response time",
            buckets,
        );
        let per_api = Arc::new(["management", "delivery", "other"].map(|api| ApiMetrics {
            decision_duration: decision_duration.with_label_values(&[api]),
            upstream_duration: upstream_duration.with_label_values(&[api]),
            request_duration: request_duration.with_label_values(&[api]),
            allowed_ok: requests.with_label_values(&[api, "allow", "", "200"]),
        }));
        let m = Metrics {
            requests,
            request_duration,
            decision_duration,
            upstream_duration,
            upstream_errors: IntCounterVec::new(
                Opts::new(
                    "portcullis_upstream_errors_total",
                    "Upstream failures by kind",
                ),
                &["kind"],
            )
            .expect("static metric"),
            config_reloads: IntCounterVec::new(
                Opts::new(
                    "portcullis_config_reloads_total",
                    "Config reloads by result",
                ),
                &["result"],
            )
            .expect("static metric"),
            in_flight: IntGauge::new("portcullis_requests_in_flight", "Requests being served")
                .expect("static metric"),
            build_info: IntGaugeVec::new(
                Opts::new("portcullis_build_info", "Build information"),
                &["version"],
            )
            .expect("static metric"),
            registry,
            per_api,
        };
        for c in [
            Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.request_duration.clone()),
            Box::new(m.decision_duration.clone()),
            Box::new(m.upstream_duration.clone()),
            Box::new(m.upstream_errors.clone()),
            Box::new(m.config_reloads.clone()),
            Box::new(m.in_flight.clone()),
            Box::new(m.build_info.clone()),
        ] {
            m.registry.register(c).expect("metric names are unique");
        }
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m
    }

    /// The request series of `api` (`None`: refused before classification, labelled `other`).
    pub fn api(&self, api: Option<Api>) -> &ApiMetrics {
        &self.per_api[match api {
            Some(Api::Management) => 0,
            Some(Api::Delivery) => 1,
            None => 2,
        }]
    }

    /// Renders every registered metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

fn per_api_histogram(name: &str, help: &str, buckets: Vec<f64>) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &["api"])
        .expect("static metric")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The level of the span `request_span` makes under a subscriber filtering at `filter`
    /// (`None`: no span).
    fn span_level(filter: &str, waits: bool) -> Option<tracing::Level> {
        let subscriber = tracing_subscriber::registry().with(EnvFilter::new(filter));
        tracing::subscriber::with_default(subscriber, || {
            let span = request_span("req-1", &http::Method::GET, waits);
            // A disabled span keeps its metadata: `is_disabled` says whether it exists.
            (!span.is_disabled())
                .then(|| span.metadata().map(|m| *m.level()))
                .flatten()
        })
    }

    #[test]
    fn a_decision_that_waits_gets_the_request_span_at_info_one_from_the_caches_only_at_debug() {
        assert_eq!(span_level("info", true), Some(tracing::Level::INFO));
        assert_eq!(
            span_level("info", false),
            None,
            "no span at the default level"
        );
        assert_eq!(span_level("debug", false), Some(tracing::Level::DEBUG));
        assert_eq!(span_level("warn", true), None);
    }

    #[test]
    fn pingora_log_records_are_refused_below_the_most_verbose_directive() {
        let level = |f: &str| log_max_level(&EnvFilter::try_new(f).expect("filter"));
        // The default: pingora's debug and trace records never reach the bridge.
        assert_eq!(
            level("info,pingora_core=warn,pingora_proxy=warn"),
            log::LevelFilter::Info
        );
        assert_eq!(level("warn"), log::LevelFilter::Warn);
        assert_eq!(level("off"), log::LevelFilter::Off);
        // An operator asking for pingora's debug output gets it.
        assert_eq!(level("info,pingora_core=debug"), log::LevelFilter::Debug);
        assert_eq!(level("trace"), log::LevelFilter::Trace);
    }
}
