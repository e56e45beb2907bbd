//! Audit trail: one [`AuditEvent`] per decided request, recorded without blocking the request and
//! without silent loss.
//!
//! The proxy builds one event at the end of the request (pingora's logging phase) with
//! [`AuditEvent::new`] and hands it to [`Auditor::record`], which only enqueues. Per-sink writer
//! tasks ([`auditor`]) batch events to the configured [`AuditSink`]s (JSON lines to stdout or a
//! rotating file, Postgres, an HTTP webhook). A sink that is down or slow gets its events in an
//! on-disk [`spool`] that is replayed in order when it returns; only when the spool is full too is
//! an event dropped, and every drop is counted and logged.
//!
//! The event type has no field that could carry a credential: it is built from the verified
//! [`Principal`] (ids only), the classified [`Target`] and [`RequestMeta`] (no headers but the
//! user agent).

pub mod auditor;
mod auditor_writer;
pub mod config;
pub mod json_line;
pub mod jsonl;
pub mod metrics;
pub mod postgres;
pub mod query;
pub mod spool;
pub mod webhook;

pub use auditor::{Auditor, ShutdownReport};
pub use config::{AuditConfig, FsyncPolicy, SinkConfig, SpoolConfig};
pub use metrics::AuditMetrics;
pub use query::{format_json, format_table, query, AuditFilter};

use crate::authn::{Principal, PrincipalKind};
use crate::authz::{Decision, Grant};
use crate::request::{NodeRef, Target};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Longest user agent kept; longer ones are cut (on a char boundary) to bound row size.
pub const MAX_USER_AGENT: usize = 512;

/// Everything that can go wrong in the audit module. Never reaches a client.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit sink `{sink}` is unavailable")]
    SinkUnavailable {
        sink: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("audit sink `{sink}` rejected the batch permanently")]
    Rejected {
        sink: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("audit sink `{sink}` timed out after {after:?}")]
    Timeout { sink: String, after: Duration },
    #[error("audit spool i/o at `{path}`")]
    Spool {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("audit spool for sink `{sink}` is full")]
    SpoolFull { sink: String },
    #[error("audit event encoding")]
    Encode(#[source] serde_json::Error),
    #[error("audit metric registration")]
    Metrics(#[source] prometheus::Error),
    #[error("audit query")]
    Query(#[source] sqlx::Error),
    #[error("env var `{var}` for the audit sinks is not usable")]
    Env {
        var: String,
        #[source]
        source: std::env::VarError,
    },
    #[error("audit sink `{sink}` has an invalid url")]
    InvalidUrl {
        sink: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AuditError {
    /// True when retrying the same batch cannot succeed (the batch is dropped, counted).
    pub fn is_permanent(&self) -> bool {
        matches!(self, AuditError::Rejected { .. } | AuditError::Encode(_))
    }
}

/// A destination for audit events. Implementations write a whole batch or fail; a failed batch
/// is spooled and retried, so `write` must be idempotent per `event_id` where it can be.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync {
    /// The sink's stable name: metric label and spool directory.
    fn name(&self) -> &str;
    /// Writes the batch in order. `Err(e)` with `e.is_permanent()` drops the batch.
    async fn write(&self, batch: &[Arc<AuditEvent>]) -> Result<(), AuditError>;
}

/// Request facts the proxy knows from the start. Create it when the request arrives so that
/// `event_id` can be sent back as `X-Portcullis-Decision-Id` before the event is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    /// UUID v7: time-ordered, unique per request.
    pub event_id: Uuid,
    /// A standard method's name is borrowed; only an extension method is copied.
    pub method: Word,
    /// The canonical path (after `normalize`), never the raw one.
    pub path: String,
    pub client_addr: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// New metadata with a fresh v7 event id. Only the `User-Agent` header is read: credentials
    /// (`Authorization`, `Api-Key`, cookies) never enter audit data.
    pub fn new(
        method: &http::Method,
        canonical_path: impl Into<String>,
        client_addr: Option<IpAddr>,
        headers: &http::HeaderMap,
    ) -> Self {
        let user_agent = headers
            .get(http::header::USER_AGENT)
            // Lossy: a non-ASCII agent is still worth recording, as far as it is text.
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .map(|ua| truncate(&ua, MAX_USER_AGENT).to_owned());
        RequestMeta {
            event_id: new_v7(),
            method: method_word(method),
            path: canonical_path.into(),
            client_addr,
            user_agent,
        }
    }
}

/// A method as a [`Word`]: the standard methods are the program's own strings.
fn method_word(method: &http::Method) -> Word {
    use http::Method;
    let name = match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => return Word::Owned(method.as_str().to_owned()),
    };
    Word::Borrowed(name)
}

/// The instance id of an event [`Auditor::record`] has not stamped yet (shared, not allocated
/// per event).
static NO_INSTANCE: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));

/// A field whose values come from a fixed vocabulary (`allow`, `management`, `jwt`, a deny
/// reason id): borrowed from the program's own strings on the request path, owned only when
/// read back from a sink.
pub type Word = std::borrow::Cow<'static, str>;

/// One decided request. Serialised as one JSON line / one row; field names are stable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub event_id: Uuid,
    /// Microsecond precision, so a replayed event equals its stored row.
    pub occurred_at: DateTime<Utc>,
    pub request_id: String,
    /// Shared by every event of the instance.
    pub instance_id: Arc<str>,
    /// `management` / `delivery`; `None` when the request was refused before classification.
    pub api: Option<Word>,
    pub method: Word,
    pub path: String,
    /// The route table's own name (shared, not copied).
    pub route_id: Option<Arc<str>>,
    /// `jwt:{issuer}#{subject}`, `key:{key_id}`, `anonymous`; `None` before authentication.
    pub principal_id: Option<Arc<str>>,
    /// `jwt`, `api_key`, `anonymous` or `none` (refused before authentication).
    pub principal_kind: Word,
    /// The token issuer (jwt) or the public key id (api_key). Never a secret.
    pub principal_issuer: Option<Arc<str>>,
    /// Shared with the group policies (no copy per request).
    pub groups: Vec<Arc<str>>,
    /// Node keys the request's checks named (GUIDs only; root / recycle bin are not keys).
    pub node_keys: Vec<Uuid>,
    /// Verbs the route required, deduplicated, in route order (shared with the route table).
    pub verbs: Vec<Arc<str>>,
    /// `allow` / `deny`.
    pub decision: Word,
    /// The stable deny reason id (`DenyReason::as_str`); `None` for allows.
    pub reason: Option<Word>,
    /// The finer id (`expired`, …) where the reason has one.
    pub reason_detail: Option<Word>,
    /// What granted an allow, one compact entry per `Permit.via` grant
    /// (`verb:Umb.Document.Update@1234 by editor (entry on 1200)`).
    pub granted_via: Vec<String>,
    pub client_addr: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub upstream_status: Option<u16>,
    pub upstream_latency_us: Option<i64>,
    /// The Umbraco identity the request reached Umbraco as when `[upstream.credential]`
    /// replaced the caller's credential: the API user's client id (`umbraco-back-office-…`,
    /// never a secret). `None` when the caller's own credential went upstream (or nothing did).
    #[serde(default)]
    pub upstream_identity: Option<String>,
}

impl AuditEvent {
    /// Builds the event for one request from the shared types. `target` / `principal` are
    /// `None` when the request was refused before that stage. `groups` are the resolved group
    /// aliases (empty when unknown). `instance_id` is filled by [`Auditor::record`]. The proxy
    /// uses [`AuditEvent::decided`], which takes the parts instead of copying them.
    pub fn new(
        request_id: &str,
        meta: &RequestMeta,
        target: Option<&Target>,
        principal: Option<&Principal>,
        groups: &[Arc<str>],
        decision: &Decision,
    ) -> Self {
        AuditEvent::decided(
            request_id.to_owned(),
            meta.clone(),
            target.cloned(),
            principal.cloned().map(Arc::new),
            groups.to_vec(),
            decision.clone(),
        )
    }

    /// [`AuditEvent::new`] from owned parts (the proxy's logging phase, once the request is
    /// done with them, its id included): their strings move into the event instead of being
    /// copied.
    pub fn decided(
        request_id: String,
        meta: RequestMeta,
        target: Option<Target>,
        principal: Option<Arc<Principal>>,
        groups: Vec<Arc<str>>,
        decision: Decision,
    ) -> Self {
        let api = target.as_ref().map(|t| Word::Borrowed(t.api.as_str()));
        let route_id = target.as_ref().map(|t| t.route.clone());
        let (node_keys, verbs) = target.map(named_nodes_and_verbs).unwrap_or_default();
        let (principal_id, principal_kind, principal_issuer) = match principal {
            None => (None, "none", None),
            Some(p) => {
                let (kind, issuer) = match &p.kind {
                    PrincipalKind::Anonymous => ("anonymous", None),
                    PrincipalKind::Jwt { issuer } => ("jwt", Some(issuer.clone())),
                    PrincipalKind::ApiKey { key_id } => ("api_key", Some(key_id.clone())),
                    PrincipalKind::Umbraco { .. } => ("umbraco", None),
                };
                (Some(p.id.clone()), kind, issuer)
            }
        };
        let decision_text = Word::Borrowed(decision.as_str());
        let (reason, reason_detail, granted_via) = match decision {
            Decision::Allow(permit) => (None, None, permit.via.iter().map(grant_text).collect()),
            Decision::Deny(r) => (
                Some(Word::Borrowed(r.as_str())),
                r.detail().map(Word::Borrowed),
                Vec::new(),
            ),
        };
        AuditEvent {
            event_id: meta.event_id,
            occurred_at: Utc::now().trunc_subsecs(6),
            request_id,
            instance_id: NO_INSTANCE.clone(),
            api,
            method: meta.method,
            path: meta.path,
            route_id,
            principal_id,
            principal_kind: Word::Borrowed(principal_kind),
            principal_issuer,
            groups,
            node_keys,
            verbs,
            decision: decision_text,
            reason,
            reason_detail,
            granted_via,
            client_addr: meta.client_addr,
            user_agent: meta.user_agent,
            upstream_status: None,
            upstream_latency_us: None,
            upstream_identity: None,
        }
    }

    /// Fills the upstream outcome (allowed requests that reached the upstream).
    pub fn with_upstream(mut self, status: Option<u16>, latency: Option<Duration>) -> Self {
        self.upstream_status = status;
        self.upstream_latency_us =
            latency.map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        self
    }

    /// Records the identity the request was forwarded as (the API user's client id).
    pub fn with_upstream_identity(mut self, identity: Option<&str>) -> Self {
        self.upstream_identity = identity.map(str::to_owned);
        self
    }

    /// True for a deny (always recorded, never sampled out).
    pub fn is_deny(&self) -> bool {
        self.decision == "deny"
    }
}

/// The node keys a target's checks name (and a Delivery `Start-Item` key), and the verbs its
/// checks require, each deduplicated in route order.
fn named_nodes_and_verbs(t: Target) -> (Vec<Uuid>, Vec<Arc<str>>) {
    let mut node_keys = Vec::new();
    let mut verbs: Vec<Arc<str>> = Vec::new();
    for check in t.checks {
        for node in &check.nodes {
            if let NodeRef::Key(k) = node {
                if !node_keys.contains(k) {
                    node_keys.push(*k);
                }
            }
        }
        for v in check.verbs.iter() {
            if !verbs.contains(v) {
                verbs.push(v.clone());
            }
        }
    }
    if let Some(NodeRef::Key(k)) = t.delivery.and_then(|d| d.start_item) {
        if !node_keys.contains(&k) {
            node_keys.push(k);
        }
    }
    (node_keys, verbs)
}

/// One `Grant` as a short, human readable and greppable string. Written piece by piece, not
/// with `format!` (an allowed Management request has about three).
fn grant_text(g: &Grant) -> String {
    use crate::text::push_int;
    let mut s = String::with_capacity(64);
    let mut put = |parts: &[&str]| parts.iter().for_each(|p| s.push_str(p));
    match g {
        Grant::Anonymous => put(&["anonymous"]),
        Grant::Backoffice => put(&["backoffice"]),
        Grant::Section { section, group } => put(&["section:", section, " by ", group]),
        Grant::Admin { group } => put(&["admin by ", group]),
        Grant::Verb {
            node,
            verb,
            group,
            entry_on,
        } => {
            s.push_str("verb:");
            s.push_str(verb);
            s.push('@');
            push_int(&mut s, *node);
            s.push_str(" by ");
            s.push_str(group);
            match entry_on {
                Some(on) => {
                    s.push_str(" (entry on ");
                    push_int(&mut s, *on);
                    s.push(')');
                }
                None => s.push_str(" (default)"),
            }
        }
        Grant::KeyScope { key_id } => put(&["key_scope:", key_id]),
        Grant::Member { member } => put(&["member:", member]),
        Grant::Passthrough => put(&["passthrough"]),
        Grant::DeferredToUpstream { node } => put(&["deferred:", node]),
        Grant::StartNode { node, start_node } => {
            s.push_str("start_node:");
            push_int(&mut s, *start_node);
            s.push_str(" covers ");
            push_int(&mut s, *node);
        }
        Grant::UserTarget { user } => put(&["user_target:", user]),
        Grant::GroupMember { group } => put(&["group_member:", group]),
    }
    s
}

/// A UUID v7 (RFC 9562: Unix milliseconds, then random bits) from the thread-local RNG, so no
/// system call per id (`Uuid::now_v7` asks the OS for randomness on every call). Ids made in
/// the same millisecond are unique but not ordered among themselves.
pub fn new_v7() -> Uuid {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    // One 128-bit draw: `rand::random::<[u8; 10]>()` draws each byte on its own.
    let bits = rand::random::<u128>().to_le_bytes();
    let random: [u8; 10] = std::array::from_fn(|i| bits[i]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// `s` cut to at most `max` bytes on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
