//! `PostgresStore`: the policy model in PostgreSQL. This module (with `apply.rs`, and
//! `mirror.rs`/`mirror_directory.rs` for the Umbraco mirror's writes) holds the only SQL in the
//! crate. Queries are runtime-checked (`sqlx::query`), timed and counted per query name; every
//! failure is a `StoreError::Database` and the caller fails closed.

mod apply;
mod export;
pub(crate) mod keys;
pub mod mirror;
mod mirror_directory;
pub mod mirror_languages;
pub mod mirror_public_access;
pub mod mirror_routes;
mod mirror_touch;
pub mod overrides;
mod rows;

pub use apply::{apply_policy, ApplyReport};
pub use export::export_policy;

use super::{
    parse_state, PolicyStore, StoreConfig, StoreError, StoreMetrics, UserRecord, MAX_ROUTE_MATCHES,
};
use crate::authn::ApiKeyRecord;
use crate::authz::{
    GroupPolicy, NodeId, NodeInfo, NodeKind, NodePath, PublicAccess, Section, VerbSet,
};
use crate::request::Api;
use crate::store::policy_file::ApiKeyEntry;
use async_trait::async_trait;
use rows::{group_entry, user_entry, user_start_columns, user_starts};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The embedded migrations (`migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Applies pending migrations (`portcullis migrate`, or `serve` with `migrate_on_start`), on a
/// connection of their own without the gateway's `statement_timeout` (closed afterwards).
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let db = |source| StoreError::Database {
        query: "migrate",
        source,
    };
    let mut conn = pool.acquire().await.map_err(db)?;
    sqlx::query("set statement_timeout = 0")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let result = MIGRATOR.run(&mut *conn).await.map_err(StoreError::Migrate);
    let _ = conn.close().await;
    result
}

/// Opens the gateway's pool from the config (URL from `database_url_env`).
pub fn connect(cfg: &StoreConfig) -> Result<PgPool, StoreError> {
    let url = cfg.database_url()?;
    let opts: PgConnectOptions = url.parse().map_err(|source| StoreError::Database {
        query: "connect",
        source,
    })?;
    Ok(connect_with(cfg, opts))
}

/// The gateway's pool for `opts`: connects lazily (a gateway starts during a database outage
/// and fails closed per request), waits `pool_acquire_timeout` for a connection, and every
/// statement has the server-side `statement_timeout` = `query_timeout`.
pub fn connect_with(cfg: &StoreConfig, opts: PgConnectOptions) -> PgPool {
    let ms = cfg.query_timeout.as_millis().max(1).to_string();
    PgPoolOptions::new()
        .max_connections(cfg.pool_max_connections)
        .acquire_timeout(cfg.pool_acquire_timeout)
        .connect_lazy_with(opts.options([("statement_timeout", ms.as_str())]))
}

/// The Postgres-backed [`PolicyStore`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    metrics: StoreMetrics,
    query_timeout: std::time::Duration,
}

impl PostgresStore {
    /// A store over `pool` whose queries (connection wait included) are cut after the default
    /// `store.query_timeout`; see [`PostgresStore::with_query_timeout`].
    pub fn new(pool: PgPool, metrics: StoreMetrics) -> Self {
        PostgresStore {
            pool,
            metrics,
            query_timeout: StoreConfig::default().query_timeout,
        }
    }

    /// Sets the client-side bound of every query (it also holds when the server cannot be
    /// reached at all, where `statement_timeout` never fires).
    pub fn with_query_timeout(mut self, t: std::time::Duration) -> Self {
        self.query_timeout = t;
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `q` under the timer and error counter named `name`, bounded by the query timeout.
    async fn timed<T>(
        &self,
        name: &'static str,
        q: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        let timer = self.metrics.time(name).start_timer();
        let r = tokio::time::timeout(self.query_timeout, q).await;
        timer.observe_duration();
        let e = match r {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(source)) => StoreError::Database {
                query: name,
                source,
            },
            Err(_) => StoreError::Timeout {
                query: name,
                after: self.query_timeout,
            },
        };
        self.metrics.store_errors.with_label_values(&[name]).inc();
        Err(e)
    }
}

const NODE_SELECT: &str = "select n.key, n.id, n.kind, n.path, n.trashed, n.route_path, \
     pa.node_key as pa_key, pa.member_groups, pa.member_usernames \
     from content_nodes n left join public_access pa on pa.node_key = n.key";

pub(crate) fn parse_kind(s: &str) -> Result<NodeKind, StoreError> {
    match s {
        "document" => Ok(NodeKind::Document),
        "media" => Ok(NodeKind::Media),
        "element" => Ok(NodeKind::Element),
        other => Err(StoreError::Corrupt {
            what: "node kind",
            value: other.to_owned(),
        }),
    }
}

pub(crate) fn parse_api(s: &str) -> Result<Api, StoreError> {
    match s {
        "management" => Ok(Api::Management),
        "delivery" => Ok(Api::Delivery),
        other => Err(StoreError::Corrupt {
            what: "api",
            value: other.to_owned(),
        }),
    }
}

/// One `api_keys` row as a policy-file entry plus the raw hash bytes: the one mapping used by
/// the request path (`api_key`) and by `policy export`.
pub(crate) fn api_key_row(r: &PgRow) -> Result<(ApiKeyEntry, Vec<u8>), StoreError> {
    let hash: Vec<u8> = r.try_get("hash").map_err(row_err)?;
    let apis: Vec<String> = r.try_get("apis").map_err(row_err)?;
    let rps: Option<i32> = r.try_get("rate_limit_rps").map_err(row_err)?;
    let previous: Option<Vec<u8>> = r.try_get("previous_hash").map_err(row_err)?;
    let entry = ApiKeyEntry {
        key_id: r.try_get("key_id").map_err(row_err)?,
        hash: hex::encode(&hash),
        name: r.try_get("name").map_err(row_err)?,
        owner: r.try_get("owner").map_err(row_err)?,
        apis: apis
            .iter()
            .map(|a| parse_api(a))
            .collect::<Result<_, _>>()?,
        subtree_roots: r.try_get("subtree_roots").map_err(row_err)?,
        cultures: r.try_get("cultures").map_err(row_err)?,
        preview: r.try_get("preview").map_err(row_err)?,
        acts_as: r.try_get("acts_as").map_err(row_err)?,
        rate_limit_rps: rps.and_then(|v| u32::try_from(v).ok()),
        expires_at: r.try_get("expires_at").map_err(row_err)?,
        revoked: r.try_get("revoked").map_err(row_err)?,
        previous_hash: previous.map(hex::encode),
        previous_expires_at: r.try_get("previous_expires_at").map_err(row_err)?,
    };
    Ok((entry, hash))
}

fn row_err(source: sqlx::Error) -> StoreError {
    StoreError::Database {
        query: "decode",
        source,
    }
}

fn node_from_row(r: &PgRow) -> Result<NodeInfo, StoreError> {
    let path: Vec<i64> = r.try_get("path").map_err(row_err)?;
    let kind: String = r.try_get("kind").map_err(row_err)?;
    let pa_key: Option<Uuid> = r.try_get("pa_key").map_err(row_err)?;
    let public_access = match pa_key {
        Some(_) => Some(Arc::new(PublicAccess {
            member_groups: r.try_get("member_groups").map_err(row_err)?,
            member_usernames: r.try_get("member_usernames").map_err(row_err)?,
        })),
        None => None,
    };
    Ok(NodeInfo {
        key: r.try_get("key").map_err(row_err)?,
        id: r.try_get("id").map_err(row_err)?,
        kind: parse_kind(&kind)?,
        path: NodePath(path.into()),
        trashed: r.try_get("trashed").map_err(row_err)?,
        route_path: r.try_get("route_path").map_err(row_err)?,
        public_access,
    })
}

/// A group start node from its root flag and the joined node's path/trashed columns.
fn start_from(root: bool, path: Option<Vec<i64>>, trashed: Option<bool>) -> Option<NodePath> {
    if root {
        return Some(NodePath::root());
    }
    // A trashed start node is ignored (UMBRACO.md §6): the group contributes nothing.
    match (path, trashed) {
        (Some(p), Some(false)) => Some(NodePath(p.into())),
        _ => None,
    }
}

#[async_trait]
impl PolicyStore for PostgresStore {
    async fn user_by_external_id(&self, ext: &str) -> Result<Option<UserRecord>, StoreError> {
        let q = sqlx::query(
            "select u.key, u.external_id, u.name, u.state, u.content_start_root, \
             u.content_start_keys, u.media_start_root, u.media_start_keys, \
             coalesce(array_agg(g.key order by g.alias) filter (where g.key is not null), '{}') \
               as group_keys, \
             coalesce(array_agg(g.alias order by g.alias) filter (where g.key is not null), '{}') \
               as group_aliases \
             from users u left join memberships m on m.user_key = u.key \
             left join user_groups g on g.key = m.group_key \
             where u.external_id = $1 group by u.key",
        )
        .bind(ext)
        .fetch_optional(&self.pool);
        let Some(r) = self.timed("user", q).await? else {
            return Ok(None);
        };
        let state: String = r.try_get("state").map_err(row_err)?;
        Ok(Some(UserRecord {
            key: r.try_get("key").map_err(row_err)?,
            external_id: r.try_get("external_id").map_err(row_err)?,
            name: r.try_get("name").map_err(row_err)?,
            state: parse_state(&state)?,
            group_keys: r.try_get("group_keys").map_err(row_err)?,
            group_aliases: r.try_get("group_aliases").map_err(row_err)?,
            content_start: user_starts(&r, "content")?,
            media_start: user_starts(&r, "media")?,
        }))
    }

    async fn user_external_id(&self, key: Uuid) -> Result<Option<String>, StoreError> {
        let q = sqlx::query_scalar("select external_id from users where key = $1")
            .bind(key)
            .fetch_optional(&self.pool);
        self.timed("user_key", q).await
    }

    async fn group(&self, key: Uuid) -> Result<Option<GroupPolicy>, StoreError> {
        let q = sqlx::query(
            "select g.key, g.alias, g.name, g.sections, g.default_verbs, g.all_languages, \
             g.languages, g.content_start_root, cn.path as content_path, \
             cn.trashed as content_trashed, g.media_start_root, mn.path as media_path, \
             mn.trashed as media_trashed, \
             coalesce((select json_agg(json_build_array(n.id, p.verbs)) \
                       from group_permissions p join content_nodes n on n.key = p.node_key \
                       where p.group_key = g.key), '[]') as granular \
             from user_groups g \
             left join content_nodes cn on cn.key = g.content_start_key \
             left join content_nodes mn on mn.key = g.media_start_key \
             where g.key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool);
        let Some(r) = self.timed("group", q).await? else {
            return Ok(None);
        };
        // Granular entries come in the same round trip, as `[[id, [verbs]], …]`.
        let entries: sqlx::types::Json<Vec<(NodeId, Vec<String>)>> =
            r.try_get("granular").map_err(row_err)?;
        let granular: HashMap<NodeId, VerbSet> = entries
            .0
            .into_iter()
            .map(|(id, verbs)| (id, verbs.iter().collect()))
            .collect();
        let sections: Vec<String> = r.try_get("sections").map_err(row_err)?;
        let verbs: Vec<String> = r.try_get("default_verbs").map_err(row_err)?;
        let languages: Vec<String> = r.try_get("languages").map_err(row_err)?;
        Ok(Some(GroupPolicy {
            key: r.try_get("key").map_err(row_err)?,
            alias: r.try_get::<&str, _>("alias").map_err(row_err)?.into(),
            name: r.try_get("name").map_err(row_err)?,
            sections: sections.iter().map(|s| Section::new(s)).collect(),
            default_verbs: verbs.iter().collect(),
            content_start: start_from(
                r.try_get("content_start_root").map_err(row_err)?,
                r.try_get("content_path").map_err(row_err)?,
                r.try_get("content_trashed").map_err(row_err)?,
            ),
            media_start: start_from(
                r.try_get("media_start_root").map_err(row_err)?,
                r.try_get("media_path").map_err(row_err)?,
                r.try_get("media_trashed").map_err(row_err)?,
            ),
            languages: super::file::languages(
                r.try_get("all_languages").map_err(row_err)?,
                &languages,
            ),
            granular,
        }))
    }

    async fn group_key_by_alias(&self, alias: &str) -> Result<Option<Uuid>, StoreError> {
        let q = sqlx::query_scalar("select key from user_groups where alias = $1")
            .bind(alias)
            .fetch_optional(&self.pool);
        self.timed("group_alias", q).await
    }

    async fn node(&self, key: Uuid) -> Result<Option<NodeInfo>, StoreError> {
        let sql = format!("{NODE_SELECT} where n.key = $1");
        let q = sqlx::query(&sql).bind(key).fetch_optional(&self.pool);
        self.timed("node", q)
            .await?
            .as_ref()
            .map(node_from_row)
            .transpose()
    }

    async fn node_by_id(&self, id: NodeId) -> Result<Option<NodeInfo>, StoreError> {
        let sql = format!("{NODE_SELECT} where n.id = $1");
        let q = sqlx::query(&sql).bind(id).fetch_optional(&self.pool);
        self.timed("node_by_id", q)
            .await?
            .as_ref()
            .map(node_from_row)
            .transpose()
    }

    async fn protected_nodes(&self) -> Result<Vec<NodeId>, StoreError> {
        // `public_access.node_key` references `content_nodes` (on delete cascade).
        let q = sqlx::query_scalar(
            "select n.id from public_access p join content_nodes n on n.key = p.node_key",
        )
        .fetch_all(&self.pool);
        self.timed("protected_nodes", q).await
    }

    async fn nodes_by_route(&self, key: &str) -> Result<Vec<NodeInfo>, StoreError> {
        // `portcullis_route_key` (migration 20261203170001) is `route_key` in SQL; its index
        // serves this query. Every live document with the key, not a guess among them.
        let sql = format!(
            "{NODE_SELECT} where portcullis_route_key(n.route_path) = $1 \
             and not n.trashed and n.kind = 'document' order by n.id limit $2"
        );
        let limit = i64::try_from(MAX_ROUTE_MATCHES).unwrap_or(16);
        let q = sqlx::query(&sql)
            .bind(key)
            .bind(limit)
            .fetch_all(&self.pool);
        self.timed("nodes_by_route", q)
            .await?
            .iter()
            .map(node_from_row)
            .collect()
    }

    async fn default_language(&self) -> Result<Option<String>, StoreError> {
        let q = sqlx::query_scalar(mirror_languages::DEFAULT_LANGUAGE).fetch_optional(&self.pool);
        self.timed("default_language", q).await
    }

    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let q = sqlx::query(
            "select key_id, hash, name, owner, apis, subtree_roots, cultures, preview, acts_as, \
             rate_limit_rps, expires_at, revoked, previous_hash, previous_expires_at \
             from api_keys where key_id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool);
        let Some(r) = self.timed("api_key", q).await? else {
            return Ok(None);
        };
        let (entry, hash) = api_key_row(&r)?;
        let hash: [u8; 32] = hash.try_into().map_err(|h: Vec<u8>| StoreError::Corrupt {
            what: "api key hash length",
            value: h.len().to_string(),
        })?;
        Ok(Some(crate::store::file::api_key_record(&entry, hash)))
    }

    async fn group_mappings(&self, issuer: &str) -> Result<Vec<(String, Uuid)>, StoreError> {
        let q = sqlx::query_as("select idp_group, group_key from group_mappings where issuer = $1")
            .bind(issuer)
            .fetch_all(&self.pool);
        self.timed("group_mappings", q).await
    }

    async fn touch_api_keys(
        &self,
        key_ids: &[String],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        if key_ids.is_empty() {
            return Ok(());
        }
        let q = sqlx::query(
            "update api_keys set last_used_at = $2 where key_id = any($1) \
             and (last_used_at is null or last_used_at < $2)",
        )
        .bind(key_ids)
        .bind(at)
        .execute(&self.pool);
        self.timed("touch_api_keys", q).await.map(|_| ())
    }
}
