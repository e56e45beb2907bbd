//! The Umbraco mirror's writes (docs/MIRROR.md): a whole tree, the user groups or the users
//! replaced by what Umbraco holds, each in one transaction (nothing changes when any statement
//! fails), touching only rows the mirror owns (docs/STORE.md "Who owns which rows"): nodes of
//! the synced kind, `origin = 'umbraco'` groups, users, memberships and granular entries.
//! Unchanged rows are not written, so the `NOTIFY` triggers evict only what changed.

use super::StoreError;
use crate::authz::{NodeKind, CONTENT_RECYCLE_BIN_ID, MEDIA_RECYCLE_BIN_ID};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::postgres::PgPool;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use std::time::Duration;
use uuid::Uuid;

pub use super::mirror_directory::{replace_groups, replace_users};
pub use super::mirror_touch::Ticket;
use super::mirror_touch::{merge_newer_nodes, newer, settle, Touch};

/// A node as the mirror learnt it: its parent (`None` at the top of the tree or of the recycle
/// bin) and, for a top node, whether it lies in the recycle bin. Paths and the mirror's int
/// ids are computed by the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorNode {
    pub key: Uuid,
    pub parent: Option<Uuid>,
    pub trashed: bool,
}

/// A granular entry of a mirrored group (`verbs` may be empty: a real "nothing here").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorEntry {
    pub group: Uuid,
    pub node: Uuid,
    pub verbs: Vec<String>,
}

/// A mirrored user: its row (`entry.groups` is not used) and the keys of its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorUser {
    pub entry: crate::store::policy_file::UserEntry,
    pub groups: Vec<Uuid>,
}

/// What one replace changed. `skipped` names rows left alone: a local row owns the key, alias
/// or external id, or an entry names a node the mirror does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KindReport {
    pub seen: u64,
    pub inserted: u64,
    /// Rows updated; for groups and users, each group or user whose row, granular entries or
    /// memberships changed, counted once.
    pub updated: u64,
    pub deleted: u64,
    /// Rows left as a webhook wrote them after this writer began to read (`mirror_touch`).
    #[serde(skip_serializing_if = "is_zero")]
    pub newer: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl KindReport {
    /// `inserted + updated + deleted`.
    pub fn changed(&self) -> u64 {
        self.inserted + self.updated + self.deleted
    }
}

pub(super) fn db(query: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { query, source }
}

/// Which rows of a kind a replace covers: all of them (full sync: rows not given are
/// deleted), or only these keys (a webhook's refresh: those not given are deleted, others kept).
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    All,
    Only(&'a [Uuid]),
}

impl Scope<'_> {
    /// The keys a delete may touch (`None`: any).
    pub(super) fn keys(&self) -> Option<&[Uuid]> {
        match self {
            Scope::All => None,
            Scope::Only(k) => Some(k),
        }
    }
}

/// Mirror writes are serialised (one transaction at a time across gateways): a webhook's
/// subtree rewrite must not interleave with another move or a sync's apply.
pub const MIRROR_LOCK: i64 = 0x0070_6f72_746d_6972;

/// A full sync's round (the `serve` job) holds this session lock from its first read to its
/// last apply, so that one replica syncs at a time. It is not [`MIRROR_LOCK`]: the round's
/// applies take that one on other connections, and webhooks must not wait for a whole round.
pub const SYNC_LOCK: i64 = 0x0070_6f72_7473_796e;

/// The round lock, held on a connection of its own (taken out of the pool): when the holder
/// goes away without [`release`](SyncRound::release) — a cancelled task, a process exit — the
/// connection closes and Postgres releases the lock with it.
pub struct SyncRound {
    conn: sqlx::PgConnection,
}

impl SyncRound {
    /// Takes the round lock if no other session holds it (`None`: another round is running).
    pub async fn try_begin(pool: &PgPool) -> Result<Option<SyncRound>, StoreError> {
        let mut conn = pool
            .acquire()
            .await
            .map_err(db("mirror_round_connect"))?
            .detach();
        let got: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(SYNC_LOCK)
            .fetch_one(&mut conn)
            .await
            .map_err(db("mirror_round_lock"))?;
        Ok(got.then_some(SyncRound { conn }))
    }

    /// Releases the lock and closes the connection (an error closes it all the same).
    pub async fn release(mut self) {
        let _ = sqlx::query("select pg_advisory_unlock($1)")
            .bind(SYNC_LOCK)
            .execute(&mut self.conn)
            .await;
        let _ = sqlx::Connection::close(self.conn).await;
    }
}

/// Whether the store holds a node the mirror numbered (an id from `content_node_mirror_ids`):
/// `false` for a store that was never synced, or whose nodes all come from a policy file.
pub async fn has_mirrored_nodes(pool: &PgPool) -> Result<bool, StoreError> {
    sqlx::query_scalar(
        "select exists (select 1 from content_nodes where id >= \
         (select start_value from pg_sequences where sequencename = 'content_node_mirror_ids'))",
    )
    .fetch_one(pool)
    .await
    .map_err(db("mirror_has_nodes"))
}

/// Rows per statement when loading nodes (bounded parameter size).
const BATCH: usize = 10_000;

/// Opens the transaction of one kind with `statement_timeout` = `timeout`, holding the
/// mirror's write lock.
pub(super) async fn begin(
    pool: &PgPool,
    timeout: Duration,
) -> Result<Transaction<'_, Postgres>, StoreError> {
    let mut tx = begin_read(pool, timeout).await?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(MIRROR_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db("mirror_lock"))?;
    Ok(tx)
}

/// Opens a transaction with `statement_timeout` = `timeout` (`sync.apply_timeout`) instead of
/// the pool's `store.query_timeout`, which bounds the request path's look-ups: the mirror's
/// reads of whole subtrees are not request-path work.
pub(super) async fn begin_read(
    pool: &PgPool,
    timeout: Duration,
) -> Result<Transaction<'_, Postgres>, StoreError> {
    let mut tx = pool.begin().await.map_err(db("mirror_begin"))?;
    let ms = timeout.as_millis().max(1);
    sqlx::query(&format!("set local statement_timeout = {ms}"))
        .execute(&mut *tx)
        .await
        .map_err(db("mirror_timeout"))?;
    Ok(tx)
}

pub(super) fn bin_of(kind: NodeKind) -> i64 {
    match kind {
        NodeKind::Media => MEDIA_RECYCLE_BIN_ID,
        NodeKind::Document | NodeKind::Element => CONTENT_RECYCLE_BIN_ID,
    }
}

/// Makes the mirror's `kind` tree exactly `nodes`: inserts new nodes, moves, trashes and
/// restores existing ones (a changed path clears the node's route, which no longer names it)
/// and deletes nodes of that kind Umbraco no longer has. Every parent must be in `nodes`.
/// Nodes a webhook touched after `ticket` stay as the webhook left them (`mirror_touch`).
pub async fn replace_tree(
    pool: &PgPool,
    kind: NodeKind,
    nodes: &[MirrorNode],
    ticket: Ticket,
    timeout: Duration,
) -> Result<KindReport, StoreError> {
    let mut tx = begin(pool, timeout).await?;
    let report = replace_tree_in(&mut tx, kind, nodes, ticket).await?;
    tx.commit().await.map_err(db("mirror_commit"))?;
    Ok(report)
}

/// [`replace_tree`] inside the caller's transaction (the document tree is applied with its
/// routes, `mirror_routes::replace_documents`).
pub(super) async fn replace_tree_in(
    tx: &mut Transaction<'_, Postgres>,
    kind: NodeKind,
    nodes: &[MirrorNode],
    ticket: Ticket,
) -> Result<KindReport, StoreError> {
    load_nodes(tx, nodes).await?;
    let newer = newer(tx, Touch::Node, ticket).await?;
    let left = merge_newer_nodes(tx, kind, ticket, &newer).await?;
    let mut report = write_nodes(tx, kind).await?;
    report.seen = nodes.len() as u64;
    report.newer = left;
    let deleted = sqlx::query(
        "delete from content_nodes c where c.kind = $1 \
         and not exists (select 1 from mirror_nodes m where m.key = c.key)",
    )
    .bind(kind.as_str())
    .execute(&mut **tx)
    .await
    .map_err(db("mirror_delete_nodes"))?;
    report.deleted = deleted.rows_affected();
    settle(tx, Touch::Node, ticket, &[]).await?;
    if report.changed() > 0 {
        // Fresh planner statistics for the tree a sync just (re)wrote: with those of the
        // empty store, a move webhook's descendant rewrite was planned as a nested loop over
        // every node (10 s for a 1,000-node subtree in 50,000) until autovacuum caught up.
        sqlx::query("analyze content_nodes")
            .execute(&mut **tx)
            .await
            .map_err(db("mirror_analyze_nodes"))?;
    }
    Ok(report)
}

/// Refreshes nodes of `kind` from their current ancestry (webhooks): deletes `gone` nodes with
/// their subtrees, upserts `chains` (every node with its parent; all parents included) and
/// rewrites the paths of their mirrored descendants, so a moved, trashed or restored subtree
/// follows its root whatever order the deliveries come in. Nodes a webhook touched after
/// `ticket` stay as they are; the others are recorded as touched with `ticket`.
pub async fn refresh_nodes(
    pool: &PgPool,
    kind: NodeKind,
    chains: &[MirrorNode],
    gone: &[Uuid],
    ticket: Ticket,
    timeout: Duration,
) -> Result<KindReport, StoreError> {
    let mut tx = begin(pool, timeout).await?;
    let newer = newer(&mut tx, Touch::Node, ticket).await?;
    let deleted = sqlx::query(
        "delete from content_nodes where kind = $1 and key = any($2) and not (key = any($3))",
    )
    .bind(kind.as_str())
    .bind(gone)
    .bind(&newer)
    .execute(&mut *tx)
    .await
    .map_err(db("mirror_delete_nodes"))?;
    load_nodes(&mut tx, chains).await?;
    let left = merge_newer_nodes(&mut tx, kind, ticket, &newer).await?;
    sqlx::query(
        "create temp table mirror_old_paths on commit drop as \
         select c.key, c.path from content_nodes c join mirror_nodes m on m.key = c.key",
    )
    .execute(&mut *tx)
    .await
    .map_err(db("mirror_old_paths"))?;
    let mut report = write_nodes(&mut tx, kind).await?;
    report.seen = chains.len() as u64;
    report.deleted = deleted.rows_affected();
    // Each descendant takes its new path from its nearest refreshed ancestor whose path changed
    // (old paths name the ancestors by id, and ids never change); the subtrees of unchanged
    // ancestors — a chain's upper part — are not visited.
    let moved = sqlx::query(
        "update content_nodes d set path = x.path, trashed = x.path[2] = $2, \
           route_path = null, updated_at = now() \
         from (select distinct on (d.key) d.key, \
                 p.path || d.path[array_position(d.path, p.id) + 1:] as path \
               from mirror_old_paths o join content_nodes p \
                 on p.key = o.key and p.path is distinct from o.path \
               join content_nodes d on d.path @> array[p.id] and d.key <> p.key \
               where d.kind = $1 \
                 and not exists (select 1 from mirror_nodes m2 where m2.key = d.key) \
               order by d.key, array_position(d.path, p.id) desc) x \
         where d.key = x.key and d.path is distinct from x.path",
    )
    .bind(kind.as_str())
    .bind(bin_of(kind))
    .execute(&mut *tx)
    .await
    .map_err(db("mirror_move_subtrees"))?;
    report.updated += moved.rows_affected();
    let newer: std::collections::HashSet<Uuid> = newer.into_iter().collect();
    let touched: Vec<Uuid> = (gone.iter().copied())
        .chain(chains.iter().map(|n| n.key))
        .filter(|k| !newer.contains(k))
        .collect();
    report.newer = left + gone.iter().filter(|k| newer.contains(k)).count() as u64;
    settle(&mut tx, Touch::Node, ticket, &touched).await?;
    tx.commit().await.map_err(db("mirror_commit"))?;
    Ok(report)
}

/// Fills the transaction's `mirror_nodes` table and checks that every parent is in it.
pub(super) async fn load_nodes(
    tx: &mut Transaction<'_, Postgres>,
    nodes: &[MirrorNode],
) -> Result<(), StoreError> {
    sqlx::query(
        "create temp table mirror_nodes (key uuid primary key, parent_key uuid, \
         trashed boolean not null) on commit drop",
    )
    .execute(&mut **tx)
    .await
    .map_err(db("mirror_temp_nodes"))?;
    for chunk in nodes.chunks(BATCH) {
        let rows: Vec<Value> = chunk
            .iter()
            .map(|n| json!({"key": n.key, "parent_key": n.parent, "trashed": n.trashed}))
            .collect();
        sqlx::query(
            "insert into mirror_nodes select * from jsonb_to_recordset($1) \
             as x(key uuid, parent_key uuid, trashed boolean)",
        )
        .bind(Json(rows))
        .execute(&mut **tx)
        .await
        .map_err(db("mirror_load_nodes"))?;
    }
    let orphans: i64 = sqlx::query_scalar(
        "select count(*) from mirror_nodes m where m.parent_key is not null \
         and not exists (select 1 from mirror_nodes p where p.key = m.parent_key)",
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(db("mirror_check_nodes"))?;
    if orphans > 0 {
        return Err(StoreError::InvalidPolicy(vec![format!(
            "{orphans} synced node(s) name a parent that was not synced"
        )]));
    }
    Ok(())
}

/// Upserts `mirror_nodes` into `content_nodes` with paths computed from the parent chain; a
/// node keeps its int id, a new node draws one from `content_node_mirror_ids`.
pub(super) async fn write_nodes(
    tx: &mut Transaction<'_, Postgres>,
    kind: NodeKind,
) -> Result<KindReport, StoreError> {
    let row = sqlx::query(
        "with recursive ids as materialized ( \
           select m.key, m.parent_key, m.trashed, \
                  coalesce(c.id, nextval('content_node_mirror_ids')) as id \
           from mirror_nodes m left join content_nodes c on c.key = m.key), \
         t as ( \
           select i.key, i.parent_key, i.id, case when i.parent_key is not null \
                  then (select p.path from content_nodes p where p.key = i.parent_key) || i.id \
                  when i.trashed then array[-1, $2, i.id] \
                  else array[-1, i.id] end::bigint[] as path \
           from ids i \
           where i.parent_key is null \
              or not exists (select 1 from mirror_nodes m where m.key = i.parent_key) \
           union all \
           select i.key, i.parent_key, i.id, t.path || i.id from ids i join t on i.parent_key = t.key), \
         up as ( \
           insert into content_nodes (key, id, parent_key, path, kind, trashed) \
           select key, id, parent_key, path, $1, path[2] = $2 from t \
           on conflict (key) do update set parent_key = excluded.parent_key, \
             path = excluded.path, kind = excluded.kind, trashed = excluded.trashed, \
             route_path = case when content_nodes.path = excluded.path \
                          then content_nodes.route_path end, \
             updated_at = now() \
           where (content_nodes.parent_key, content_nodes.path, content_nodes.kind, \
                  content_nodes.trashed) is distinct from \
                 (excluded.parent_key, excluded.path, excluded.kind, excluded.trashed) \
           returning (xmax = 0) as inserted) \
         select (select count(*) from mirror_nodes) - (select count(*) from t) as unreached, \
                count(*) filter (where inserted) as inserted, \
                count(*) filter (where not inserted) as updated from up",
    )
    .bind(kind.as_str())
    .bind(bin_of(kind))
    .fetch_one(&mut **tx)
    .await
    .map_err(db("mirror_write_nodes"))?;
    let count = |name: &str| -> Result<u64, StoreError> {
        let v: i64 = row.try_get(name).map_err(super::row_err)?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    if count("unreached")? > 0 {
        // A cycle between what this writer read and what a newer webhook wrote: retry later.
        return Err(StoreError::InvalidPolicy(vec![
            "the tree changed while it was applied (a webhook moved a node meanwhile); retry"
                .into(),
        ]));
    }
    Ok(KindReport {
        inserted: count("inserted")?,
        updated: count("updated")?,
        ..KindReport::default()
    })
}
