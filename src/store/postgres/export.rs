//! `policy export`: the database's policy read back as a normalized policy file, such that
//! `apply_policy(export_policy())` writes nothing.

use super::{group_entry, parse_kind, row_err, user_entry, StoreError};
use crate::store::policy_file::{
    GroupMappingEntry, NodeEntry, PermissionEntry, PolicyFile, PublicAccessEntry,
};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::Row;

fn db(query: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { query, source }
}

/// Reads the whole policy back as a file (normalized: built-in groups included, lists sorted),
/// such that `apply_policy(export_policy())` writes nothing. One transaction: one snapshot.
pub async fn export_policy(pool: &PgPool) -> Result<PolicyFile, StoreError> {
    let mut tx = pool.begin().await.map_err(db("begin"))?;
    let c = &mut *tx;
    let f = PolicyFile {
        nodes: read(c, "export_nodes", NODES, node_entry).await?,
        groups: read(c, "export_groups", GROUPS, group_entry).await?,
        users: read(c, "export_users", USERS, user_entry).await?,
        permissions: read(c, "export_permissions", PERMISSIONS, permission_entry).await?,
        public_access: read(
            c,
            "export_public_access",
            PUBLIC_ACCESS,
            public_access_entry,
        )
        .await?,
        api_keys: read(c, "export_api_keys", API_KEYS, |r| {
            Ok(super::api_key_row(r)?.0)
        })
        .await?,
        group_mappings: read(c, "export_group_mappings", MAPPINGS, mapping_entry).await?,
        ..PolicyFile::default()
    };
    tx.commit().await.map_err(db("commit"))?;
    Ok(f.normalized())
}

/// Every row of `sql`, each made into an entry by `entry`.
async fn read<T>(
    c: &mut sqlx::PgConnection,
    query: &'static str,
    sql: &'static str,
    entry: fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = sqlx::query(sql).fetch_all(c).await.map_err(db(query))?;
    rows.iter().map(entry).collect()
}

const NODES: &str = "select n.key, n.id, n.parent_key, n.kind, n.trashed, n.route_path, \
     coalesce(p.trashed, false) as parent_trashed from content_nodes n \
     left join content_nodes p on p.key = n.parent_key order by array_length(n.path, 1), n.id";

fn node_entry(r: &PgRow) -> Result<NodeEntry, StoreError> {
    let kind: String = r.try_get("kind").map_err(row_err)?;
    let trashed: bool = r.try_get("trashed").map_err(row_err)?;
    let parent_trashed: bool = r.try_get("parent_trashed").map_err(row_err)?;
    Ok(NodeEntry {
        key: r.try_get("key").map_err(row_err)?,
        id: r.try_get("id").map_err(row_err)?,
        parent: r.try_get("parent_key").map_err(row_err)?,
        kind: parse_kind(&kind)?,
        // Only the top of a trashed subtree is marked; descendants inherit it.
        trashed: trashed && !parent_trashed,
        route_path: r.try_get("route_path").map_err(row_err)?,
    })
}

const GROUPS: &str = "select * from user_groups order by alias";

const USERS: &str = "select u.*, coalesce(array_agg(g.alias order by g.alias) \
     filter (where g.alias is not null), '{}') as groups from users u \
     left join memberships m on m.user_key = u.key left join user_groups g on g.key = m.group_key \
     group by u.key order by u.external_id";

const PERMISSIONS: &str = "select g.alias, p.node_key, p.verbs from group_permissions p \
     join user_groups g on g.key = p.group_key order by g.alias, p.node_key";

fn permission_entry(r: &PgRow) -> Result<PermissionEntry, StoreError> {
    Ok(PermissionEntry {
        group: r.try_get("alias").map_err(row_err)?,
        node: r.try_get("node_key").map_err(row_err)?,
        verbs: r.try_get("verbs").map_err(row_err)?,
    })
}

const PUBLIC_ACCESS: &str = "select * from public_access order by node_key";

fn public_access_entry(r: &PgRow) -> Result<PublicAccessEntry, StoreError> {
    Ok(PublicAccessEntry {
        node: r.try_get("node_key").map_err(row_err)?,
        member_groups: r.try_get("member_groups").map_err(row_err)?,
        member_usernames: r.try_get("member_usernames").map_err(row_err)?,
    })
}

const API_KEYS: &str = "select * from api_keys order by key_id";

const MAPPINGS: &str = "select gm.issuer, gm.idp_group, array_agg(g.alias order by g.alias) \
     as groups from group_mappings gm join user_groups g on g.key = gm.group_key \
     group by gm.issuer, gm.idp_group order by gm.issuer, gm.idp_group";

fn mapping_entry(r: &PgRow) -> Result<GroupMappingEntry, StoreError> {
    Ok(GroupMappingEntry {
        issuer: r.try_get("issuer").map_err(row_err)?,
        idp_group: r.try_get("idp_group").map_err(row_err)?,
        groups: r.try_get("groups").map_err(row_err)?,
    })
}
