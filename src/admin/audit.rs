//! `GET /v1/audit`: the audit trail of the Postgres audit sink, newest first, a page at a time
//! (`limit`, and `cursor` from the previous page's `next_cursor`), with the filters of
//! `portcullis audit query`. 501 when no Postgres audit sink is configured.

use super::http::{json, AdminError, AdminRequest, Reply};
use crate::audit::query::{query, AuditFilter};
use base64::Engine;
use chrono::{DateTime, Utc};
use http::StatusCode;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;
use uuid::Uuid;

/// Largest page.
pub const MAX_LIMIT: i64 = 1000;
/// How long one page may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A small lazy pool on the database of the first Postgres audit sink (its URL variable must be
/// set), for `GET /v1/audit`; `None` without one.
pub fn audit_pool(cfg: &crate::audit::AuditConfig) -> Option<PgPool> {
    let env = cfg.sinks.iter().find_map(|s| match s {
        crate::audit::SinkConfig::Postgres {
            database_url_env, ..
        } => Some(database_url_env),
        _ => None,
    })?;
    let url = std::env::var(env).ok()?;
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(&url)
        .map_err(
            |e| tracing::warn!(error = %e, "audit database url not usable; GET /v1/audit is off"),
        )
        .ok()
}

/// The opaque position after an event: base64url of `<RFC 3339 time>|<event id>`.
fn cursor_of(at: DateTime<Utc>, id: Uuid) -> String {
    let text = format!(
        "{}|{id}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid), AdminError> {
    let bad = || AdminError::bad("cursor", "is not a cursor from a previous page");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, id) = text.split_once('|').ok_or_else(bad)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad())?;
    Ok((at.with_timezone(&Utc), id.parse().map_err(|_| bad())?))
}

/// The filter of a request's query parameters; 400 naming the bad one.
fn filter(req: &AdminRequest) -> Result<AuditFilter, AdminError> {
    req.only_query(&["principal", "node", "since", "decision", "limit", "cursor"])?;
    let decision = req.query("decision")?.map(str::to_owned);
    if decision
        .as_deref()
        .is_some_and(|d| d != "allow" && d != "deny")
    {
        return Err(AdminError::bad("decision", "must be allow or deny"));
    }
    let limit = req.query_parsed::<i64>("limit")?.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AdminError::bad("limit", format!("must be 1..={MAX_LIMIT}")));
    }
    Ok(AuditFilter {
        principal: req.query("principal")?.map(str::to_owned),
        node: req.query_parsed::<Uuid>("node")?,
        since: req.query_parsed::<DateTime<Utc>>("since")?,
        decision,
        limit,
        before: req.query("cursor")?.map(parse_cursor).transpose()?,
    })
}

/// `GET /v1/audit`: `{"items": [event…], "next_cursor": "…" | null}`.
pub async fn audit(pool: Option<&PgPool>, req: &AdminRequest) -> Result<Reply, AdminError> {
    let mut f = filter(req)?;
    let pool = pool.ok_or(AdminError::NotConfigured {
        what: "a postgres audit sink",
    })?;
    let limit = f.limit;
    // One more than asked: whether there is a next page.
    f.limit += 1;
    let mut events = match tokio::time::timeout(QUERY_TIMEOUT, query(pool, &f)).await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => {
            tracing::error!(error = %crate::config::error_chain(&e), "audit query failed");
            return Err(AdminError::AuditUnavailable);
        }
        Err(_) => return Err(AdminError::AuditUnavailable),
    };
    let more = events.len() as i64 > limit;
    events.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more
        .then(|| events.last().map(|e| cursor_of(e.occurred_at, e.event_id)))
        .flatten();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"items": events, "next_cursor": next}),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_a_400_naming_it() {
        let at = Utc::now();
        let id = Uuid::now_v7();
        let (back_at, back_id) = parse_cursor(&cursor_of(at, id)).unwrap();
        assert_eq!(back_id, id);
        assert_eq!(back_at.timestamp_micros(), at.timestamp_micros());
        let e = parse_cursor("not a cursor").unwrap_err();
        assert_eq!(e.field(), Some("cursor"));
    }

    #[test]
    fn query_parameters_are_checked() {
        let req = |q: &[(&str, &str)]| AdminRequest {
            query: q.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            ..AdminRequest::default()
        };
        for (q, field) in [
            (vec![("decision", "maybe")], "decision"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "1001")], "limit"),
            (vec![("node", "x")], "node"),
            (vec![("since", "yesterday")], "since"),
            (vec![("colour", "red")], "colour"),
        ] {
            assert_eq!(filter(&req(&q)).unwrap_err().field(), Some(field), "{q:?}");
        }
        let f = filter(&req(&[("decision", "deny"), ("limit", "5")])).unwrap();
        assert_eq!((f.decision.as_deref(), f.limit), (Some("deny"), 5));
    }
}
