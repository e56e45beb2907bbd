//! Unit tests: event building, config validation, and the Auditor against in-memory sinks.

use super::*;
use crate::authn::{PrincipalKind, Subject};
use crate::authz::{DenyReason, Permit, TokenProblem};
use crate::request::{Api, CheckKind, CheckScope, NodeCheck, SectionPolicy};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

pub(crate) const SECRET_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.SECRET-BEARER-PAYLOAD.c2lnbmF0dXJl";
pub(crate) const SECRET_KEY: &str = "pcx_live_SECRET_API_KEY_0123456789";

pub(crate) fn node(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

pub(crate) fn target() -> Target {
    Target {
        api: Api::Management,
        route: "document.publish".into(),
        sections: SectionPolicy::AnyOf(vec!["content".into()].into()),
        checks: vec![
            NodeCheck {
                kind: CheckKind::Document,
                scope: CheckScope::Node,
                source: "path:id".into(),
                nodes: vec![NodeRef::Key(node(1)), NodeRef::Root],
                verbs: vec!["Umb.Document.Publish".into()].into(),
            },
            NodeCheck {
                kind: CheckKind::Document,
                scope: CheckScope::Node,
                source: "body:parent.id".into(),
                nodes: vec![NodeRef::Key(node(2)), NodeRef::Key(node(1))],
                verbs: vec!["Umb.Document.Publish".into(), "Umb.Document.Read".into()].into(),
            },
        ],
        cultures: vec![],
        delivery: None,
    }
}

pub(crate) fn jwt_principal() -> Principal {
    Principal {
        id: "jwt:https://id.example#alice".into(),
        kind: PrincipalKind::Jwt {
            issuer: "https://id.example".into(),
        },
        subject: Subject::User {
            external_id: "alice".into(),
            mapped_groups: vec![],
            idp_groups: vec![],
        },
    }
}

/// Request metadata built from headers that carry every kind of credential.
pub(crate) fn meta_with_secrets() -> RequestMeta {
    let mut h = http::HeaderMap::new();
    let bearer = format!("Bearer {SECRET_TOKEN}");
    h.insert(http::header::AUTHORIZATION, bearer.parse().expect("header"));
    h.insert("api-key", SECRET_KEY.parse().expect("header"));
    h.insert(
        http::header::COOKIE,
        format!("s={SECRET_TOKEN}").parse().expect("header"),
    );
    h.insert(
        http::header::USER_AGENT,
        "curl/8.5".parse().expect("header"),
    );
    RequestMeta::new(
        &http::Method::PUT,
        "/umbraco/management/api/v1/document/00000000-0000-0000-0000-000000000001/publish",
        Some("10.0.0.7".parse().expect("ip")),
        &h,
    )
}

pub(crate) fn sample_allow() -> AuditEvent {
    let permit = Permit {
        route: "document.publish".into(),
        principal: Some("jwt:https://id.example#alice".into()),
        via: vec![Grant::Verb {
            node: 1234,
            verb: "Umb.Document.Publish".into(),
            group: "editor".into(),
            entry_on: Some(1200),
        }],
    };
    AuditEvent::new(
        "req-1",
        &meta_with_secrets(),
        Some(&target()),
        Some(&jwt_principal()),
        &["editor".into()],
        &Decision::Allow(permit),
    )
    .with_upstream(Some(200), Some(Duration::from_micros(1500)))
}

pub(crate) fn sample_deny() -> AuditEvent {
    AuditEvent::new(
        "req-1",
        &meta_with_secrets(),
        Some(&target()),
        Some(&jwt_principal()),
        &[],
        &Decision::Deny(DenyReason::InvalidToken(TokenProblem::Expired)),
    )
}

#[test]
fn allow_event_names_route_principal_nodes_verbs_and_grant() {
    let e = sample_allow();
    assert_eq!(e.decision, "allow");
    assert_eq!(e.api.as_deref(), Some("management"));
    assert_eq!(e.route_id.as_deref(), Some("document.publish"));
    assert_eq!(e.principal_kind, "jwt");
    assert_eq!(e.principal_issuer.as_deref(), Some("https://id.example"));
    assert_eq!(e.node_keys, vec![node(1), node(2)]);
    assert_eq!(
        e.verbs,
        vec!["Umb.Document.Publish".into(), "Umb.Document.Read".into()] as Vec<Arc<str>>
    );
    assert_eq!(
        e.granted_via,
        vec!["verb:Umb.Document.Publish@1234 by editor (entry on 1200)"]
    );
    assert_eq!(e.reason, None);
    assert_eq!(e.upstream_status, Some(200));
    assert_eq!(e.upstream_latency_us, Some(1500));
    assert_eq!(e.user_agent.as_deref(), Some("curl/8.5"));
    assert_eq!(e.event_id.get_version_num(), 7);
}

#[test]
fn deny_event_carries_reason_and_detail_and_no_grants() {
    let e = sample_deny();
    assert!(e.is_deny());
    assert_eq!(e.reason.as_deref(), Some("invalid_token"));
    assert_eq!(e.reason_detail.as_deref(), Some("expired"));
    assert!(e.granted_via.is_empty());
}

#[test]
fn request_refused_before_classification_has_no_api_route_or_principal() {
    let e = AuditEvent::new(
        "req-1",
        &meta_with_secrets(),
        None,
        None,
        &[],
        &Decision::Deny(DenyReason::Malformed),
    );
    assert_eq!((e.api, e.route_id, e.principal_id), (None, None, None));
    assert_eq!(e.principal_kind, "none");
    assert_eq!(e.reason.as_deref(), Some("malformed_request"));
}

#[test]
fn api_key_principal_records_key_id_only() {
    let p = Principal {
        id: "key:k1".into(),
        kind: PrincipalKind::ApiKey {
            key_id: "k1".into(),
        },
        subject: Subject::Anonymous,
    };
    let e = AuditEvent::new(
        "req-1",
        &meta_with_secrets(),
        None,
        Some(&p),
        &[],
        &Decision::Deny(DenyReason::ApiNotAllowed),
    );
    assert_eq!(e.principal_kind, "api_key");
    assert_eq!(e.principal_issuer.as_deref(), Some("k1"));
}

#[test]
fn serialised_events_never_contain_credentials_from_the_request() {
    for e in [sample_allow(), sample_deny()] {
        let json = serde_json::to_string(&e).expect("json");
        assert!(!json.contains("SECRET"), "{json}");
    }
}

#[test]
fn long_user_agent_is_cut_on_a_char_boundary() {
    let mut h = http::HeaderMap::new();
    let ua = "é".repeat(400);
    h.insert(http::header::USER_AGENT, ua.parse().expect("header"));
    let m = RequestMeta::new(&http::Method::GET, "/", None, &h);
    let got = m.user_agent.expect("ua");
    assert!(got.len() <= MAX_USER_AGENT && got.len() >= MAX_USER_AGENT - 1);
}

#[test]
fn a_standard_method_is_borrowed_and_an_extension_method_copied() {
    let h = http::HeaderMap::new();
    for name in [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ] {
        let method = http::Method::from_bytes(name.as_bytes()).expect("method");
        let m = RequestMeta::new(&method, "/", None, &h);
        assert!(matches!(m.method, Word::Borrowed(n) if n == name), "{name}");
    }
    let purge = http::Method::from_bytes(b"PURGE").expect("method");
    let m = RequestMeta::new(&purge, "/", None, &h);
    assert!(matches!(&m.method, Word::Owned(n) if n == "PURGE"));
}

/// An in-memory sink that can be switched off (fails every write) and on.
#[derive(Clone)]
pub(crate) struct MemorySink {
    pub name: String,
    pub events: Arc<Mutex<Vec<AuditEvent>>>,
    pub up: Arc<AtomicBool>,
    pub calls: Arc<AtomicUsize>,
}

impl MemorySink {
    pub(crate) fn new(name: &str) -> Self {
        MemorySink {
            name: name.into(),
            events: Arc::default(),
            up: Arc::new(AtomicBool::new(true)),
            calls: Arc::default(),
        }
    }
    pub(crate) fn ids(&self) -> Vec<uuid::Uuid> {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .map(|e| e.event_id)
            .collect()
    }
}

#[async_trait::async_trait]
impl AuditSink for MemorySink {
    fn name(&self) -> &str {
        &self.name
    }
    async fn write(&self, batch: &[Arc<AuditEvent>]) -> Result<(), AuditError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.up.load(Ordering::SeqCst) {
            return Err(AuditError::SinkUnavailable {
                sink: self.name.clone(),
                source: "switched off".into(),
            });
        }
        let mut ev = self.events.lock().expect("lock");
        ev.extend(batch.iter().map(|e| (**e).clone()));
        Ok(())
    }
}

pub(crate) fn test_config(spool_dir: &std::path::Path) -> AuditConfig {
    AuditConfig {
        flush_interval: Duration::from_millis(20),
        retry_backoff: Duration::from_millis(10),
        max_retry_backoff: Duration::from_millis(50),
        write_timeout: Duration::from_secs(2),
        batch_size: 64,
        spool: SpoolConfig {
            dir: spool_dir.to_path_buf(),
            fsync: FsyncPolicy::Never,
            ..SpoolConfig::default()
        },
        instance_id: "test-1".into(),
        ..AuditConfig::default()
    }
}

/// Polls `cond` every 10 ms for at most `secs` seconds.
pub(crate) async fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 100 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

fn fresh_deny() -> AuditEvent {
    let mut e = sample_deny();
    e.event_id = uuid::Uuid::now_v7();
    e
}

#[path = "auditor_tests.rs"]
mod auditor_tests;

proptest::proptest! {
    #[test]
    fn truncate_never_splits_a_char_and_keeps_a_prefix(s in "\\PC{0,80}", max in 0usize..64) {
        let t = truncate(&s, max);
        proptest::prop_assert!(t.len() <= max);
        proptest::prop_assert!(s.starts_with(t));
        // A char is at most 4 bytes, so at most 3 bytes of budget go unused.
        proptest::prop_assert!(max.saturating_sub(3) <= t.len() || t == s);
    }
}

#[test]
fn upstream_identity_is_recorded_and_events_spooled_before_it_existed_still_read() {
    let e = sample_allow().with_upstream_identity(Some("umbraco-back-office-portcullis"));
    let line = serde_json::to_value(&e).expect("json");
    assert_eq!(line["upstream_identity"], "umbraco-back-office-portcullis");
    let mut old = line.clone();
    old.as_object_mut()
        .expect("object")
        .remove("upstream_identity");
    let read: AuditEvent = serde_json::from_value(old).expect("an older line reads");
    assert_eq!(read.upstream_identity, None);
    assert_eq!(sample_allow().upstream_identity, None);
}

#[test]
fn every_grant_reads_as_its_documented_text() {
    let g = |s: &str| s.to_owned();
    let cases = [
        (Grant::Anonymous, "anonymous"),
        (Grant::Backoffice, "backoffice"),
        (
            Grant::Section {
                section: g("content").into(),
                group: g("editor").into(),
            },
            "section:content by editor",
        ),
        (
            Grant::Admin {
                group: g("admin").into(),
            },
            "admin by admin",
        ),
        (
            Grant::Verb {
                node: 1234,
                verb: g("Umb.Document.Update").into(),
                group: g("editor").into(),
                entry_on: Some(1200),
            },
            "verb:Umb.Document.Update@1234 by editor (entry on 1200)",
        ),
        (
            Grant::Verb {
                node: -20,
                verb: g("Umb.Document.Delete").into(),
                group: g("writer").into(),
                entry_on: None,
            },
            "verb:Umb.Document.Delete@-20 by writer (default)",
        ),
        (Grant::KeyScope { key_id: g("k1") }, "key_scope:k1"),
        (Grant::Member { member: g("ann") }, "member:ann"),
        (Grant::Passthrough, "passthrough"),
        (Grant::DeferredToUpstream { node: g("abc") }, "deferred:abc"),
        (
            Grant::StartNode {
                node: 1234,
                start_node: -1,
            },
            "start_node:-1 covers 1234",
        ),
        (Grant::UserTarget { user: g("u1") }, "user_target:u1"),
        (
            Grant::GroupMember {
                group: g("g1").into(),
            },
            "group_member:g1",
        ),
    ];
    for (grant, text) in cases {
        assert_eq!(grant_text(&grant), text, "{grant:?}");
    }
}

#[test]
fn v7_ids_carry_the_time_and_random_bits_in_every_random_byte() {
    let before = chrono::Utc::now().timestamp_millis();
    let ids: Vec<Uuid> = (0..2000).map(|_| super::new_v7()).collect();
    let after = chrono::Utc::now().timestamp_millis();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    for id in &ids {
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        let (secs, nanos) = id.get_timestamp().expect("v7 has a time").to_unix();
        let millis = i64::try_from(secs * 1000 + u64::from(nanos) / 1_000_000).expect("ms");
        assert!(
            (before..=after).contains(&millis),
            "{millis} not in {before}..={after}"
        );
    }
    // Bytes 6..16 hold the random bits (with the version and variant in their top bits): each
    // byte takes many values across the ids.
    for i in 6..16 {
        let seen: std::collections::HashSet<u8> = ids.iter().map(|id| id.as_bytes()[i]).collect();
        assert!(seen.len() > 8, "byte {i}: {seen:?}");
    }
    // And within an id the random bytes are independent draws, not one byte repeated.
    let repeated = ids
        .iter()
        .filter(|id| id.as_bytes()[9..].windows(2).all(|w| w[0] == w[1]))
        .count();
    assert_eq!(repeated, 0);
}
