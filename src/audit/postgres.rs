//! Postgres sink: one multi-row `INSERT … SELECT … FROM UNNEST(…)` per batch into `audit_events`
//! (migrations `20260101000100_audit_events.sql` and `20261203181201_audit_upstream_identity.sql`).
//! `ON CONFLICT DO NOTHING` on the primary key `(occurred_at, event_id)` makes spool replays
//! idempotent. The only SQL outside `store/`.

use super::{AuditError, AuditEvent, AuditSink};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Array columns travel as one JSON array text per row (UNNEST flattens nested arrays) and are
/// rebuilt with `jsonb_array_elements_text`.
const INSERT: &str = r#"
INSERT INTO audit_events (
    occurred_at, event_id, request_id, instance_id, api, method, path, route_id,
    principal_id, principal_kind, principal_issuer, groups, node_keys, verbs,
    decision, reason, reason_detail, granted_via, client_addr, user_agent,
    upstream_status, upstream_latency_us, upstream_identity)
SELECT u.occurred_at, u.event_id, u.request_id, u.instance_id, u.api, u.method, u.path,
    u.route_id, u.principal_id, u.principal_kind, u.principal_issuer,
    ARRAY(SELECT jsonb_array_elements_text(u.groups::jsonb)),
    ARRAY(SELECT jsonb_array_elements_text(u.node_keys::jsonb)::uuid),
    ARRAY(SELECT jsonb_array_elements_text(u.verbs::jsonb)),
    u.decision, u.reason, u.reason_detail,
    ARRAY(SELECT jsonb_array_elements_text(u.granted_via::jsonb)),
    u.client_addr::inet, u.user_agent, u.upstream_status, u.upstream_latency_us,
    u.upstream_identity
FROM UNNEST(
    $1::timestamptz[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
    $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[],
    $21::int4[], $22::int8[], $23::text[]
) AS u(occurred_at, event_id, request_id, instance_id, api, method, path, route_id,
    principal_id, principal_kind, principal_issuer, groups, node_keys, verbs,
    decision, reason, reason_detail, granted_via, client_addr, user_agent,
    upstream_status, upstream_latency_us, upstream_identity)
ON CONFLICT DO NOTHING
"#;

/// Batched writer into `audit_events`.
pub struct PostgresSink {
    name: String,
    pool: PgPool,
}

impl PostgresSink {
    /// Uses an existing pool (for example the store's).
    pub fn new(name: String, pool: PgPool) -> Self {
        PostgresSink { name, pool }
    }

    /// A small pool that connects on first use, so a database that is down at start only
    /// spools events instead of failing the gateway.
    pub fn connect_lazy(name: String, url: &str, timeout: Duration) -> Result<Self, AuditError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(timeout)
            .connect_lazy(url)
            .map_err(|e| AuditError::InvalidUrl {
                sink: name.clone(),
                source: Box::new(e),
            })?;
        Ok(PostgresSink { name, pool })
    }
}

#[derive(Default)]
struct Columns {
    occurred_at: Vec<DateTime<Utc>>,
    event_id: Vec<Uuid>,
    request_id: Vec<String>,
    instance_id: Vec<String>,
    api: Vec<Option<String>>,
    method: Vec<String>,
    path: Vec<String>,
    route_id: Vec<Option<String>>,
    principal_id: Vec<Option<String>>,
    principal_kind: Vec<String>,
    principal_issuer: Vec<Option<String>>,
    groups: Vec<String>,
    node_keys: Vec<String>,
    verbs: Vec<String>,
    decision: Vec<String>,
    reason: Vec<Option<String>>,
    reason_detail: Vec<Option<String>>,
    granted_via: Vec<String>,
    client_addr: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    upstream_status: Vec<Option<i32>>,
    upstream_latency_us: Vec<Option<i64>>,
    upstream_identity: Vec<Option<String>>,
}

fn json_array<T: serde::Serialize>(v: &[T]) -> Result<String, AuditError> {
    serde_json::to_string(v).map_err(AuditError::Encode)
}

impl Columns {
    fn from_batch(batch: &[Arc<AuditEvent>]) -> Result<Self, AuditError> {
        let mut c = Columns::default();
        for e in batch {
            c.occurred_at.push(e.occurred_at);
            c.event_id.push(e.event_id);
            c.request_id.push(e.request_id.clone());
            c.instance_id.push(e.instance_id.to_string());
            c.api.push(e.api.as_deref().map(str::to_owned));
            c.method.push(e.method.to_string());
            c.path.push(e.path.clone());
            c.route_id.push(e.route_id.as_deref().map(str::to_owned));
            c.principal_id
                .push(e.principal_id.as_deref().map(str::to_owned));
            c.principal_kind.push(e.principal_kind.to_string());
            c.principal_issuer
                .push(e.principal_issuer.as_deref().map(str::to_owned));
            c.groups.push(json_array(&e.groups)?);
            c.node_keys.push(json_array(&e.node_keys)?);
            c.verbs.push(json_array(&e.verbs)?);
            c.decision.push(e.decision.to_string());
            c.reason.push(e.reason.as_deref().map(str::to_owned));
            c.reason_detail
                .push(e.reason_detail.as_deref().map(str::to_owned));
            c.granted_via.push(json_array(&e.granted_via)?);
            c.client_addr.push(e.client_addr.map(|a| a.to_string()));
            c.user_agent.push(e.user_agent.clone());
            c.upstream_status.push(e.upstream_status.map(i32::from));
            c.upstream_latency_us.push(e.upstream_latency_us);
            c.upstream_identity.push(e.upstream_identity.clone());
        }
        Ok(c)
    }
}

#[async_trait::async_trait]
impl AuditSink for PostgresSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, batch: &[Arc<AuditEvent>]) -> Result<(), AuditError> {
        if batch.is_empty() {
            return Ok(());
        }
        let c = Columns::from_batch(batch)?;
        let res = sqlx::query(INSERT)
            .bind(c.occurred_at)
            .bind(c.event_id)
            .bind(c.request_id)
            .bind(c.instance_id)
            .bind(c.api)
            .bind(c.method)
            .bind(c.path)
            .bind(c.route_id)
            .bind(c.principal_id)
            .bind(c.principal_kind)
            .bind(c.principal_issuer)
            .bind(c.groups)
            .bind(c.node_keys)
            .bind(c.verbs)
            .bind(c.decision)
            .bind(c.reason)
            .bind(c.reason_detail)
            .bind(c.granted_via)
            .bind(c.client_addr)
            .bind(c.user_agent)
            .bind(c.upstream_status)
            .bind(c.upstream_latency_us)
            .bind(c.upstream_identity)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_permanent(&e) => Err(AuditError::Rejected {
                sink: self.name.clone(),
                source: Box::new(e),
            }),
            Err(e) => Err(AuditError::SinkUnavailable {
                sink: self.name.clone(),
                source: Box::new(e),
            }),
        }
    }
}

/// Data errors (SQLSTATE class 22) and constraint violations (class 23) will fail again on
/// replay; everything else (connection, missing table, shutdown) may heal.
fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
        _ => false,
    }
}
