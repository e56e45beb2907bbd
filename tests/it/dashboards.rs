//! The Grafana dashboard and the Prometheus alerts only query metrics the binary exports.

use std::collections::BTreeSet;
use std::path::Path;

/// Every metric family a real gateway exports, from `# TYPE` lines of its `/metrics` after it
/// served allowed and denied requests (Management with a token, Delivery with a key and
/// anonymously), plus families that only get samples on rarer events: a label-vec family with no
/// label set yet is absent from a scrape, so those are taken from each module's own registration
/// in a scratch registry, with one label set touched.
async fn exported_metrics() -> BTreeSet<String> {
    let mut names = scraped_metrics().await;
    names.extend(
        portcullis::audit::metrics::METRIC_NAMES
            .iter()
            .map(|s| s.to_string()),
    );
    names.extend(rare_families());
    names
}

/// The `# TYPE` names of a real gateway's `/metrics` after a little traffic.
async fn scraped_metrics() -> BTreeSet<String> {
    use crate::harness::*;
    use crate::pipeline::{node, token, AUTHN, TOP};
    let up = Upstream::start().await;
    let gw = spawn_gateway(TOP, up.addr, AUTHN).await;
    let c = client();
    let doc = format!("/umbraco/management/api/v1/document/{}", node(1063));
    let item = format!("/umbraco/delivery/api/v2/content/item/{}", node(1063));
    let about = format!("/umbraco/delivery/api/v2/content/item/{}", node(1080));
    let key = portcullis::dev::DEV_API_KEY;
    let sent = [
        c.get(gw.url(&doc)).bearer_auth(token("dev-editor")),
        c.get(gw.url(&doc)).bearer_auth(token("dev-translator")),
        c.get(gw.url(&doc)),
        c.get(gw.url(&item)).header("Api-Key", key),
        c.get(gw.url(&about)).header("Api-Key", key),
        c.get(gw.url(&item)),
    ];
    for req in sent {
        req.send().await.expect("send");
    }
    let text = c
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body");
    let names: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    assert!(
        names.contains("portcullis_requests_total") && names.contains("portcullis_authn_total"),
        "the scrape shows the traffic: {names:?}"
    );
    for n in &names {
        assert!(
            n.starts_with("portcullis_") && !n.starts_with("portcullis_portcullis_"),
            "badly prefixed family {n}"
        );
    }
    names
}

/// Families that appear only after events the scrape above cannot cause cheaply (store errors,
/// Postgres queries, JWKS refreshes, invalidations, config reloads): registered by each module
/// as the gateway does, one label set touched, gathered.
fn rare_families() -> BTreeSet<String> {
    let reg = prometheus::Registry::new();
    let store = portcullis::store::StoreMetrics::register(&reg).expect("store metrics");
    store.store_errors.with_label_values(&["database"]).inc();
    store
        .query_seconds
        .with_label_values(&["user_access"])
        .observe(0.001);
    store.invalidations.with_label_values(&["users"]).inc();
    let authn = portcullis::authn::AuthnMetrics::register(&reg).expect("authn metrics");
    authn
        .jwks_refresh_total
        .with_label_values(&["idp", "ok"])
        .inc();
    authn.jwks_age_seconds.with_label_values(&["idp"]).set(1.0);
    let sync = portcullis::mirror::schedule::SyncMetrics::register(&reg).expect("sync metrics");
    sync.last_success.set(1.0);
    sync.duration.with_label_values(&["ok"]).observe(1.0);
    sync.changed.with_label_values(&["documents"]).inc();
    sync.failures.with_label_values(&["umbraco"]).inc();
    sync.rounds.with_label_values(&["ok"]).inc();
    let telemetry = portcullis::telemetry::Metrics::new();
    telemetry
        .config_reloads
        .with_label_values(&["rejected"])
        .inc();
    telemetry
        .upstream_errors
        .with_label_values(&["timeout"])
        .inc();
    reg.gather()
        .iter()
        .chain(telemetry.registry.gather().iter())
        .map(|f| f.name().to_owned())
        .collect()
}

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

#[tokio::test]
async fn dashboard_queries_only_metrics_a_real_gateway_exports() {
    let exported = exported_metrics().await;
    let used = used_in_dashboard();
    assert!(
        used.len() >= 20,
        "the dashboard covers the metric set: {used:?}"
    );
    let unknown: Vec<_> = used
        .iter()
        .filter(|n| !exported.contains(n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "dashboard uses unexported metrics: {unknown:?}"
    );
}

#[tokio::test]
async fn alerts_query_only_metrics_a_real_gateway_exports_and_cover_the_required_conditions() {
    let exported = exported_metrics().await;
    let used = used_in_alerts();
    let unknown: Vec<_> = used
        .iter()
        .filter(|n| !exported.contains(n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "alerts use unexported metrics: {unknown:?}"
    );
    for needed in [
        "portcullis_requests_total",
        "portcullis_jwks_age_seconds",
        "portcullis_audit_events_dropped_total",
        "portcullis_listener_up",
        "portcullis_store_errors_total",
        "portcullis_policy_staleness_seconds",
        "portcullis_policy_reload_failures_total",
    ] {
        assert!(used.contains(needed), "no alert on {needed}");
    }
}

#[tokio::test]
async fn audit_metrics_are_registered_under_the_listed_names_and_a_gateway_exports_them() {
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
    let scraped = scraped_metrics().await;
    // `dropped{sink,cause}` has no label set until an event is dropped, so it is not scraped.
    for n in listed
        .iter()
        .filter(|n| *n != "portcullis_audit_events_dropped_total")
    {
        assert!(scraped.contains(n), "{n} missing from a gateway's /metrics");
    }
}
