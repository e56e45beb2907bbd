//! `portcullis audit query`: reads `audit_events` with optional filters, newest first, and
//! formats the result as a table or JSON lines.

use super::{AuditError, AuditEvent, Word};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::Row;
use std::sync::Arc;
use uuid::Uuid;

/// Filters for [`query`]; `None` means "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exact principal id (`jwt:{issuer}#{subject}`, `key:{id}`, `anonymous`).
    pub principal: Option<String>,
    /// Events whose checks named this node key.
    pub node: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// Most rows returned (clamped to 1..=10000).
    pub limit: i64,
    /// Only events strictly older than this (time, event id) position: the page after it.
    pub before: Option<(DateTime<Utc>, Uuid)>,
}

impl Default for AuditFilter {
    fn default() -> Self {
        AuditFilter {
            principal: None,
            node: None,
            since: None,
            decision: None,
            limit: 100,
            before: None,
        }
    }
}

const SELECT: &str = r#"
SELECT occurred_at, event_id, request_id, instance_id, api, method, path, route_id,
    principal_id, principal_kind, principal_issuer, groups, node_keys, verbs,
    decision, reason, reason_detail, granted_via, host(client_addr) AS client_addr, user_agent,
    upstream_status, upstream_latency_us, upstream_identity
FROM audit_events
WHERE ($1::text IS NULL OR principal_id = $1)
  AND ($2::uuid IS NULL OR node_keys @> ARRAY[$2::uuid])
  AND ($3::timestamptz IS NULL OR occurred_at >= $3)
  AND ($4::text IS NULL OR decision = $4)
  AND ($6::timestamptz IS NULL OR (occurred_at, event_id) < ($6, $7::uuid))
ORDER BY occurred_at DESC, event_id DESC
LIMIT $5
"#;

/// Events matching `filter`, newest first.
pub async fn query(pool: &PgPool, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
    let rows = sqlx::query(SELECT)
        .bind(filter.principal.as_deref())
        .bind(filter.node)
        .bind(filter.since)
        .bind(filter.decision.as_deref())
        .bind(filter.limit.clamp(1, 10_000))
        .bind(filter.before.map(|b| b.0))
        .bind(filter.before.map(|b| b.1))
        .fetch_all(pool)
        .await
        .map_err(AuditError::Query)?;
    rows.iter().map(from_row).collect()
}

/// A stored optional vocabulary field.
fn owned(v: Option<String>) -> Option<Word> {
    v.map(Word::Owned)
}

/// A stored list of names shared on the request path (groups, verbs).
fn shared(v: Vec<String>) -> Vec<Arc<str>> {
    v.into_iter().map(Arc::from).collect()
}

fn from_row(r: &sqlx::postgres::PgRow) -> Result<AuditEvent, AuditError> {
    let get_err = AuditError::Query;
    let addr: Option<String> = r.try_get("client_addr").map_err(get_err)?;
    let status: Option<i32> = r.try_get("upstream_status").map_err(get_err)?;
    Ok(AuditEvent {
        occurred_at: r.try_get("occurred_at").map_err(get_err)?,
        event_id: r.try_get("event_id").map_err(get_err)?,
        request_id: r.try_get("request_id").map_err(get_err)?,
        instance_id: Arc::from(r.try_get::<String, _>("instance_id").map_err(get_err)?),
        api: owned(r.try_get("api").map_err(get_err)?),
        method: Word::Owned(r.try_get::<String, _>("method").map_err(get_err)?),
        path: r.try_get("path").map_err(get_err)?,
        route_id: r
            .try_get::<Option<String>, _>("route_id")
            .map_err(get_err)?
            .map(Arc::from),
        principal_id: r
            .try_get::<Option<String>, _>("principal_id")
            .map_err(get_err)?
            .map(Arc::from),
        principal_kind: Word::Owned(r.try_get::<String, _>("principal_kind").map_err(get_err)?),
        principal_issuer: r
            .try_get::<Option<String>, _>("principal_issuer")
            .map_err(get_err)?
            .map(Arc::from),
        groups: shared(r.try_get("groups").map_err(get_err)?),
        node_keys: r.try_get("node_keys").map_err(get_err)?,
        verbs: shared(r.try_get("verbs").map_err(get_err)?),
        decision: Word::Owned(r.try_get::<String, _>("decision").map_err(get_err)?),
        reason: owned(r.try_get("reason").map_err(get_err)?),
        reason_detail: owned(r.try_get("reason_detail").map_err(get_err)?),
        granted_via: r.try_get("granted_via").map_err(get_err)?,
        // host() of a stored inet always parses; an unparsable value is shown as absent.
        client_addr: addr.and_then(|a| a.parse().ok()),
        user_agent: r.try_get("user_agent").map_err(get_err)?,
        upstream_status: status.and_then(|s| u16::try_from(s).ok()),
        upstream_latency_us: r.try_get("upstream_latency_us").map_err(get_err)?,
        upstream_identity: r.try_get("upstream_identity").map_err(get_err)?,
    })
}

/// One JSON object per line (`--json`).
pub fn format_json(events: &[AuditEvent]) -> Result<String, AuditError> {
    let mut out = String::new();
    for e in events {
        out.push_str(&serde_json::to_string(e).map_err(AuditError::Encode)?);
        out.push('\n');
    }
    Ok(out)
}

/// A fixed-column text table for terminals.
pub fn format_table(events: &[AuditEvent]) -> String {
    let header = [
        "TIME",
        "DECISION",
        "REASON",
        "METHOD",
        "PATH",
        "ROUTE",
        "PRINCIPAL",
        "STATUS",
        "EVENT",
    ];
    let rows: Vec<[String; 9]> = events
        .iter()
        .map(|e| {
            let reason = match (&e.reason, &e.reason_detail) {
                (Some(r), Some(d)) => format!("{r}/{d}"),
                (Some(r), None) => r.to_string(),
                _ => "-".to_owned(),
            };
            [
                e.occurred_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                e.decision.to_string(),
                reason,
                e.method.to_string(),
                e.path.clone(),
                e.route_id.as_deref().unwrap_or("-").to_owned(),
                e.principal_id.as_deref().unwrap_or("-").to_owned(),
                e.upstream_status
                    .map_or_else(|| "-".into(), |s| s.to_string()),
                e.event_id.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = cells.zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for r in &rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}
