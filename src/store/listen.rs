//! Push invalidation: `LISTEN portcullis_policy` on a dedicated connection, turn each payload
//! (sent by the migration's triggers) into an [`Invalidation`] and apply it to the cache.
//!
//! The listener sends itself a heartbeat through the database every `listener_heartbeat`; one
//! that comes back confirms the cache current, none back within `listener_timeout` means the
//! connection is dead (a silent partition is found as surely as a reset). On connection loss
//! the cache falls back to short TTLs (`listener_up` false, metric `portcullis_listener_up 0`)
//! while the listener reconnects with exponential backoff; on every (re)connect the whole cache
//! is evicted because notifications sent meanwhile were lost.

use super::{PolicyCache, StoreError};
use crate::authz::NodeId;
use serde::Deserialize;
use sqlx::postgres::{PgListener, PgPool};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The notification channel the triggers send on.
pub const CHANNEL: &str = "portcullis_policy";

/// What changed, as far as the cache is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A user row (its external id, old and new, and key).
    User {
        key: Uuid,
        external_ids: Vec<String>,
    },
    /// A user's memberships.
    Membership {
        user_key: Uuid,
    },
    /// A group row or one of its granular entries.
    Group {
        key: Uuid,
    },
    /// A content node inserted, changed (moved, trashed, renamed) or deleted: evict its subtree.
    Node {
        key: Uuid,
        ids: Vec<NodeId>,
        routes: Vec<String>,
    },
    /// Too many nodes changed in one statement to list: evict every node-derived entry.
    NodesFlush,
    /// Member protection on a node.
    PublicAccess {
        node_key: Uuid,
    },
    ApiKey {
        key_ids: Vec<String>,
    },
    /// The stored group mappings of an issuer (its configured name).
    GroupMappings {
        issuer: String,
    },
    /// A mirrored language (the default one is what the Delivery decision may need).
    Languages,
    /// An unreadable payload: evict everything rather than guess.
    All,
}

#[derive(Deserialize)]
struct Payload {
    table: String,
    op: String,
    key: Option<serde_json::Value>,
    external_id: Option<String>,
    old_external_id: Option<String>,
    user_key: Option<Uuid>,
    group_key: Option<Uuid>,
    node_key: Option<Uuid>,
    key_id: Option<String>,
    old_key_id: Option<String>,
    issuer: Option<String>,
    old_issuer: Option<String>,
    id: Option<NodeId>,
    old_id: Option<NodeId>,
    route_path: Option<String>,
    old_route_path: Option<String>,
}

impl Invalidation {
    /// Parses a trigger payload; anything unexpected becomes [`Invalidation::All`] (fail safe).
    pub fn parse(payload: &str) -> Invalidation {
        let Ok(p) = serde_json::from_str::<Payload>(payload) else {
            return Invalidation::All;
        };
        let key = p
            .key
            .as_ref()
            .and_then(|k| k.as_str())
            .and_then(|k| Uuid::parse_str(k).ok());
        let both =
            |a: Option<String>, b: Option<String>| a.into_iter().chain(b).collect::<Vec<_>>();
        match (p.table.as_str(), key) {
            ("users", Some(key)) => Invalidation::User {
                key,
                external_ids: both(p.external_id, p.old_external_id),
            },
            ("memberships", _) => match p.user_key {
                Some(user_key) => Invalidation::Membership { user_key },
                None => Invalidation::All,
            },
            ("user_groups", Some(key)) => Invalidation::Group { key },
            ("group_permissions", _) => match p.group_key {
                Some(key) => Invalidation::Group { key },
                None => Invalidation::All,
            },
            ("public_access", _) => match p.node_key {
                Some(node_key) => Invalidation::PublicAccess { node_key },
                None => Invalidation::All,
            },
            ("api_keys", _) => Invalidation::ApiKey {
                key_ids: both(p.key_id, p.old_key_id),
            },
            ("group_mappings", _) => match (p.issuer, p.old_issuer) {
                (Some(issuer), None) => Invalidation::GroupMappings { issuer },
                _ => Invalidation::All,
            },
            ("languages", _) => Invalidation::Languages,
            ("content_nodes", _) if p.op == "flush" => Invalidation::NodesFlush,
            ("content_nodes", Some(key)) => {
                let mut ids: Vec<NodeId> = p.id.into_iter().chain(p.old_id).collect();
                ids.dedup();
                Invalidation::Node {
                    key,
                    ids,
                    routes: both(p.route_path, p.old_route_path),
                }
            }
            _ => Invalidation::All,
        }
    }

    /// The table label for `portcullis_invalidations_total`.
    pub fn table(&self) -> &'static str {
        match self {
            Invalidation::User { .. } => "users",
            Invalidation::Membership { .. } => "memberships",
            Invalidation::Group { .. } => "user_groups",
            Invalidation::Node { .. } | Invalidation::NodesFlush => "content_nodes",
            Invalidation::PublicAccess { .. } => "public_access",
            Invalidation::ApiKey { .. } => "api_keys",
            Invalidation::GroupMappings { .. } => "group_mappings",
            Invalidation::Languages => "languages",
            Invalidation::All => "unknown",
        }
    }
}

/// Keeps a cache in step with the database. Spawn once per gateway.
pub struct Listener {
    pool: PgPool,
    cache: PolicyCache,
    max_backoff: Duration,
    heartbeat: Duration,
    timeout: Duration,
    /// This listener's own heartbeat channel (`portcullis_hb_<random>`).
    heartbeat_channel: String,
}

/// What woke the listen loop.
enum Wake {
    Message(Result<Option<sqlx::postgres::PgNotification>, sqlx::Error>),
    Beat,
    Silent,
}

impl Listener {
    /// A listener that sends itself a heartbeat every `heartbeat` and declares the connection
    /// dead when none has come back for `timeout` (see [`Listener::session`]).
    pub fn new(pool: PgPool, cache: PolicyCache, heartbeat: Duration, timeout: Duration) -> Self {
        Listener {
            pool,
            cache,
            max_backoff: Duration::from_secs(10),
            heartbeat,
            timeout,
            heartbeat_channel: format!("portcullis_hb_{:016x}", rand::random::<u64>()),
        }
    }

    /// Runs the listen loop on a task until the handle is aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.session().await {
                // The connection dropped after working: reconnect at once.
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "policy listener cannot connect");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }

    /// One connection's life: connect, listen, evict everything (messages may have been
    /// missed), then apply messages until the connection is lost or goes silent.
    ///
    /// Liveness: every `heartbeat` the listener runs `pg_notify` on its own channel over its
    /// own connection. Postgres delivers notifications in commit order, so when the heartbeat
    /// sent at `t` comes back every change committed before `t` has been applied: the cache is
    /// confirmed current as of `t`. No heartbeat back within `timeout` (a silent partition, a
    /// hung server) ends the session like a reset connection does.
    async fn session(&self) -> Result<(), StoreError> {
        let db = |query| move |source| StoreError::Database { query, source };
        let mut l = within(
            self.timeout,
            "listen_connect",
            PgListener::connect_with(&self.pool),
        )
        .await?
        .map_err(db("listen_connect"))?;
        // A lost connection ends the session (to evict and report), never a silent reconnect.
        l.eager_reconnect(false);
        let channels = [CHANNEL, self.heartbeat_channel.as_str()];
        within(self.timeout, "listen", l.listen_all(channels))
            .await?
            .map_err(db("listen"))?;
        let connected = Instant::now();
        self.cache.invalidate_all();
        self.cache.confirm_current(connected);
        self.cache.set_push_invalidation(true);
        tracing::info!(channel = CHANNEL, "policy listener connected");
        let result = self.listen(&mut l, connected).await;
        self.cache.set_push_invalidation(false);
        tracing::warn!(
            channel = CHANNEL,
            error = result.as_ref().err().map(tracing::field::display),
            "policy listener lost its connection; short ttls in force"
        );
        result
    }

    /// Applies messages and exchanges heartbeats until the connection fails.
    async fn listen(&self, l: &mut PgListener, connected: Instant) -> Result<(), StoreError> {
        let mut seq: u64 = 0;
        // The heartbeat in flight: its sequence number and when it was sent.
        let mut pending: Option<(u64, Instant)> = None;
        let mut last_back = connected;
        let mut next_beat = connected + self.heartbeat;
        loop {
            let silent_at = last_back + self.timeout;
            let wake = tokio::select! {
                m = l.try_recv() => Wake::Message(m),
                _ = tokio::time::sleep_until(next_beat.into()) => Wake::Beat,
                _ = tokio::time::sleep_until(silent_at.into()) => Wake::Silent,
            };
            match wake {
                Wake::Message(Ok(Some(n))) if n.channel() == self.heartbeat_channel => {
                    if let Some((s, sent)) = pending {
                        if n.payload() == s.to_string() {
                            self.cache.confirm_current(sent);
                            last_back = Instant::now();
                            pending = None;
                        }
                    }
                }
                Wake::Message(Ok(Some(n))) => {
                    self.cache.apply(&Invalidation::parse(n.payload())).await;
                }
                // `None`: the connection was lost.
                Wake::Message(Ok(None)) => return Ok(()),
                Wake::Message(Err(e)) => {
                    return Err(StoreError::Database {
                        query: "listen_recv",
                        source: e,
                    })
                }
                Wake::Beat => {
                    if pending.is_none() {
                        seq += 1;
                        let sent = Instant::now();
                        let q = sqlx::query("select pg_notify($1, $2)")
                            .bind(&self.heartbeat_channel)
                            .bind(seq.to_string())
                            .execute(&mut *l);
                        within(self.timeout, "listen_heartbeat", q)
                            .await?
                            .map_err(|source| StoreError::Database {
                                query: "listen_heartbeat",
                                source,
                            })?;
                        pending = Some((seq, sent));
                    }
                    next_beat = Instant::now() + self.heartbeat;
                }
                Wake::Silent => {
                    return Err(StoreError::Timeout {
                        query: "listen_heartbeat",
                        after: self.timeout,
                    })
                }
            }
        }
    }
}

/// `f` bounded by `after`; a timeout is `StoreError::Timeout` named `query`.
async fn within<T>(
    after: Duration,
    query: &'static str,
    f: impl std::future::Future<Output = T>,
) -> Result<T, StoreError> {
    tokio::time::timeout(after, f)
        .await
        .map_err(|_| StoreError::Timeout { query, after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_node_payload_names_its_ids_and_routes() {
        let inv = Invalidation::parse(
            r#"{"table":"content_nodes","op":"update","key":"00000000-0000-0000-0000-000000000001",
                "id":1051,"old_id":1051,"route_path":"/b/","old_route_path":"/a/"}"#,
        );
        assert_eq!(
            inv,
            Invalidation::Node {
                key: Uuid::from_u128(1),
                ids: vec![1051],
                routes: vec!["/b/".into(), "/a/".into()],
            }
        );
    }

    #[test]
    fn a_renamed_user_evicts_both_external_ids() {
        let inv = Invalidation::parse(
            r#"{"table":"users","op":"update","key":"00000000-0000-0000-0000-000000000002",
                "external_id":"new","old_external_id":"old"}"#,
        );
        assert_eq!(
            inv,
            Invalidation::User {
                key: Uuid::from_u128(2),
                external_ids: vec!["new".into(), "old".into()]
            }
        );
    }

    #[test]
    fn a_permission_change_evicts_its_group() {
        let inv = Invalidation::parse(
            r#"{"table":"group_permissions","op":"delete","group_key":"00000000-0000-0000-0000-000000000003","node_key":"00000000-0000-0000-0000-000000000004"}"#,
        );
        assert_eq!(
            inv,
            Invalidation::Group {
                key: Uuid::from_u128(3)
            }
        );
    }

    #[test]
    fn an_unreadable_payload_evicts_everything() {
        assert_eq!(Invalidation::parse("not json"), Invalidation::All);
        assert_eq!(
            Invalidation::parse(r#"{"table":"mystery","op":"x"}"#),
            Invalidation::All
        );
    }
}
