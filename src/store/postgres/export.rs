//! `policy export`: the database's policy read back as a normalized policy file, such that
//! `apply_policy(export_policy())` writes nothing.

use super::{parse_kind, row_err, user_starts, StoreError};
use crate::authz::UserState;
use crate::store::parse_state;
use crate::store::policy_file::{
    GroupEntry, GroupMappingEntry, NodeEntry, Origin, PermissionEntry, PolicyFile,
    PublicAccessEntry, StartRef, UserEntry,
};
use sqlx::postgres::PgPool;
use sqlx::Row;
use uuid::Uuid;

fn db(query: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { query, source }
}

/// The stored origin text as an [`Origin`].
pub(crate) fn origin(r: &sqlx::postgres::PgRow) -> Result<Origin, StoreError> {
    let text: String = r.try_get("origin").map_err(row_err)?;
    Origin::parse(&text).ok_or(StoreError::Corrupt {
        what: "origin",
        value: text,
    })
}

/// Reads the whole policy back as a file (normalized: built-in groups included, lists sorted),
/// such that `apply_policy(export_policy())` writes nothing.
pub async fn export_policy(pool: &PgPool) -> Result<PolicyFile, StoreError> {
    let mut tx = pool.begin().await.map_err(db("begin"))?;
    let mut f = PolicyFile::default();
    for r in sqlx::query(
        "select n.key, n.id, n.parent_key, n.kind, n.trashed, n.route_path, \
         coalesce(p.trashed, false) as parent_trashed from content_nodes n \
         left join content_nodes p on p.key = n.parent_key order by array_length(n.path, 1), n.id",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db("export_nodes"))?
    {
        let kind: String = r.try_get("kind").map_err(row_err)?;
        let trashed: bool = r.try_get("trashed").map_err(row_err)?;
        let parent_trashed: bool = r.try_get("parent_trashed").map_err(row_err)?;
        f.nodes.push(NodeEntry {
            key: r.try_get("key").map_err(row_err)?,
            id: r.try_get("id").map_err(row_err)?,
            parent: r.try_get("parent_key").map_err(row_err)?,
            kind: parse_kind(&kind)?,
            // Only the top of a trashed subtree is marked; descendants inherit it.
            trashed: trashed && !parent_trashed,
            route_path: r.try_get("route_path").map_err(row_err)?,
        });
    }
    for r in sqlx::query("select * from user_groups order by alias")
        .fetch_all(&mut *tx)
        .await
        .map_err(db("export_groups"))?
    {
        let start = |root: bool, key: Option<Uuid>| match (root, key) {
            (true, _) => Some(StartRef::Root),
            (false, Some(k)) => Some(StartRef::Node(k)),
            (false, None) => None,
        };
        f.groups.push(GroupEntry {
            key: r.try_get("key").map_err(row_err)?,
            alias: r.try_get("alias").map_err(row_err)?,
            name: r.try_get("name").map_err(row_err)?,
            sections: r.try_get("sections").map_err(row_err)?,
            default_verbs: r.try_get("default_verbs").map_err(row_err)?,
            content_start: start(
                r.try_get("content_start_root").map_err(row_err)?,
                r.try_get("content_start_key").map_err(row_err)?,
            ),
            media_start: start(
                r.try_get("media_start_root").map_err(row_err)?,
                r.try_get("media_start_key").map_err(row_err)?,
            ),
            all_languages: r.try_get("all_languages").map_err(row_err)?,
            languages: r.try_get("languages").map_err(row_err)?,
            origin: origin(&r)?,
        });
    }
    for r in sqlx::query(
        "select u.*, coalesce(array_agg(g.alias order by g.alias) \
         filter (where g.alias is not null), '{}') as aliases from users u \
         left join memberships m on m.user_key = u.key left join user_groups g on g.key = m.group_key \
         group by u.key order by u.external_id",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db("export_users"))?
    {
        let state: String = r.try_get("state").map_err(row_err)?;
        let state: UserState = parse_state(&state)?;
        f.users.push(UserEntry {
            key: r.try_get("key").map_err(row_err)?,
            external_id: r.try_get("external_id").map_err(row_err)?,
            name: r.try_get("name").map_err(row_err)?,
            email: r.try_get("email").map_err(row_err)?,
            state,
            groups: r.try_get("aliases").map_err(row_err)?,
            content_start: user_starts(&r, "content")?,
            media_start: user_starts(&r, "media")?,
            origin: origin(&r)?,
        });
    }
    for r in sqlx::query(
        "select g.alias, p.node_key, p.verbs from group_permissions p \
         join user_groups g on g.key = p.group_key order by g.alias, p.node_key",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db("export_permissions"))?
    {
        f.permissions.push(PermissionEntry {
            group: r.try_get("alias").map_err(row_err)?,
            node: r.try_get("node_key").map_err(row_err)?,
            verbs: r.try_get("verbs").map_err(row_err)?,
        });
    }
    for r in sqlx::query("select * from public_access order by node_key")
        .fetch_all(&mut *tx)
        .await
        .map_err(db("export_public_access"))?
    {
        f.public_access.push(PublicAccessEntry {
            node: r.try_get("node_key").map_err(row_err)?,
            member_groups: r.try_get("member_groups").map_err(row_err)?,
            member_usernames: r.try_get("member_usernames").map_err(row_err)?,
        });
    }
    for r in sqlx::query("select * from api_keys order by key_id")
        .fetch_all(&mut *tx)
        .await
        .map_err(db("export_api_keys"))?
    {
        f.api_keys.push(super::api_key_row(&r)?.0);
    }
    for r in sqlx::query(
        "select gm.issuer, gm.idp_group, array_agg(g.alias order by g.alias) as groups \
         from group_mappings gm join user_groups g on g.key = gm.group_key \
         group by gm.issuer, gm.idp_group order by gm.issuer, gm.idp_group",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db("export_group_mappings"))?
    {
        f.group_mappings.push(GroupMappingEntry {
            issuer: r.try_get("issuer").map_err(row_err)?,
            idp_group: r.try_get("idp_group").map_err(row_err)?,
            groups: r.try_get("groups").map_err(row_err)?,
        });
    }
    tx.commit().await.map_err(db("commit"))?;
    Ok(f.normalized())
}
