//! Reading policy rows: a group and a user as their policy-file entries (the admin API's views
//! are made from them too), an owner's origin, start nodes (and a user's in their stored form).

use super::{row_err, StoreError};
use crate::authz::UserState;
use crate::store::parse_state;
use crate::store::policy_file::{GroupEntry, Origin, StartRef, UserEntry};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

/// The stored origin text as an [`Origin`].
fn origin(r: &PgRow) -> Result<Origin, StoreError> {
    let text: String = r.try_get("origin").map_err(row_err)?;
    Origin::parse(&text).ok_or(StoreError::Corrupt {
        what: "origin",
        value: text,
    })
}

/// A group's start node in `tree` (`content`, `media`) from its root flag and node key.
fn group_start(r: &PgRow, tree: &str) -> Result<Option<StartRef>, StoreError> {
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

/// A group's columns (`user_groups`) as its policy-file entry.
pub(super) fn group_entry(r: &PgRow) -> Result<GroupEntry, StoreError> {
    Ok(GroupEntry {
        key: r.try_get("key").map_err(row_err)?,
        alias: r.try_get("alias").map_err(row_err)?,
        name: r.try_get("name").map_err(row_err)?,
        sections: r.try_get("sections").map_err(row_err)?,
        default_verbs: r.try_get("default_verbs").map_err(row_err)?,
        content_start: group_start(r, "content")?,
        media_start: group_start(r, "media")?,
        all_languages: r.try_get("all_languages").map_err(row_err)?,
        languages: r.try_get("languages").map_err(row_err)?,
        origin: origin(r)?,
    })
}

/// A user's columns (`users`, with the aliases of its groups as `groups`) as its policy-file
/// entry.
pub(super) fn user_entry(r: &PgRow) -> Result<UserEntry, StoreError> {
    let state: String = r.try_get("state").map_err(row_err)?;
    let state: UserState = parse_state(&state)?;
    Ok(UserEntry {
        key: r.try_get("key").map_err(row_err)?,
        external_id: r.try_get("external_id").map_err(row_err)?,
        name: r.try_get("name").map_err(row_err)?,
        email: r.try_get("email").map_err(row_err)?,
        state,
        groups: r.try_get("groups").map_err(row_err)?,
        content_start: user_starts(r, "content")?,
        media_start: user_starts(r, "media")?,
        origin: origin(r)?,
    })
}
