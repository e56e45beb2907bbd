//! The gate end to end, as `request_filter` calls it on a warm cache: classification of the raw
//! target, RS256 bearer token (verified-token cache hit, and the signature cold), the user and the
//! ancestry of a document 12 levels deep from the file store's cache, the verb check — for a
//! Management `GET document/{id}` (the load benchmark's request, `benches/load/run`). Then the
//! rest of the per-request work the proxy does on its worker thread after the decision: the
//! audit metadata, the event and `Auditor::record` into a JSONL file sink.
#![allow(clippy::unwrap_used)]

#[path = "support/warm_gate.rs"]
mod warm_gate;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portcullis::audit::{AuditEvent, Auditor, RequestMeta};
use portcullis::authz::Decision;
use warm_gate::{config, decided, gate, DOC};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (gate, services, token) = gate(&config, dir.path());
    let parts = http::Request::get(DOC)
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "wrk")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let raw = DOC.as_bytes();
    let verdict = decided(rt.block_on(gate.decide(&parts, raw)));
    assert!(
        matches!(verdict.decision, Decision::Allow(_)),
        "{:?}",
        verdict.decision
    );

    c.bench_function("gate_document_get_depth12_warm", |b| {
        b.iter(|| decided(rt.block_on(gate.decide(&parts, raw))))
    });
    // What `request_filter` runs on a warm cache: no runtime, no future.
    c.bench_function("gate_document_get_depth12_decide_now", |b| {
        b.iter(|| decided(gate.decide_now(&parts, raw)))
    });
    c.bench_function("gate_document_get_depth12_token_cold", |b| {
        b.iter_batched(
            || services.authn.clear_token_cache(),
            |()| decided(rt.block_on(gate.decide(&parts, raw))),
            BatchSize::SmallInput,
        )
    });

    // The writers run on their own runtime, as in the gateway (`app::run`).
    let bg = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registry = prometheus::Registry::new();
    let auditor = bg
        .block_on(async { Auditor::start(&config.file.audit, &registry) })
        .unwrap();
    let peer = Some("127.0.0.1".parse().unwrap());
    c.bench_function("gate_document_get_then_audit", |b| {
        b.iter(|| {
            let v = decided(rt.block_on(gate.decide(&parts, raw)));
            let meta = RequestMeta::new(&parts.method, DOC, peer, &parts.headers);
            let event = AuditEvent::new(
                "req",
                &meta,
                v.target.as_ref(),
                v.principal.as_deref(),
                &v.groups,
                &v.decision,
            )
            .with_upstream(Some(200), None);
            auditor.record(event)
        })
    });
    bg.block_on(auditor.shutdown(std::time::Duration::from_secs(2)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
