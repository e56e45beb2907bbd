//! `policy apply`: a policy file into Postgres (idempotent upsert in one transaction, optional
//! prune); `export.rs` reads it back out, so that `apply(export())` changes nothing.

use super::{parse_kind, row_err, user_start_columns, StoreError};
use crate::authz::{NodeKind, NodePath};
use crate::store::policy_file::{ApiKeyEntry, GroupMappingEntry, PolicyFile, StartRef};
use crate::store::state_str;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// What `apply_policy` changed: rows written (inserted or actually updated) and rows pruned,
/// per table. A second apply of the same file reports zero written.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyReport {
    pub written: BTreeMap<&'static str, u64>,
    pub pruned: BTreeMap<&'static str, u64>,
}

impl ApplyReport {
    /// Total rows written and pruned.
    pub fn total(&self) -> u64 {
        self.written.values().chain(self.pruned.values()).sum()
    }
}

fn db(query: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { query, source }
}

/// Loads `file` into the database in one transaction. Upserts everything the file names; with
/// `prune`, deletes groups (never built-in ones), users, entries, public access and keys the
/// file does not name, and nodes too when the file lists any nodes (a file without nodes leaves
/// the synced content mirror alone). Validates first against the file plus the stored nodes.
pub async fn apply_policy(
    pool: &PgPool,
    file: &PolicyFile,
    prune: bool,
) -> Result<ApplyReport, StoreError> {
    let mut tx = pool.begin().await.map_err(db("begin"))?;
    let known: HashMap<Uuid, NodeKind> = sqlx::query("select key, kind from content_nodes")
        .fetch_all(&mut *tx)
        .await
        .map_err(db("apply_known_nodes"))?
        .iter()
        .map(|r| {
            let kind: String = r.try_get("kind").map_err(row_err)?;
            Ok((r.try_get("key").map_err(row_err)?, parse_kind(&kind)?))
        })
        .collect::<Result<_, StoreError>>()?;
    file.validate_with(&known)?;
    let mut report = ApplyReport::default();
    write_nodes(&mut tx, file, &mut report).await?;
    write_groups(&mut tx, file, &mut report).await?;
    write_users(&mut tx, file, &mut report).await?;
    write_entries(&mut tx, file, &mut report).await?;
    if prune {
        prune_unnamed(&mut tx, file, &mut report).await?;
    }
    tx.commit().await.map_err(db("commit"))?;
    Ok(report)
}

async fn write_nodes(
    tx: &mut Transaction<'_, Postgres>,
    file: &PolicyFile,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let paths = file.node_paths();
    let mut n_rows = 0;
    for n in &file.nodes {
        let Some(path) = paths.get(&n.key) else {
            continue;
        };
        let trashed = NodePath(path.as_slice().into()).in_recycle_bin();
        let r = sqlx::query(
            "insert into content_nodes (key, id, parent_key, path, kind, trashed, route_path) \
             values ($1, $2, $3, $4, $5, $6, $7) on conflict (key) do update set \
             id = excluded.id, parent_key = excluded.parent_key, path = excluded.path, \
             kind = excluded.kind, trashed = excluded.trashed, route_path = excluded.route_path, \
             updated_at = now() \
             where (content_nodes.id, content_nodes.parent_key, content_nodes.path, \
                    content_nodes.kind, content_nodes.trashed, content_nodes.route_path) \
             is distinct from (excluded.id, excluded.parent_key, excluded.path, excluded.kind, \
                               excluded.trashed, excluded.route_path)",
        )
        .bind(n.key)
        .bind(n.id)
        .bind(n.parent)
        .bind(path)
        .bind(n.kind.as_str())
        .bind(trashed)
        .bind(&n.route_path)
        .execute(&mut **tx)
        .await
        .map_err(db("apply_node"))?;
        n_rows += r.rows_affected();
    }
    report.written.insert("content_nodes", n_rows);
    Ok(())
}

fn start_parts(s: Option<StartRef>) -> (bool, Option<Uuid>) {
    match s {
        None => (false, None),
        Some(StartRef::Root) => (true, None),
        Some(StartRef::Node(k)) => (false, Some(k)),
    }
}

pub(super) async fn write_groups(
    tx: &mut Transaction<'_, Postgres>,
    file: &PolicyFile,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let mut rows = 0;
    for g in &file.groups {
        let (c_root, c_key) = start_parts(g.content_start);
        let (m_root, m_key) = start_parts(g.media_start);
        let r = sqlx::query(
            "insert into user_groups (key, alias, name, sections, default_verbs, \
             content_start_root, content_start_key, media_start_root, media_start_key, \
             all_languages, languages, origin) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) \
             on conflict (key) do update set alias = excluded.alias, name = excluded.name, \
             sections = excluded.sections, default_verbs = excluded.default_verbs, \
             content_start_root = excluded.content_start_root, \
             content_start_key = excluded.content_start_key, \
             media_start_root = excluded.media_start_root, \
             media_start_key = excluded.media_start_key, \
             all_languages = excluded.all_languages, languages = excluded.languages, \
             origin = excluded.origin \
             where (user_groups.alias, user_groups.name, user_groups.sections, \
               user_groups.default_verbs, user_groups.content_start_root, \
               user_groups.content_start_key, user_groups.media_start_root, \
               user_groups.media_start_key, user_groups.all_languages, user_groups.languages, \
               user_groups.origin) \
             is distinct from (excluded.alias, excluded.name, excluded.sections, \
               excluded.default_verbs, excluded.content_start_root, excluded.content_start_key, \
               excluded.media_start_root, excluded.media_start_key, excluded.all_languages, \
               excluded.languages, excluded.origin)",
        )
        .bind(g.key)
        .bind(&g.alias)
        .bind(&g.name)
        .bind(&g.sections)
        .bind(&g.default_verbs)
        .bind(c_root)
        .bind(c_key)
        .bind(m_root)
        .bind(m_key)
        .bind(g.all_languages)
        .bind(&g.languages)
        .bind(g.origin.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db("apply_group"))?;
        rows += r.rows_affected();
    }
    report.written.insert("user_groups", rows);
    Ok(())
}

pub(super) async fn write_users(
    tx: &mut Transaction<'_, Postgres>,
    file: &PolicyFile,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let (mut rows, mut member_rows) = (0, 0);
    for u in &file.users {
        let content = user_start_columns(&u.content_start);
        let media = user_start_columns(&u.media_start);
        let r = sqlx::query(
            "insert into users (key, external_id, name, email, state, content_start_root, \
             content_start_keys, media_start_root, media_start_keys, origin) \
             values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) on conflict (key) do update set \
             external_id = excluded.external_id, name = excluded.name, email = excluded.email, \
             state = excluded.state, content_start_root = excluded.content_start_root, \
             content_start_keys = excluded.content_start_keys, \
             media_start_root = excluded.media_start_root, \
             media_start_keys = excluded.media_start_keys, origin = excluded.origin \
             where (users.external_id, users.name, users.email, users.state, \
               users.content_start_root, users.content_start_keys, users.media_start_root, \
               users.media_start_keys, users.origin) is distinct from \
               (excluded.external_id, excluded.name, excluded.email, excluded.state, \
               excluded.content_start_root, excluded.content_start_keys, \
               excluded.media_start_root, excluded.media_start_keys, excluded.origin)",
        )
        .bind(u.key)
        .bind(&u.external_id)
        .bind(&u.name)
        .bind(&u.email)
        .bind(state_str(u.state))
        .bind(content.0)
        .bind(&content.1)
        .bind(media.0)
        .bind(&media.1)
        .bind(u.origin.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db("apply_user"))?;
        rows += r.rows_affected();
        // A listed user's memberships are exactly the file's.
        let removed = sqlx::query(
            "delete from memberships m using user_groups g where m.group_key = g.key \
             and m.user_key = $1 and not (g.alias = any($2))",
        )
        .bind(u.key)
        .bind(&u.groups)
        .execute(&mut **tx)
        .await
        .map_err(db("apply_memberships"))?;
        let added = sqlx::query(
            "insert into memberships (user_key, group_key, origin) select $1, key, $3 \
             from user_groups where alias = any($2) on conflict do nothing",
        )
        .bind(u.key)
        .bind(&u.groups)
        .bind(u.origin.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db("apply_memberships"))?;
        member_rows += removed.rows_affected() + added.rows_affected();
    }
    report.written.insert("users", rows);
    report.written.insert("memberships", member_rows);
    Ok(())
}

async fn write_entries(
    tx: &mut Transaction<'_, Postgres>,
    file: &PolicyFile,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let mut rows = 0;
    for e in &file.permissions {
        let r = sqlx::query(
            "insert into group_permissions (group_key, node_key, verbs, origin) \
             select key, $2, $3, origin from user_groups where alias = $1 \
             on conflict (group_key, node_key) do update set verbs = excluded.verbs \
             where group_permissions.verbs is distinct from excluded.verbs",
        )
        .bind(&e.group)
        .bind(e.node)
        .bind(&e.verbs)
        .execute(&mut **tx)
        .await
        .map_err(db("apply_permission"))?;
        rows += r.rows_affected();
    }
    report.written.insert("group_permissions", rows);
    let mut rows = 0;
    for a in &file.public_access {
        let r = sqlx::query(
            "insert into public_access (node_key, member_groups, member_usernames) \
             values ($1, $2, $3) on conflict (node_key) do update set \
             member_groups = excluded.member_groups, member_usernames = excluded.member_usernames \
             where (public_access.member_groups, public_access.member_usernames) \
             is distinct from (excluded.member_groups, excluded.member_usernames)",
        )
        .bind(a.node)
        .bind(&a.member_groups)
        .bind(&a.member_usernames)
        .execute(&mut **tx)
        .await
        .map_err(db("apply_public_access"))?;
        rows += r.rows_affected();
    }
    report.written.insert("public_access", rows);
    report
        .written
        .insert("api_keys", write_api_keys(tx, &file.api_keys).await?);
    report.written.insert(
        "group_mappings",
        write_mappings(tx, &file.group_mappings).await?,
    );
    Ok(())
}

/// Upserts keys, writing only rows that differ; returns the rows written.
pub(crate) async fn write_api_keys(
    tx: &mut Transaction<'_, Postgres>,
    keys: &[ApiKeyEntry],
) -> Result<u64, StoreError> {
    let mut rows = 0;
    for k in keys {
        let hex_err = |e: hex::FromHexError| {
            StoreError::InvalidPolicy(vec![format!("api key `{}`: {e}", k.key_id)])
        };
        let hash = hex::decode(&k.hash).map_err(hex_err)?;
        let previous = k
            .previous_hash
            .as_deref()
            .map(hex::decode)
            .transpose()
            .map_err(hex_err)?;
        let apis: Vec<&str> = k.apis.iter().map(|a| a.as_str()).collect();
        let rps = k.rate_limit_rps.and_then(|v| i32::try_from(v).ok());
        let r = sqlx::query(
            "insert into api_keys (key_id, hash, name, owner, apis, subtree_roots, cultures, \
             preview, acts_as, rate_limit_rps, expires_at, revoked, previous_hash, \
             previous_expires_at) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) \
             on conflict (key_id) do update set \
             hash = excluded.hash, name = excluded.name, owner = excluded.owner, \
             apis = excluded.apis, subtree_roots = excluded.subtree_roots, \
             cultures = excluded.cultures, preview = excluded.preview, \
             acts_as = excluded.acts_as, rate_limit_rps = excluded.rate_limit_rps, \
             expires_at = excluded.expires_at, revoked = excluded.revoked, \
             previous_hash = excluded.previous_hash, \
             previous_expires_at = excluded.previous_expires_at \
             where (api_keys.hash, api_keys.name, api_keys.owner, api_keys.apis, \
               api_keys.subtree_roots, api_keys.cultures, api_keys.preview, api_keys.acts_as, \
               api_keys.rate_limit_rps, api_keys.expires_at, api_keys.revoked, \
               api_keys.previous_hash, api_keys.previous_expires_at) \
             is distinct from (excluded.hash, excluded.name, excluded.owner, excluded.apis, \
               excluded.subtree_roots, excluded.cultures, excluded.preview, excluded.acts_as, \
               excluded.rate_limit_rps, excluded.expires_at, excluded.revoked, \
               excluded.previous_hash, excluded.previous_expires_at)",
        )
        .bind(&k.key_id)
        .bind(hash)
        .bind(&k.name)
        .bind(&k.owner)
        .bind(apis)
        .bind(&k.subtree_roots)
        .bind(&k.cultures)
        .bind(k.preview)
        .bind(&k.acts_as)
        .bind(rps)
        .bind(k.expires_at)
        .bind(k.revoked)
        .bind(previous)
        .bind(k.previous_expires_at)
        .execute(&mut **tx)
        .await
        .map_err(db("apply_api_key"))?;
        rows += r.rows_affected();
    }
    Ok(rows)
}

/// Makes each named (issuer, IdP group) map to exactly its listed groups; returns the rows
/// inserted or deleted.
pub(crate) async fn write_mappings(
    tx: &mut Transaction<'_, Postgres>,
    mappings: &[GroupMappingEntry],
) -> Result<u64, StoreError> {
    let mut rows = 0;
    for m in mappings {
        let removed = sqlx::query(
            "delete from group_mappings gm using user_groups g where gm.group_key = g.key \
             and gm.issuer = $1 and gm.idp_group = $2 and not (g.alias = any($3))",
        )
        .bind(&m.issuer)
        .bind(&m.idp_group)
        .bind(&m.groups)
        .execute(&mut **tx)
        .await
        .map_err(db("apply_group_mapping"))?;
        let added = sqlx::query(
            "insert into group_mappings (issuer, idp_group, group_key) \
             select $1, $2, key from user_groups where alias = any($3) on conflict do nothing",
        )
        .bind(&m.issuer)
        .bind(&m.idp_group)
        .bind(&m.groups)
        .execute(&mut **tx)
        .await
        .map_err(db("apply_group_mapping"))?;
        rows += removed.rows_affected() + added.rows_affected();
    }
    Ok(rows)
}

async fn prune_unnamed(
    tx: &mut Transaction<'_, Postgres>,
    file: &PolicyFile,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let group_keys: Vec<Uuid> = file.groups.iter().map(|g| g.key).collect();
    let user_keys: Vec<Uuid> = file.users.iter().map(|u| u.key).collect();
    let node_keys: Vec<Uuid> = file.nodes.iter().map(|n| n.key).collect();
    let pa_keys: Vec<Uuid> = file.public_access.iter().map(|a| a.node).collect();
    let key_ids: Vec<&str> = file.api_keys.iter().map(|k| k.key_id.as_str()).collect();
    let (perm_groups, perm_nodes): (Vec<&str>, Vec<Uuid>) = file
        .permissions
        .iter()
        .map(|e| (e.group.as_str(), e.node))
        .unzip();
    let n = sqlx::query(
        "delete from group_permissions p using user_groups g where p.group_key = g.key and \
         (g.alias, p.node_key) not in (select * from unnest($1::text[], $2::uuid[]))",
    )
    .bind(&perm_groups)
    .bind(&perm_nodes)
    .execute(&mut **tx)
    .await
    .map_err(db("prune_permissions"))?;
    report.pruned.insert("group_permissions", n.rows_affected());
    let n = sqlx::query("delete from public_access where not (node_key = any($1))")
        .bind(&pa_keys)
        .execute(&mut **tx)
        .await
        .map_err(db("prune_public_access"))?;
    report.pruned.insert("public_access", n.rows_affected());
    let n = sqlx::query("delete from api_keys where not (key_id = any($1))")
        .bind(&key_ids)
        .execute(&mut **tx)
        .await
        .map_err(db("prune_api_keys"))?;
    report.pruned.insert("api_keys", n.rows_affected());
    let (issuers, idp_groups): (Vec<&str>, Vec<&str>) = file
        .group_mappings
        .iter()
        .map(|m| (m.issuer.as_str(), m.idp_group.as_str()))
        .unzip();
    let n = sqlx::query(
        "delete from group_mappings where (issuer, idp_group) not in \
         (select * from unnest($1::text[], $2::text[]))",
    )
    .bind(&issuers)
    .bind(&idp_groups)
    .execute(&mut **tx)
    .await
    .map_err(db("prune_group_mappings"))?;
    report.pruned.insert("group_mappings", n.rows_affected());
    let n = sqlx::query("delete from users where not (key = any($1))")
        .bind(&user_keys)
        .execute(&mut **tx)
        .await
        .map_err(db("prune_users"))?;
    report.pruned.insert("users", n.rows_affected());
    let n = sqlx::query("delete from user_groups where not built_in and not (key = any($1))")
        .bind(&group_keys)
        .execute(&mut **tx)
        .await
        .map_err(db("prune_groups"))?;
    report.pruned.insert("user_groups", n.rows_affected());
    if !file.nodes.is_empty() {
        let n = sqlx::query("delete from content_nodes where not (key = any($1))")
            .bind(&node_keys)
            .execute(&mut **tx)
            .await
            .map_err(db("prune_nodes"))?;
        report.pruned.insert("content_nodes", n.rows_affected());
    }
    Ok(())
}
