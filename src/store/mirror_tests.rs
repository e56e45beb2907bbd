//! The mirror's writes (`postgres::mirror`) on a real database: a replace that fails on any
//! statement leaves the previous tree in place, and ids survive moves.

use super::postgres::mirror::{replace_tree, MirrorNode};
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
    let r = replace_tree(&pool, NodeKind::Document, &tree, T)
        .await
        .expect("replace");
    assert_eq!((r.inserted, r.updated, r.deleted), (3, 0, 0));
    let before = rows(&pool).await;
    // A parent that was not synced: refused before anything is written.
    let orphan = [n(1, None), n(3, Some(9))];
    replace_tree(&pool, NodeKind::Document, &orphan, T)
        .await
        .expect_err("orphan");
    assert_eq!(rows(&pool).await, before);
    // A key listed twice fails on the load after the first rows went in: rolled back.
    let twice = [n(1, None), n(4, Some(1)), n(4, Some(1))];
    replace_tree(&pool, NodeKind::Document, &twice, T)
        .await
        .expect_err("duplicate");
    assert_eq!(rows(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_moved_node_keeps_its_id_and_its_subtree_follows(pool: PgPool) {
    let tree = [n(1, None), n(2, None), n(3, Some(1)), n(4, Some(3))];
    replace_tree(&pool, NodeKind::Document, &tree, T)
        .await
        .expect("replace");
    let ids: Vec<i64> = rows(&pool).await.iter().map(|r| r.1).collect();
    assert!(ids.iter().all(|id| *id >= 1_000_000_000), "{ids:?}");
    let moved = [n(1, None), n(2, None), n(3, Some(2)), n(4, Some(3))];
    let r = replace_tree(&pool, NodeKind::Document, &moved, T)
        .await
        .expect("move");
    assert_eq!((r.inserted, r.updated, r.deleted), (0, 2, 0));
    let after = rows(&pool).await;
    assert_eq!(after.iter().map(|r| r.1).collect::<Vec<_>>(), ids);
    assert_eq!(after[3].2, vec![-1, ids[1], ids[2], ids[3]]);
    // A media replace never touches documents.
    replace_tree(&pool, NodeKind::Media, &[], T)
        .await
        .expect("media");
    assert_eq!(rows(&pool).await.len(), 4);
}
