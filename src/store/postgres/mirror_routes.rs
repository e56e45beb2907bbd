//! The mirror's writes of Delivery routes (`content_nodes.route_path`, `src/mirror/routes.rs`):
//! with the document tree in the full sync's one transaction, or on their own after a webhook.
//! A route is written only onto a live document still at the depth it was read for, and not
//! below (or onto) a document a webhook touched after the writer's ticket (`mirror_touch`): that
//! webhook read Umbraco later and refreshes the routes of its subtree itself. Unchanged routes
//! are not written, so a second sync evicts nothing.

use super::mirror::{begin, begin_read, db, replace_tree_in, KindReport, MirrorNode, Ticket};
use super::mirror_touch::{newer, Touch};
use super::StoreError;
use crate::authz::NodeKind;
use serde_json::{json, Value};
use sqlx::postgres::PgPool;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

/// A document's route as read (`None`: no route), for the depth it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorRoute {
    pub key: Uuid,
    pub depth: usize,
    pub route: Option<String>,
}

/// Rows per statement when loading routes.
const BATCH: usize = 10_000;

/// Replaces the document tree (as `replace_tree`) and sets `routes`, in one transaction.
/// Returns the tree's report and the routes' (`updated`: routes that changed).
pub async fn replace_documents(
    pool: &PgPool,
    nodes: &[MirrorNode],
    routes: &[MirrorRoute],
    ticket: Ticket,
    timeout: Duration,
) -> Result<(KindReport, KindReport), StoreError> {
    let mut tx = begin(pool, timeout).await?;
    let tree = replace_tree_in(&mut tx, NodeKind::Document, nodes, ticket).await?;
    let routes = write_routes(&mut tx, routes, ticket).await?;
    tx.commit().await.map_err(db("mirror_commit"))?;
    Ok((tree, routes))
}

/// Sets `routes` in a transaction of their own (a webhook's refresh).
pub async fn set_routes(
    pool: &PgPool,
    routes: &[MirrorRoute],
    ticket: Ticket,
    timeout: Duration,
) -> Result<KindReport, StoreError> {
    let mut tx = begin(pool, timeout).await?;
    let report = write_routes(&mut tx, routes, ticket).await?;
    tx.commit().await.map_err(db("mirror_commit"))?;
    Ok(report)
}

async fn write_routes(
    tx: &mut Transaction<'_, Postgres>,
    routes: &[MirrorRoute],
    ticket: Ticket,
) -> Result<KindReport, StoreError> {
    let newer = newer(tx, Touch::Node, ticket).await?;
    sqlx::query(
        "create temp table mirror_routes (key uuid primary key, depth integer not null, \
         route_path text) on commit drop",
    )
    .execute(&mut **tx)
    .await
    .map_err(db("mirror_temp_routes"))?;
    for chunk in routes.chunks(BATCH) {
        let rows: Vec<Value> = chunk
            .iter()
            .map(|r| json!({"key": r.key, "depth": r.depth, "route_path": r.route}))
            .collect();
        sqlx::query(
            "insert into mirror_routes select * from jsonb_to_recordset($1) \
             as x(key uuid, depth integer, route_path text) on conflict (key) do nothing",
        )
        .bind(Json(rows))
        .execute(&mut **tx)
        .await
        .map_err(db("mirror_load_routes"))?;
    }
    // Planner statistics for the temp table: without them the update below is planned as a
    // nested loop over every document (minutes for 100,000 instead of a hash join).
    sqlx::query("analyze mirror_routes")
        .execute(&mut **tx)
        .await
        .map_err(db("mirror_analyze_routes"))?;
    // The ids of the documents a newer webhook touched: routes at or below them are left alone.
    let fenced: Vec<i64> = sqlx::query_scalar("select id from content_nodes where key = any($1)")
        .bind(&newer)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("mirror_newer_ids"))?;
    let row = sqlx::query(
        "with up as ( \
           update content_nodes c set route_path = r.route_path, updated_at = now() \
           from mirror_routes r \
           where c.key = r.key and c.kind = 'document' \
             and c.route_path is distinct from r.route_path \
             and (r.route_path is null \
                  or (not c.trashed and cardinality(c.path) - 1 = r.depth)) \
             and not (c.path && $1::bigint[]) \
           returning 1) \
         select (select count(*) from mirror_routes) as seen, count(*) as updated from up",
    )
    .bind(&fenced)
    .fetch_one(&mut **tx)
    .await
    .map_err(db("mirror_write_routes"))?;
    let count = |name: &str| -> Result<u64, StoreError> {
        let v: i64 = row.try_get(name).map_err(super::row_err)?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    Ok(KindReport {
        seen: count("seen")?,
        updated: count("updated")?,
        ..KindReport::default()
    })
}

/// Every mirrored document at or below `keys` (`None`: every document), with its depth (a
/// root is 1; `None` when it is in the recycle bin). Read in a transaction of its own under
/// `timeout` (`sync.apply_timeout`).
pub async fn subtree_depths(
    pool: &PgPool,
    keys: Option<&[Uuid]>,
    timeout: Duration,
) -> Result<Vec<(Uuid, Option<usize>)>, StoreError> {
    let mut tx = begin_read(pool, timeout).await?;
    let rows = match keys {
        None => sqlx::query(EVERY_DOCUMENT).fetch_all(&mut *tx).await,
        Some(keys) => {
            let named: Vec<(i64, Vec<i64>)> = sqlx::query_as(
                "select id, path from content_nodes where kind = 'document' and key = any($1)",
            )
            .bind(keys)
            .fetch_all(&mut *tx)
            .await
            .map_err(db("mirror_subtree_named"))?;
            let tops = topmost(&named);
            let q = if tops.len() <= OVERLAP_MAX {
                BELOW_FEW
            } else {
                BELOW_MANY
            };
            sqlx::query(q).bind(tops).fetch_all(&mut *tx).await
        }
    }
    .map_err(db("mirror_subtree_depths"))?;
    tx.commit().await.map_err(db("mirror_commit"))?;
    rows.iter()
        .map(|r| {
            let key: Uuid = r.try_get("key").map_err(super::row_err)?;
            let trashed: bool = r.try_get("trashed").map_err(super::row_err)?;
            let depth: i32 = r.try_get("depth").map_err(super::row_err)?;
            let depth = usize::try_from(depth).ok().filter(|_| !trashed);
            Ok((key, depth))
        })
        .collect()
}

const EVERY_DOCUMENT: &str = "select key, trashed, cardinality(path) - 1 as depth \
                              from content_nodes where kind = 'document'";
/// The documents at or below a few ids: one overlap test per row (`&&` compares every pair of
/// elements, so its cost grows with the number of ids).
const BELOW_FEW: &str = "select key, trashed, cardinality(path) - 1 as depth \
                         from content_nodes where kind = 'document' and path && $1";
/// The documents at or below many ids (a bulk publish names siblings): each row's path
/// segments hash-joined with the ids, linear in the tree's size whatever their number.
const BELOW_MANY: &str = "select c.key, c.trashed, cardinality(c.path) - 1 as depth \
                          from content_nodes c cross join lateral unnest(c.path) as p(id) \
                          where c.kind = 'document' and p.id in (select unnest($1::bigint[]))";

/// Named subtrees up to which a row-by-row overlap test is used (measured on 50,000 nodes:
/// 20 ms for one id, 1.2 s for 1,000; the hash join takes ~190 ms for any number).
const OVERLAP_MAX: usize = 8;

/// The ids of `named` (id, path) with no other named id above them: the tops of the named
/// subtrees, below which every named node is (a move webhook names each node of the moved
/// subtree: one top). No document is below two tops, so the queries return each once.
fn topmost(named: &[(i64, Vec<i64>)]) -> Vec<i64> {
    let ids: HashSet<i64> = named.iter().map(|(id, _)| *id).collect();
    named
        .iter()
        .filter(|(id, path)| !path.iter().any(|a| a != id && ids.contains(a)))
        .map(|(id, _)| *id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::topmost;

    #[test]
    fn only_the_tops_of_named_subtrees_remain() {
        let named = [
            (3, vec![-1, 2, 3]),
            (4, vec![-1, 2, 3, 4]),
            (5, vec![-1, 2, 3, 4, 5]),
            (7, vec![-1, 6, 7]),
            (8, vec![-1, 8]),
        ];
        assert_eq!(topmost(&named), [3, 7, 8]);
        assert_eq!(topmost(&[]), Vec::<i64>::new());
    }
}
