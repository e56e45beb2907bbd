//! Hot-path cost of auditing: building an event from the shared types and `Auditor::record`
//! (sampling, one `try_send` per sink). Writers run on a background runtime.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portcullis::audit::{AuditConfig, AuditEvent, AuditSink, Auditor, RequestMeta, SpoolConfig};
use portcullis::authn::{Principal, PrincipalKind, Subject};
use portcullis::authz::{Decision, DenyReason, Grant, Permit};
use portcullis::request::{Api, CheckKind, CheckScope, NodeCheck, NodeRef, SectionPolicy, Target};
use std::sync::Arc;
use std::time::Duration;

/// Accepts everything instantly: measures the auditor, not a sink.
struct NullSink;

#[async_trait::async_trait]
impl AuditSink for NullSink {
    fn name(&self) -> &str {
        "null"
    }
    async fn write(&self, _batch: &[Arc<AuditEvent>]) -> Result<(), portcullis::audit::AuditError> {
        Ok(())
    }
}

fn inputs() -> (RequestMeta, Target, Principal, Decision) {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::USER_AGENT,
        "bench/1.0".parse().expect("header"),
    );
    let meta = RequestMeta::new(
        &http::Method::PUT,
        "/umbraco/management/api/v1/document/00000000-0000-0000-0000-000000000001",
        Some("10.0.0.1".parse().expect("ip")),
        &h,
    );
    let target = Target {
        api: Api::Management,
        route: "document.update".into(),
        sections: SectionPolicy::AnyOf(vec!["content".into()].into()),
        checks: vec![NodeCheck {
            kind: CheckKind::Document,
            scope: CheckScope::Node,
            source: "path:id".into(),
            nodes: vec![NodeRef::Key(uuid::Uuid::from_u128(1))],
            verbs: vec!["Umb.Document.Update".into()].into(),
        }],
        cultures: vec![],
        delivery: None,
    };
    let principal = Principal {
        id: "jwt:https://id.example#alice".into(),
        kind: PrincipalKind::Jwt {
            issuer: "https://id.example".into(),
        },
        subject: Subject::User {
            external_id: "alice".into(),
            mapped_groups: vec![],
            idp_groups: vec![],
        },
    };
    let decision = Decision::Allow(Permit {
        route: "document.update".into(),
        principal: Some(principal.id.clone()),
        via: vec![Grant::Verb {
            node: 1,
            verb: "Umb.Document.Update".into(),
            group: "editor".into(),
            entry_on: None,
        }],
    });
    (meta, target, principal, decision)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let spool = tempfile::tempdir().expect("tempdir");
    let cfg = AuditConfig {
        queue_capacity: 1 << 16,
        batch_size: 1024,
        flush_interval: Duration::from_millis(5),
        spool: SpoolConfig {
            dir: spool.path().to_path_buf(),
            ..SpoolConfig::default()
        },
        instance_id: "bench".into(),
        ..AuditConfig::default()
    };
    let auditor = rt.block_on(async {
        Auditor::start_with_sinks(&cfg, vec![Box::new(NullSink)], &prometheus::Registry::new())
            .expect("start")
    });
    let (meta, target, principal, decision) = inputs();
    let groups: Vec<std::sync::Arc<str>> = vec!["editor".into()];
    let deny = Decision::Deny(DenyReason::MissingVerb);

    let event = |d: &Decision| {
        AuditEvent::new(
            "req-bench",
            &meta,
            Some(&target),
            Some(&principal),
            &groups,
            d,
        )
    };
    c.bench_function("audit_event_new", |b| b.iter(|| event(&decision)));
    c.bench_function("auditor_record", |b| {
        b.iter_batched(
            || event(&deny),
            |e| auditor.record(e),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("audit_event_new_and_record", |b| {
        b.iter(|| auditor.record(event(&deny)))
    });
    rt.block_on(auditor.shutdown(Duration::from_secs(5)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
