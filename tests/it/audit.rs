//! Audit against a real Postgres (`#[sqlx::test]`, only the audit migration) and a real HTTP
//! webhook: fields round-trip, an outage loses nothing, secrets never reach a sink.

use portcullis::audit::postgres::PostgresSink;
use portcullis::audit::webhook::WebhookSink;
use portcullis::audit::{
    format_json, format_table, query, AuditConfig, AuditEvent, AuditFilter, AuditSink, Auditor,
    FsyncPolicy, RequestMeta, SpoolConfig,
};
use portcullis::authn::{Principal, PrincipalKind, Subject};
use portcullis::authz::{Decision, DenyReason, Grant, Permit, TokenProblem};
use portcullis::request::{Api, CheckKind, CheckScope, NodeCheck, NodeRef, SectionPolicy, Target};
use prometheus::Registry;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

const SECRET_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.SECRET-BEARER.c2ln";
const SECRET_KEY: &str = "pcx_live_SECRET_KEY_42";
const NODE: Uuid = Uuid::from_u128(0x1111);

fn meta() -> RequestMeta {
    let mut h = http::HeaderMap::new();
    let bearer = format!("Bearer {SECRET_TOKEN}");
    h.insert(http::header::AUTHORIZATION, bearer.parse().expect("header"));
    h.insert("api-key", SECRET_KEY.parse().expect("header"));
    h.insert(http::header::USER_AGENT, "it/1.0".parse().expect("header"));
    RequestMeta::new(
        &http::Method::POST,
        "/umbraco/management/api/v1/document",
        Some("192.0.2.10".parse().expect("ip")),
        &h,
    )
}

fn target() -> Target {
    Target {
        api: Api::Management,
        route: "document.create".into(),
        sections: SectionPolicy::AnyOf(vec!["content".into()].into()),
        checks: vec![NodeCheck {
            kind: CheckKind::Document,
            scope: CheckScope::Node,
            source: "body:parent.id".into(),
            nodes: vec![NodeRef::Key(NODE)],
            verbs: vec!["Umb.Document.Create".into()].into(),
        }],
        cultures: vec![],
        delivery: None,
    }
}

fn principal(name: &str) -> Principal {
    Principal {
        id: format!("jwt:https://id.example#{name}").into(),
        kind: PrincipalKind::Jwt {
            issuer: "https://id.example".into(),
        },
        subject: Subject::User {
            external_id: name.into(),
            mapped_groups: vec![],
            idp_groups: vec![],
        },
    }
}

fn allow() -> AuditEvent {
    let permit = Permit {
        route: "document.create".into(),
        principal: Some("jwt:https://id.example#alice".into()),
        via: vec![Grant::Verb {
            node: 1234,
            verb: "Umb.Document.Create".into(),
            group: "writer".into(),
            entry_on: None,
        }],
    };
    AuditEvent::new(
        "req-it",
        &meta(),
        Some(&target()),
        Some(&principal("alice")),
        &["writer".into()],
        &Decision::Allow(permit),
    )
    .with_upstream(Some(201), Some(Duration::from_micros(2345)))
    .with_upstream_identity(Some("umbraco-back-office-portcullis"))
}

fn deny(reason: DenyReason, who: Option<&Principal>, classified: bool) -> AuditEvent {
    let t = target();
    AuditEvent::new(
        "req-it",
        &meta(),
        classified.then_some(&t),
        who,
        &[],
        &Decision::Deny(reason),
    )
}

fn config(spool: &std::path::Path) -> AuditConfig {
    AuditConfig {
        instance_id: "it-1".into(),
        batch_size: 100,
        flush_interval: Duration::from_millis(20),
        write_timeout: Duration::from_secs(2),
        retry_backoff: Duration::from_millis(20),
        max_retry_backoff: Duration::from_millis(200),
        spool: SpoolConfig {
            dir: spool.to_path_buf(),
            fsync: FsyncPolicy::Interval,
            ..SpoolConfig::default()
        },
        ..AuditConfig::default()
    }
}

async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrations = "./migrations")]
async fn allow_and_deny_events_land_in_postgres_with_their_fields(pool: PgPool) {
    let spool = tempfile::tempdir().expect("tempdir");
    let sink = PostgresSink::new("postgres".into(), pool.clone());
    let auditor = Auditor::start_with_sinks(
        &config(spool.path()),
        vec![Box::new(sink)],
        &Registry::new(),
    )
    .expect("start");
    let alice = principal("alice");
    let mut events = vec![
        allow(),
        deny(DenyReason::NoRoute, None, false),
        deny(DenyReason::Unauthenticated, None, true),
        deny(DenyReason::InvalidToken(TokenProblem::Expired), None, true),
        deny(DenyReason::OutsideStartNodes, Some(&alice), true),
        deny(DenyReason::MissingVerb, Some(&alice), true),
        deny(DenyReason::StoreUnavailable, Some(&alice), true),
    ];
    for e in &events {
        assert!(auditor.record(e.clone()));
    }
    let report = auditor.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.spooled_bytes, 0);
    for e in &mut events {
        e.instance_id = "it-1".into();
    }
    let all = query(&pool, &AuditFilter::default()).await.expect("query");
    assert_eq!(all.len(), events.len());
    for want in &events {
        let got = all
            .iter()
            .find(|g| g.event_id == want.event_id)
            .expect("event stored");
        assert_eq!(got, want, "row round-trips every field");
    }
    let expired = all
        .iter()
        .find(|e| e.reason_detail.as_deref() == Some("expired"))
        .expect("expired");
    assert_eq!(expired.reason.as_deref(), Some("invalid_token"));

    let by_principal = AuditFilter {
        principal: Some(alice.id.to_string()),
        decision: Some("deny".into()),
        ..AuditFilter::default()
    };
    let mut reasons: Vec<_> = query(&pool, &by_principal)
        .await
        .expect("query")
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        ["missing_verb", "outside_start_nodes", "store_unavailable"]
    );
    let by_node = AuditFilter {
        node: Some(NODE),
        decision: Some("allow".into()),
        since: Some(chrono::Utc::now() - chrono::Duration::minutes(5)),
        ..AuditFilter::default()
    };
    let allows = query(&pool, &by_node).await.expect("query");
    assert_eq!(allows.len(), 1);
    assert_eq!(
        allows[0].granted_via,
        ["verb:Umb.Document.Create@1234 by writer (default)"]
    );

    let table = format_table(&all);
    assert!(table.starts_with("TIME") && table.contains("invalid_token/expired"));
    let json = format_json(&all).expect("json");
    assert_eq!(json.lines().count(), all.len());

    let rows: Vec<String> = sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_events a")
        .fetch_all(&pool)
        .await
        .expect("rows");
    for r in rows {
        assert!(!r.contains("SECRET"), "credential in a row: {r}");
    }
}

/// A TCP relay to Postgres that can be switched off (existing connections cut, new ones
/// closed at once) and on again.
struct Relay {
    port: u16,
    on: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let on = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (on2, conns2) = (on.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !on2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().expect("lock").push(task.abort_handle());
            }
        });
        Relay { port, on, conns }
    }

    fn off(&self) {
        self.on.store(false, Ordering::SeqCst);
        for c in self.conns.lock().expect("lock").drain(..) {
            c.abort();
        }
    }

    fn on(&self) {
        self.on.store(true, Ordering::SeqCst);
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn postgres_outage_under_traffic_loses_nothing_and_duplicates_nothing(
    pool_opts: PgPoolOptions,
    conn_opts: PgConnectOptions,
) {
    let direct = pool_opts
        .clone()
        .connect_with(conn_opts.clone())
        .await
        .expect("direct pool");
    let relay = Relay::start(conn_opts.get_port()).await;
    let relayed = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(conn_opts.clone().port(relay.port));
    let spool = tempfile::tempdir().expect("tempdir");
    let reg = Registry::new();
    let sink = PostgresSink::new("postgres".into(), relayed);
    let auditor = Auditor::start_with_sinks(&config(spool.path()), vec![Box::new(sink)], &reg)
        .expect("start");
    let mut sent = HashSet::new();
    for i in 0..2000 {
        if i == 500 {
            relay.off();
        }
        if i == 1500 {
            // The outage must have been noticed and events spooled before the database returns.
            let mut spooled = false;
            for _ in 0..500 {
                let bytes = reg
                    .gather()
                    .iter()
                    .filter(|f| f.name() == "portcullis_audit_spool_bytes")
                    .flat_map(|f| f.get_metric().iter().map(|m| m.get_gauge().get_value()))
                    .sum::<f64>();
                if bytes > 0.0 {
                    spooled = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(spooled, "events spooled while postgres was unreachable");
            relay.on();
        }
        let e = if i % 3 == 0 {
            allow()
        } else {
            deny(DenyReason::MissingVerb, None, true)
        };
        sent.insert(e.event_id);
        auditor.record(e);
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut n = 0;
    for _ in 0..300 {
        n = count(&direct).await;
        if n >= 2000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 2000, "every event arrives after the outage");
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM audit_events")
        .fetch_all(&direct)
        .await
        .expect("ids");
    let stored: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(stored.len(), ids.len(), "each event exactly once");
    assert_eq!(stored, sent);
    let dropped: f64 = reg
        .gather()
        .iter()
        .filter(|f| f.name() == "portcullis_audit_events_dropped_total")
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value()))
        .sum();
    assert_eq!(dropped, 0.0);
    auditor.shutdown(Duration::from_secs(5)).await;
}

/// A minimal HTTP/1.1 server that records request bodies and answers 200.
async fn webhook_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                    seen.lock()
                        .expect("lock")
                        .push(format!("{head}\n--body--\n{body}"));
                    buf.drain(..end + 4 + len);
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if s.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, bodies)
}

#[tokio::test]
async fn webhook_receives_batches_as_json_arrays_without_credentials() {
    let (port, bodies) = webhook_server().await;
    let sink = WebhookSink::new(
        "siem".into(),
        &format!("http://127.0.0.1:{port}/ingest"),
        Some("webhook-token".into()),
        Duration::from_secs(2),
    )
    .expect("sink");
    assert_eq!(sink.name(), "siem");
    let spool = tempfile::tempdir().expect("tempdir");
    let auditor = Auditor::start_with_sinks(
        &config(spool.path()),
        vec![Box::new(sink)],
        &Registry::new(),
    )
    .expect("start");
    let events = [allow(), deny(DenyReason::Unauthenticated, None, true)];
    for e in &events {
        auditor.record(e.clone());
    }
    auditor.shutdown(Duration::from_secs(5)).await;
    let got = bodies.lock().expect("lock").clone();
    let mut ids = Vec::new();
    for req in &got {
        assert!(req.contains("authorization: bearer webhook-token"));
        let body = req
            .split_once("\n--body--\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let batch: Vec<AuditEvent> = serde_json::from_str(body).expect("json array");
        ids.extend(batch.into_iter().map(|e| e.event_id));
        assert!(
            !body.contains("SECRET"),
            "credential in webhook body: {body}"
        );
    }
    assert_eq!(ids, events.iter().map(|e| e.event_id).collect::<Vec<_>>());
}
