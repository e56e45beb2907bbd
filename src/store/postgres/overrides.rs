//! The SQL of the admin API's overrides (`store::overrides`): read groups, group mappings and
//! users as views, and store one of them. Stores go through `policy apply`'s upserts
//! (`apply.rs`), so a row written here is the row a policy file with the same entry makes.

use super::apply::{write_groups, write_mappings, write_users, ApplyReport};
use super::{group_entry, row_err, user_entry, StoreError};
use crate::store::overrides::{Grant, GroupView, MappingView, Override, UserView};
use crate::store::policy_file::{GroupMappingEntry, Origin, PolicyFile};
use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::{Postgres, Row, Transaction};

fn db(query: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { query, source }
}

/// How an override kind is read and stored in PostgreSQL.
#[async_trait]
pub trait PgOverride: Override + Sized {
    /// Every one, ordered by id.
    async fn list(pool: &PgPool) -> Result<Vec<Self>, StoreError>;
    /// One by id.
    async fn load(conn: &mut PgConnection, id: &str) -> Result<Option<Self>, StoreError>;
    /// Replaces `before` by `after` (`None`: deletes `before`).
    async fn save(
        tx: &mut Transaction<'_, Postgres>,
        before: Option<&Self>,
        after: Option<&Self>,
    ) -> Result<(), StoreError>;
}

const GROUP_SELECT: &str = "select g.key, g.alias, g.name, g.sections, g.default_verbs, \
     g.content_start_root, g.content_start_key, g.media_start_root, g.media_start_key, \
     g.all_languages, g.languages, g.origin, \
     coalesce((select json_agg(json_build_object('node', p.node_key, 'verbs', p.verbs) \
               order by p.node_key) from group_permissions p where p.group_key = g.key), \
              '[]') as permissions \
     from user_groups g";

fn group_row(r: &PgRow) -> Result<GroupView, StoreError> {
    let permissions: sqlx::types::Json<Vec<Grant>> = r.try_get("permissions").map_err(row_err)?;
    Ok(GroupView::from_entry(group_entry(r)?, permissions.0))
}

#[async_trait]
impl PgOverride for GroupView {
    async fn list(pool: &PgPool) -> Result<Vec<Self>, StoreError> {
        let sql = format!("{GROUP_SELECT} order by g.alias");
        let rows = sqlx::query(&sql)
            .fetch_all(pool)
            .await
            .map_err(db("admin_list_groups"))?;
        rows.iter().map(group_row).collect()
    }

    async fn load(conn: &mut PgConnection, id: &str) -> Result<Option<Self>, StoreError> {
        let sql = format!("{GROUP_SELECT} where g.alias = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(db("admin_get_group"))?;
        row.as_ref().map(group_row).transpose()
    }

    async fn save(
        tx: &mut Transaction<'_, Postgres>,
        before: Option<&Self>,
        after: Option<&Self>,
    ) -> Result<(), StoreError> {
        let Some(g) = after else {
            if let Some(b) = before {
                sqlx::query("delete from user_groups where key = $1 and origin = 'local'")
                    .bind(b.key)
                    .execute(&mut **tx)
                    .await
                    .map_err(db("admin_delete_group"))?;
            }
            return Ok(());
        };
        let file = PolicyFile {
            groups: vec![g.entry(Origin::Local)],
            ..PolicyFile::default()
        };
        write_groups(tx, &file, &mut ApplyReport::default()).await?;
        sqlx::query("delete from group_permissions where group_key = $1")
            .bind(g.key)
            .execute(&mut **tx)
            .await
            .map_err(db("admin_group_permissions"))?;
        for p in &g.permissions {
            sqlx::query(
                "insert into group_permissions (group_key, node_key, verbs, origin) \
                 values ($1, $2, $3, 'local')",
            )
            .bind(g.key)
            .bind(p.node)
            .bind(&p.verbs)
            .execute(&mut **tx)
            .await
            .map_err(db("admin_group_permissions"))?;
        }
        Ok(())
    }
}

const MAPPING_SELECT: &str = "select gm.issuer, gm.idp_group, \
     array_agg(g.alias order by g.alias) as groups \
     from group_mappings gm join user_groups g on g.key = gm.group_key";

fn mapping_row(r: &PgRow) -> Result<MappingView, StoreError> {
    Ok(MappingView {
        issuer: r.try_get("issuer").map_err(row_err)?,
        idp_group: r.try_get("idp_group").map_err(row_err)?,
        groups: r.try_get("groups").map_err(row_err)?,
    })
}

#[async_trait]
impl PgOverride for MappingView {
    async fn list(pool: &PgPool) -> Result<Vec<Self>, StoreError> {
        let sql = format!("{MAPPING_SELECT} group by 1, 2 order by 1, 2");
        let rows = sqlx::query(&sql)
            .fetch_all(pool)
            .await
            .map_err(db("admin_list_group_mappings"))?;
        rows.iter().map(mapping_row).collect()
    }

    async fn load(conn: &mut PgConnection, id: &str) -> Result<Option<Self>, StoreError> {
        let Some((issuer, idp_group)) = id.split_once('/') else {
            return Ok(None);
        };
        let sql =
            format!("{MAPPING_SELECT} where gm.issuer = $1 and gm.idp_group = $2 group by 1, 2");
        let row = sqlx::query(&sql)
            .bind(issuer)
            .bind(idp_group)
            .fetch_optional(conn)
            .await
            .map_err(db("admin_get_group_mapping"))?;
        row.as_ref().map(mapping_row).transpose()
    }

    async fn save(
        tx: &mut Transaction<'_, Postgres>,
        before: Option<&Self>,
        after: Option<&Self>,
    ) -> Result<(), StoreError> {
        // No groups deletes the mapping.
        let Some(m) = after.or(before) else {
            return Ok(());
        };
        let entry = GroupMappingEntry {
            issuer: m.issuer.clone(),
            idp_group: m.idp_group.clone(),
            groups: after.map(|a| a.groups.clone()).unwrap_or_default(),
        };
        write_mappings(tx, &[entry]).await.map(drop)
    }
}

const USER_SELECT: &str = "select u.key, u.external_id, u.name, u.email, u.state, \
     u.content_start_root, u.content_start_keys, u.media_start_root, u.media_start_keys, \
     u.origin, coalesce((select array_agg(g.alias order by g.alias) from memberships m \
       join user_groups g on g.key = m.group_key where m.user_key = u.key), '{}') as groups \
     from users u";

fn user_row(r: &PgRow) -> Result<UserView, StoreError> {
    Ok(user_entry(r)?.into())
}

#[async_trait]
impl PgOverride for UserView {
    async fn list(pool: &PgPool) -> Result<Vec<Self>, StoreError> {
        let sql = format!("{USER_SELECT} order by u.external_id");
        let rows = sqlx::query(&sql)
            .fetch_all(pool)
            .await
            .map_err(db("admin_list_users"))?;
        rows.iter().map(user_row).collect()
    }

    async fn load(conn: &mut PgConnection, id: &str) -> Result<Option<Self>, StoreError> {
        let sql = format!("{USER_SELECT} where u.external_id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(db("admin_get_user"))?;
        row.as_ref().map(user_row).transpose()
    }

    async fn save(
        tx: &mut Transaction<'_, Postgres>,
        before: Option<&Self>,
        after: Option<&Self>,
    ) -> Result<(), StoreError> {
        let Some(u) = after else {
            if let Some(b) = before {
                sqlx::query("delete from users where key = $1 and origin = 'local'")
                    .bind(b.key)
                    .execute(&mut **tx)
                    .await
                    .map_err(db("admin_delete_user"))?;
            }
            return Ok(());
        };
        let file = PolicyFile {
            users: vec![u.entry(Origin::Local)],
            ..PolicyFile::default()
        };
        write_users(tx, &file, &mut ApplyReport::default()).await
    }
}
