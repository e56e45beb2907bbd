//! The mirror's writes (`postgres::mirror`) on a real database: a replace that fails on any
//! statement leaves the previous tree in place, and ids survive moves.

use super::postgres::mirror::{replace_tree, MirrorNode, Ticket};
use crate::authz::NodeKind;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

const T: Duration = Duration::from_secs(30);

fn n(key: u128, parent: Option<u128>) -> MirrorNode {
    MirrorNode {
        key: Uuid::from_u128(key),
        parent: parent.map(Uuid::from_u128),
        trashed: false,
    }
}

async fn rows(pool: &PgPool) -> Vec<(Uuid, i64, Vec<i64>)> {
    sqlx::query_as("select key, id, path from content_nodes order by key")
        .fetch_all(pool)
        .await
        .expect("rows")
}

#[sqlx::test(migrations = "./migrations")]
async fn a_replace_that_fails_leaves_the_previous_tree(pool: PgPool) {
    let tree = [n(1, None), n(2, Some(1)), n(3, Some(2))];
    let r = replace_tree(&pool, NodeKind::Document, &tree, Ticket::Sync(0), T)
        .await
        .expect("replace");
    assert_eq!((r.inserted, r.updated, r.deleted), (3, 0, 0));
    // A sync that wrote the tree leaves the planner its size (never analyzed: -1).
    let tuples: f32 =
        sqlx::query_scalar("select reltuples from pg_class where relname = 'content_nodes'")
            .fetch_one(&pool)
            .await
            .expect("reltuples");
    assert_eq!(tuples, 3.0);
    let before = rows(&pool).await;
    // A parent that was not synced: refused before anything is written.
    let orphan = [n(1, None), n(3, Some(9))];
    replace_tree(&pool, NodeKind::Document, &orphan, Ticket::Sync(0), T)
        .await
        .expect_err("orphan");
    assert_eq!(rows(&pool).await, before);
    // A key listed twice fails on the load after the first rows went in: rolled back.
    let twice = [n(1, None), n(4, Some(1)), n(4, Some(1))];
    replace_tree(&pool, NodeKind::Document, &twice, Ticket::Sync(0), T)
        .await
        .expect_err("duplicate");
    assert_eq!(rows(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_moved_node_keeps_its_id_and_its_subtree_follows(pool: PgPool) {
    let tree = [n(1, None), n(2, None), n(3, Some(1)), n(4, Some(3))];
    replace_tree(&pool, NodeKind::Document, &tree, Ticket::Sync(0), T)
        .await
        .expect("replace");
    let ids: Vec<i64> = rows(&pool).await.iter().map(|r| r.1).collect();
    assert!(ids.iter().all(|id| *id >= 1_000_000_000), "{ids:?}");
    let moved = [n(1, None), n(2, None), n(3, Some(2)), n(4, Some(3))];
    let r = replace_tree(&pool, NodeKind::Document, &moved, Ticket::Sync(0), T)
        .await
        .expect("move");
    assert_eq!((r.inserted, r.updated, r.deleted), (0, 2, 0));
    let after = rows(&pool).await;
    assert_eq!(after.iter().map(|r| r.1).collect::<Vec<_>>(), ids);
    assert_eq!(after[3].2, vec![-1, ids[1], ids[2], ids[3]]);
    // A media replace never touches documents.
    replace_tree(&pool, NodeKind::Media, &[], Ticket::Sync(0), T)
        .await
        .expect("media");
    assert_eq!(rows(&pool).await.len(), 4);
}

#[sqlx::test(migrations = "./migrations")]
async fn an_older_webhook_delivery_does_not_undo_a_newer_one(pool: PgPool) {
    use super::postgres::mirror::refresh_nodes;
    let tree = [n(1, None), n(2, None), n(3, Some(1)), n(4, Some(3))];
    replace_tree(&pool, NodeKind::Document, &tree, Ticket::Sync(0), T)
        .await
        .expect("replace");
    // Two deliveries: the first read 3 under 1 (before the move), the second 3 under 2.
    let old = Ticket::webhook(&pool).await.expect("ticket");
    let new = Ticket::webhook(&pool).await.expect("ticket");
    let moved = [n(2, None), n(3, Some(2))];
    refresh_nodes(&pool, NodeKind::Document, &moved, &[], new, T)
        .await
        .expect("newer delivery");
    let after = rows(&pool).await;
    let stale = [n(1, None), n(3, Some(1))];
    let r = refresh_nodes(&pool, NodeKind::Document, &stale, &[], old, T)
        .await
        .expect("older delivery");
    assert_eq!((r.updated, r.newer), (0, 1), "{r:?}");
    assert_eq!(rows(&pool).await, after);
    assert_eq!(after[3].2, vec![-1, after[1].1, after[2].1, after[3].1]);
    // A sync that started after both deliveries writes what it read.
    let sync = Ticket::sync(&pool).await.expect("ticket");
    replace_tree(&pool, NodeKind::Document, &tree, sync, T)
        .await
        .expect("sync");
    assert_eq!(rows(&pool).await[3].2[1], after[0].1);
}

#[sqlx::test(migrations = "./migrations")]
async fn subtree_depths_finds_every_document_below_few_or_many_named(pool: PgPool) {
    use super::postgres::mirror_routes::subtree_depths;
    // Roots 1 and 2; children 100..=120 of 1, each with children 1000+10c and 1001+10c;
    // child 120 and its children in the recycle bin (Umbraco reports each as trashed).
    let mut tree = vec![n(1, None), n(2, None)];
    for c in 100..121 {
        let trashed = c == 120;
        let node = |key, parent| MirrorNode {
            trashed,
            ..n(key, parent)
        };
        // The top of a trashed subtree lies in the bin itself (no parent).
        let top = node(c, (!trashed).then_some(1));
        tree.extend([
            top,
            node(1000 + 10 * c, Some(c)),
            node(1001 + 10 * c, Some(c)),
        ]);
    }
    replace_tree(&pool, NodeKind::Document, &tree, Ticket::Sync(0), T)
        .await
        .expect("replace");
    let keys = |ns: &[u128]| ns.iter().map(|k| Uuid::from_u128(*k)).collect::<Vec<_>>();
    let below = |named: Vec<Uuid>| {
        let pool = pool.clone();
        async move {
            let mut got: Vec<(u128, Option<usize>)> = subtree_depths(&pool, Some(&named), T)
                .await
                .expect("depths")
                .into_iter()
                .map(|(k, d)| (k.as_u128(), d))
                .collect();
            got.sort();
            got
        }
    };
    // A move webhook names the moved node and its descendants: one subtree.
    let few = below(keys(&[100, 2000, 2001])).await;
    assert_eq!(few, [(100, Some(2)), (2000, Some(3)), (2001, Some(3))]);
    // Twenty-one subtrees (more than the overlap form takes), one of them in the bin.
    let children: Vec<u128> = (100..121).collect();
    let many = below(keys(&children)).await;
    assert_eq!(many.len(), 63, "{many:?}");
    for (k, d) in &many {
        let in_bin = *k == 120 || (2200..2202).contains(k);
        let expected = match k {
            _ if in_bin => None,
            100..=119 => Some(2),
            _ => Some(3),
        };
        assert_eq!(*d, expected, "{k}");
    }
    // Nothing named, or unknown keys: nothing; no keys at all: every document.
    assert_eq!(below(keys(&[9])).await, []);
    let every = subtree_depths(&pool, None, T).await.expect("all");
    assert_eq!(every.len(), tree.len());
}

#[sqlx::test(migrations = "./migrations")]
async fn the_path_index_keeps_no_pending_list(pool: PgPool) {
    // Migration 20261203230001: with GIN's `fastupdate`, every `path @>` probe reads the
    // whole list of entries written since the last vacuum (a 1,000-node move took ~10 s).
    let options: Option<Vec<String>> = sqlx::query_scalar(
        "select reloptions from pg_class where relname = 'content_nodes_path_gin'",
    )
    .fetch_one(&pool)
    .await
    .expect("index");
    assert_eq!(options, Some(vec!["fastupdate=off".to_owned()]));
}
