//! The Grafana dashboard and the Prometheus alerts only query metrics the binary exports.

use std::collections::BTreeSet;
use std::path::Path;

/// Every metric name the gateway exports.
/// TODO(lead): replace by the names gathered from the real registry once telemetry wires all
/// modules (`telemetry::registry().gather()`).
const EXPORTED_METRICS: &[&str] = &[
    // telemetry (lead)
    "portcullis_requests_total",
    "portcullis_request_duration_seconds",
    "portcullis_decision_duration_seconds",
    "portcullis_upstream_duration_seconds",
    "portcullis_upstream_errors_total",
    "portcullis_build_info",
    "portcullis_config_reloads_total",
    // authn
    "portcullis_authn_total",
    "portcullis_jwks_refreshes_total",
    "portcullis_jwks_key_set_age_seconds",
    // store
    "portcullis_cache_hits_total",
    "portcullis_cache_misses_total",
    "portcullis_cache_evictions_total",
    "portcullis_cache_entries",
    "portcullis_invalidations_total",
    "portcullis_listener_up",
    "portcullis_store_query_duration_seconds",
    "portcullis_store_errors_total",
    "portcullis_stale_served_total",
    // audit
    "portcullis_audit_queue_depth",
    "portcullis_audit_spool_bytes",
    "portcullis_audit_events_written_total",
    "portcullis_audit_events_dropped_total",
    "portcullis_audit_sink_up",
];

/// Metric names in a PromQL expression: `portcullis_[a-z_]+` at a word start, histogram series
/// suffixes stripped.
fn metric_names(expr: &str, out: &mut BTreeSet<String>) {
    const PREFIX: &str = "portcullis_";
    let bytes = expr.as_bytes();
    let mut from = 0;
    while let Some(pos) = expr[from..].find(PREFIX) {
        let start = from + pos;
        let at_word_start = start == 0 || {
            let c = bytes[start - 1];
            !(c.is_ascii_alphanumeric() || c == b'_')
        };
        let mut end = start + PREFIX.len();
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        if at_word_start {
            let mut name = &expr[start..end];
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    name = base;
                    break;
                }
            }
            out.insert(name.to_owned());
        }
        from = end;
    }
}

/// Every PromQL string in the dashboard: panel `expr`s and template variable queries.
fn dashboard_exprs(v: &serde_json::Value, key: Option<&str>, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                dashboard_exprs(child, Some(k), out);
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                dashboard_exprs(child, key, out);
            }
        }
        serde_json::Value::String(s) if matches!(key, Some("expr" | "query" | "definition")) => {
            out.push(s.clone());
        }
        _ => {}
    }
}

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn used_in_dashboard() -> BTreeSet<String> {
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/portcullis.json")).expect("dashboard json");
    let mut exprs = Vec::new();
    dashboard_exprs(&dash, None, &mut exprs);
    let mut names = BTreeSet::new();
    for e in &exprs {
        metric_names(e, &mut names);
    }
    names
}

fn used_in_alerts() -> BTreeSet<String> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/prometheus/alerts.yml")).expect("alerts yaml");
    let mut names = BTreeSet::new();
    let groups = doc["groups"].as_sequence().expect("groups");
    for g in groups {
        for rule in g["rules"].as_sequence().expect("rules") {
            let expr = rule["expr"].as_str().expect("every rule has an expr");
            assert!(
                rule["alert"].as_str().is_some(),
                "rule without alert name: {expr}"
            );
            metric_names(expr, &mut names);
        }
    }
    names
}

#[test]
fn metric_extraction_strips_histogram_suffixes_and_ignores_longer_words() {
    let mut n = BTreeSet::new();
    metric_names(
        "histogram_quantile(0.9, rate(portcullis_request_duration_seconds_bucket[5m])) + \
         x_portcullis_fake + portcullis_audit_sink_up{sink=\"pg\"}",
        &mut n,
    );
    let want: BTreeSet<String> = [
        "portcullis_request_duration_seconds",
        "portcullis_audit_sink_up",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(n, want);
}

#[test]
fn dashboard_queries_only_exported_metrics() {
    let used = used_in_dashboard();
    assert!(
        used.len() >= 20,
        "the dashboard covers the metric set: {used:?}"
    );
    let unknown: Vec<_> = used
        .iter()
        .filter(|n| !EXPORTED_METRICS.contains(&n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "dashboard uses unexported metrics: {unknown:?}"
    );
}

#[test]
fn alerts_query_only_exported_metrics_and_cover_the_required_conditions() {
    let used = used_in_alerts();
    let unknown: Vec<_> = used
        .iter()
        .filter(|n| !EXPORTED_METRICS.contains(&n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "alerts use unexported metrics: {unknown:?}"
    );
    for needed in [
        "portcullis_requests_total",
        "portcullis_jwks_key_set_age_seconds",
        "portcullis_audit_events_dropped_total",
        "portcullis_listener_up",
        "portcullis_store_errors_total",
    ] {
        assert!(used.contains(needed), "no alert on {needed}");
    }
}

#[test]
fn audit_metrics_are_registered_under_the_listed_names() {
    let reg = prometheus::Registry::new();
    let m = portcullis::audit::AuditMetrics::register(&reg).expect("register");
    // Vec metrics appear in a scrape once a label set exists.
    m.spool_bytes.with_label_values(&["s"]).set(0);
    m.written.with_label_values(&["s"]).inc();
    m.dropped.with_label_values(&["s", "spool_full"]).inc();
    m.sink_up.with_label_values(&["s"]).set(1);
    let scraped: BTreeSet<String> = reg.gather().iter().map(|f| f.name().to_owned()).collect();
    let listed: BTreeSet<String> = portcullis::audit::metrics::METRIC_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scraped, listed);
    for n in &listed {
        assert!(
            EXPORTED_METRICS.contains(&n.as_str()),
            "{n} missing from EXPORTED_METRICS"
        );
    }
}
