//! Reading policy rows: an owner's origin, a group's start node, a user's start nodes (and
//! their stored form).

use super::{row_err, StoreError};
use crate::store::policy_file::{Origin, StartRef};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

/// The stored origin text as an [`Origin`].
pub(super) fn origin(r: &PgRow) -> Result<Origin, StoreError> {
    let text: String = r.try_get("origin").map_err(row_err)?;
    Origin::parse(&text).ok_or(StoreError::Corrupt {
        what: "origin",
        value: text,
    })
}

/// A group's start node in `tree` (`content`, `media`) from its root flag and node key.
pub(super) fn group_start(r: &PgRow, tree: &str) -> Result<Option<StartRef>, StoreError> {
    let root: bool = r
        .try_get(format!("{tree}_start_root").as_str())
        .map_err(row_err)?;
    let key: Option<Uuid> = r
        .try_get(format!("{tree}_start_key").as_str())
        .map_err(row_err)?;
    Ok(if root {
        Some(StartRef::Root)
    } else {
        key.map(StartRef::Node)
    })
}

/// A user's own start nodes from `{tree}_start_root` and `{tree}_start_keys` (root first).
pub(super) fn user_starts(r: &PgRow, tree: &str) -> Result<Vec<StartRef>, StoreError> {
    let root: bool = r
        .try_get(format!("{tree}_start_root").as_str())
        .map_err(row_err)?;
    let keys: Vec<Uuid> = r
        .try_get(format!("{tree}_start_keys").as_str())
        .map_err(row_err)?;
    Ok(root
        .then_some(StartRef::Root)
        .into_iter()
        .chain(keys.into_iter().map(StartRef::Node))
        .collect())
}

/// The stored form of a user's own start nodes: the root flag and the node keys.
pub(super) fn user_start_columns(starts: &[StartRef]) -> (bool, Vec<Uuid>) {
    let root = starts.contains(&StartRef::Root);
    let keys = starts
        .iter()
        .filter_map(|s| match s {
            StartRef::Node(k) => Some(*k),
            StartRef::Root => None,
        })
        .collect();
    (root, keys)
}
