//! What one proxied request costs on the worker thread, without pingora: the closest
//! pingora-free equivalent of `request_filter` through `logging` for the load benchmark's
//! request (`benches/load/run`: a Management `GET document/{id}` 12 levels deep, RS256 bearer
//! token already verified, user and ancestry cached). Per iteration: the edge's head checks on
//! the raw head, the request id, the gate's warm decision (`decide_now`), the audit metadata,
//! the traceparent and every upstream header edit, then the audit event built from the
//! request's parts and written as its JSON line. pingora's own work (parsing, header insertion,
//! I/O) is what `benches/load/instructions` adds on top.
#![allow(clippy::unwrap_used)]

#[path = "support/warm_gate.rs"]
mod warm_gate;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::audit::{json_line, AuditEvent, RequestMeta};
use portcullis::authz::Decision;
use portcullis::proxy::head_check::{self, HeadFacts};
use portcullis::proxy::headers::{self, Forwarding};
use std::hint::black_box;
use warm_gate::{config, decided, gate, DOC};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (gate, _services, token) = gate(&config, dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // What benches/load sends (Python's http.client).
    let raw_head = format!(
        "GET {DOC} HTTP/1.1\r\nHost: 127.0.0.1:18085\r\nAccept-Encoding: identity\r\nAuthorization: Bearer {token}\r\nUser-Agent: bench\r\n\r\n"
    );
    let parts = http::Request::get(DOC)
        .header("host", "127.0.0.1:18085")
        .header("accept-encoding", "identity")
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "bench")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let raw = DOC.as_bytes();
    // The first decision verifies the token and loads the user and the nodes.
    let first = decided(rt.block_on(gate.decide(&parts, raw)));
    assert!(matches!(first.decision, Decision::Allow(_)));
    let peer = Some("127.0.0.1".parse().unwrap());
    let mut line = Vec::with_capacity(2048);

    c.bench_function("request_path_document_get_depth12", |b| {
        b.iter(|| {
            let head = HeadFacts::from_raw(raw_head.as_bytes());
            let refusal = head_check::check(
                &head,
                http::Version::HTTP_11,
                raw,
                None,
                &config.head_policy,
            );
            assert!(refusal.is_none());
            let request_id = headers::request_id(&parts.headers);
            let verdict = decided(gate.decide_now(&parts, raw));
            let path = verdict.uri.as_deref().unwrap_or_default();
            let meta = RequestMeta::new(&parts.method, path, peer, &parts.headers);
            let traceparent = headers::traceparent(&parts.headers);
            let mut id = [0u8; 36];
            let forwarding = Forwarding {
                peer,
                trusted_proxies: &config.trusted_proxies,
                identity: &config.identity_headers,
                verdict: Some(&verdict),
                decision_id: Some(headers::uuid_text(&meta.event_id, &mut id)),
                request_id: &request_id,
                traceparent: &traceparent,
                body_inspected: false,
                upstream_host: None,
                delivery_api_key: None,
            };
            black_box(headers::upstream_edits(&parts.headers, &forwarding).unwrap());
            let v = *verdict;
            let event = AuditEvent::decided(
                request_id,
                meta,
                v.target,
                v.principal,
                v.groups,
                v.decision,
            )
            .with_upstream(Some(200), None);
            line.clear();
            json_line::write_line(&event, &mut line).unwrap();
            black_box(&line);
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
