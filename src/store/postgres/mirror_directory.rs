//! The mirror's writes of the user directory: Umbraco's groups with their granular entries,
//! and its users with their memberships (see `mirror.rs` for the contract).

use super::mirror::{begin, db, KindReport, MirrorEntry, MirrorUser, Scope, Ticket};
use super::mirror_touch::{newer, settle, Touch};
use super::StoreError;
use crate::store::policy_file::{GroupEntry, StartRef};
use crate::store::state_str;
use serde_json::{json, Value};
use sqlx::postgres::PgPool;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

/// Keys among `keys` that a local row already holds (in `table`, by key or by `unique_col`).
async fn local_conflicts(
    tx: &mut Transaction<'_, Postgres>,
    table: &'static str,
    unique_col: &'static str,
    keys: &[Uuid],
    uniques: &[String],
) -> Result<Vec<(Uuid, String)>, StoreError> {
    let sql = format!(
        "select key, {unique_col} as u from {table} where origin = 'local' \
         and (key = any($1) or {unique_col} = any($2))"
    );
    let rows = sqlx::query(&sql)
        .bind(keys)
        .bind(uniques)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("mirror_local_conflicts"))?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("key").map_err(super::row_err)?,
                r.try_get("u").map_err(super::row_err)?,
            ))
        })
        .collect()
}

fn start_json(s: Option<StartRef>) -> (bool, Option<Uuid>) {
    match s {
        Some(StartRef::Root) => (true, None),
        Some(StartRef::Node(k)) => (false, Some(k)),
        None => (false, None),
    }
}

/// Makes the `origin = 'umbraco'` groups exactly `groups` (never deleting a built-in one) and
/// their granular entries exactly `entries`. A group whose key or alias a local group holds is
/// skipped; a start node or entry on a node the mirror does not know is dropped (the group
/// contributes nothing there, as Umbraco ignores a missing start node). Groups a webhook
/// touched after `ticket` stay as they are (`mirror_touch`). `updated` counts the groups whose
/// row or granular entries changed, each once.
pub async fn replace_groups(
    pool: &PgPool,
    groups: &[GroupEntry],
    entries: &[MirrorEntry],
    scope: Scope<'_>,
    ticket: Ticket,
    timeout: Duration,
) -> Result<KindReport, StoreError> {
    let mut tx = begin(pool, timeout).await?;
    let newer: HashSet<Uuid> = newer(&mut tx, Touch::Group, ticket)
        .await?
        .into_iter()
        .collect();
    let keys: Vec<Uuid> = groups.iter().map(|g| g.key).collect();
    let aliases: Vec<String> = groups.iter().map(|g| g.alias.clone()).collect();
    let conflicts = local_conflicts(&mut tx, "user_groups", "alias", &keys, &aliases).await?;
    let mut report = KindReport {
        seen: groups.len() as u64,
        ..KindReport::default()
    };
    let mut rows = Vec::new();
    for g in groups {
        if newer.contains(&g.key) {
            report.newer += 1;
            continue;
        }
        if conflicts.iter().any(|(k, a)| *k == g.key || *a == g.alias) {
            report.skipped.push(format!(
                "group `{}`: a local group holds its key or alias",
                g.alias
            ));
            continue;
        }
        let (c_root, c_key) = start_json(g.content_start);
        let (m_root, m_key) = start_json(g.media_start);
        rows.push(json!({
            "key": g.key, "alias": g.alias, "name": g.name, "sections": g.sections,
            "default_verbs": g.default_verbs, "content_start_root": c_root,
            "content_start_key": c_key, "media_start_root": m_root, "media_start_key": m_key,
            "all_languages": g.all_languages, "languages": g.languages,
        }));
    }
    let synced: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| r["key"].as_str().and_then(|k| k.parse().ok()))
        .collect();
    let newer_keys: Vec<Uuid> = newer.iter().copied().collect();
    let deleted: Vec<Uuid> = sqlx::query_scalar(
        "delete from user_groups where origin = 'umbraco' and not built_in \
         and not (key = any($1)) and ($2::uuid[] is null or key = any($2)) \
         and not (key = any($3)) returning key",
    )
    .bind(&keys)
    .bind(scope.keys())
    .bind(&newer_keys)
    .fetch_all(&mut *tx)
    .await
    .map_err(db("mirror_delete_groups"))?;
    report.deleted = deleted.len() as u64;
    let (inserted, mut changed) = upsert_groups(&mut tx, rows).await?;
    let kept: Vec<&MirrorEntry> = entries
        .iter()
        .filter(|e| synced.contains(&e.group))
        .collect();
    changed.extend(write_group_entries(&mut tx, &synced, &kept, &mut report.skipped).await?);
    count_changed(&mut report, &inserted, changed);
    let touched = touched(scope, &keys, &deleted, &newer);
    settle(&mut tx, Touch::Group, ticket, &touched).await?;
    tx.commit().await.map_err(db("mirror_commit"))?;
    Ok(report)
}

/// `inserted` and `updated` of a report: rows inserted, and the other rows among `changed`
/// (a row whose columns, memberships or entries changed), each counted once.
fn count_changed(report: &mut KindReport, inserted: &[Uuid], changed: Vec<Uuid>) {
    let inserted: HashSet<&Uuid> = inserted.iter().collect();
    let updated: HashSet<Uuid> = changed
        .into_iter()
        .filter(|k| !inserted.contains(k))
        .collect();
    report.inserted = inserted.len() as u64;
    report.updated = updated.len() as u64;
}

/// The keys a webhook's write records as touched: those its scope names (or every key it
/// read) and those it deleted, except the ones left to a newer webhook.
fn touched(scope: Scope<'_>, read: &[Uuid], deleted: &[Uuid], newer: &HashSet<Uuid>) -> Vec<Uuid> {
    let named = scope.keys().unwrap_or(read);
    let all: HashSet<Uuid> = named.iter().chain(deleted).copied().collect();
    all.into_iter().filter(|k| !newer.contains(k)).collect()
}

async fn upsert_groups(
    tx: &mut Transaction<'_, Postgres>,
    rows: Vec<Value>,
) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
    let r = sqlx::query(
        "with x as (select * from jsonb_to_recordset($1) as x(key uuid, alias text, name text, \
           sections text[], default_verbs text[], content_start_root boolean, \
           content_start_key uuid, media_start_root boolean, media_start_key uuid, \
           all_languages boolean, languages text[])), \
         up as (insert into user_groups (key, alias, name, sections, default_verbs, \
           content_start_root, content_start_key, media_start_root, media_start_key, \
           all_languages, languages, origin) \
           select x.key, x.alias, x.name, x.sections, x.default_verbs, x.content_start_root, \
             (select n.key from content_nodes n where n.key = x.content_start_key), \
             x.media_start_root, (select n.key from content_nodes n where n.key = x.media_start_key), \
             x.all_languages, x.languages, 'umbraco' from x \
           on conflict (key) do update set alias = excluded.alias, name = excluded.name, \
             sections = excluded.sections, default_verbs = excluded.default_verbs, \
             content_start_root = excluded.content_start_root, \
             content_start_key = excluded.content_start_key, \
             media_start_root = excluded.media_start_root, \
             media_start_key = excluded.media_start_key, \
             all_languages = excluded.all_languages, languages = excluded.languages \
           where (user_groups.alias, user_groups.name, user_groups.sections, \
             user_groups.default_verbs, user_groups.content_start_root, \
             user_groups.content_start_key, user_groups.media_start_root, \
             user_groups.media_start_key, user_groups.all_languages, user_groups.languages) \
           is distinct from (excluded.alias, excluded.name, excluded.sections, \
             excluded.default_verbs, excluded.content_start_root, excluded.content_start_key, \
             excluded.media_start_root, excluded.media_start_key, excluded.all_languages, \
             excluded.languages) \
           returning key, (xmax = 0) as inserted) \
         select coalesce(array_agg(key) filter (where inserted), '{}') as i, \
           coalesce(array_agg(key) filter (where not inserted), '{}') as u from up",
    )
    .bind(Json(rows))
    .fetch_one(&mut **tx)
    .await
    .map_err(db("mirror_upsert_groups"))?;
    key_lists(&r)
}

/// The key lists `i` (inserted) and `u` (updated) of an upsert.
fn key_lists(r: &sqlx::postgres::PgRow) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
    let i: Vec<Uuid> = r.try_get("i").map_err(super::row_err)?;
    let u: Vec<Uuid> = r.try_get("u").map_err(super::row_err)?;
    Ok((i, u))
}

/// Makes the granular entries of the `synced` groups exactly `entries` (on known nodes);
/// returns the groups whose entries changed.
async fn write_group_entries(
    tx: &mut Transaction<'_, Postgres>,
    synced: &[Uuid],
    entries: &[&MirrorEntry],
    skipped: &mut Vec<String>,
) -> Result<Vec<Uuid>, StoreError> {
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| json!({"group_key": e.group, "node_key": e.node, "verbs": e.verbs}))
        .collect();
    let r = sqlx::query(
        "with x as (select * from jsonb_to_recordset($1) as x(group_key uuid, node_key uuid, \
           verbs text[])), \
         del as (delete from group_permissions p where p.origin = 'umbraco' \
           and p.group_key = any($2) and not exists (select 1 from x \
           where x.group_key = p.group_key and x.node_key = p.node_key) returning p.group_key), \
         up as (insert into group_permissions (group_key, node_key, verbs, origin) \
           select x.group_key, x.node_key, x.verbs, 'umbraco' from x \
           join content_nodes n on n.key = x.node_key \
           on conflict (group_key, node_key) do update set verbs = excluded.verbs \
           where group_permissions.verbs is distinct from excluded.verbs returning group_key) \
         select array(select group_key from del union select group_key from up) as changed, \
           (select count(*) from x where not exists \
             (select 1 from content_nodes n where n.key = x.node_key)) as unknown",
    )
    .bind(Json(rows))
    .bind(synced)
    .fetch_one(&mut **tx)
    .await
    .map_err(db("mirror_group_entries"))?;
    let changed: Vec<Uuid> = r.try_get("changed").map_err(super::row_err)?;
    let unknown: i64 = r.try_get("unknown").map_err(super::row_err)?;
    if unknown > 0 {
        skipped.push(format!(
            "{unknown} granular entries on nodes the mirror does not know"
        ));
    }
    Ok(changed)
}

/// Makes the `origin = 'umbraco'` users in `scope` exactly `users`, each a member of exactly
/// its listed groups (`origin = 'umbraco'` ones; unknown keys are left out). A user whose key
/// or external id a local user holds is skipped, as is a second user with an external id
/// already seen. Users a webhook touched after `ticket` stay as they are, memberships included
/// (`mirror_touch`). `updated` counts the users whose row or memberships changed, each once.
pub async fn replace_users(
    pool: &PgPool,
    users: &[MirrorUser],
    scope: Scope<'_>,
    ticket: Ticket,
    timeout: Duration,
) -> Result<KindReport, StoreError> {
    let mut tx = begin(pool, timeout).await?;
    let newer: HashSet<Uuid> = newer(&mut tx, Touch::User, ticket)
        .await?
        .into_iter()
        .collect();
    let keys: Vec<Uuid> = users.iter().map(|u| u.entry.key).collect();
    let ext: Vec<String> = users.iter().map(|u| u.entry.external_id.clone()).collect();
    let conflicts = local_conflicts(&mut tx, "users", "external_id", &keys, &ext).await?;
    let mut report = KindReport {
        seen: users.len() as u64,
        ..KindReport::default()
    };
    let mut seen_ext = std::collections::HashSet::new();
    let (mut rows, mut pairs) = (Vec::new(), Vec::new());
    for MirrorUser { entry: u, groups } in users {
        if newer.contains(&u.key) {
            report.newer += 1;
            continue;
        }
        if conflicts
            .iter()
            .any(|(k, e)| *k == u.key || *e == u.external_id)
        {
            report.skipped.push(format!(
                "user `{}`: a local user holds its key or external id",
                u.external_id
            ));
            continue;
        }
        if !seen_ext.insert(u.external_id.as_str()) {
            report.skipped.push(format!(
                "user `{}`: external id already used by another umbraco user",
                u.external_id
            ));
            continue;
        }
        let (c_root, c_keys) = super::user_start_columns(&u.content_start);
        let (m_root, m_keys) = super::user_start_columns(&u.media_start);
        rows.push(json!({
            "key": u.key, "external_id": u.external_id, "name": u.name, "email": u.email,
            "state": state_str(u.state), "content_start_root": c_root,
            "content_start_keys": c_keys, "media_start_root": m_root, "media_start_keys": m_keys,
        }));
        pairs.extend(
            groups
                .iter()
                .map(|g| json!({"user_key": u.key, "group_key": g})),
        );
    }
    let synced: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| r["key"].as_str().and_then(|k| k.parse().ok()))
        .collect();
    let newer_keys: Vec<Uuid> = newer.iter().copied().collect();
    let deleted: Vec<Uuid> = sqlx::query_scalar(
        "delete from users where origin = 'umbraco' and not (key = any($1)) \
         and ($2::uuid[] is null or key = any($2)) and not (key = any($3)) returning key",
    )
    .bind(&synced)
    .bind(scope.keys())
    .bind(&newer_keys)
    .fetch_all(&mut *tx)
    .await
    .map_err(db("mirror_delete_users"))?;
    report.deleted = deleted.len() as u64;
    let (inserted, mut changed) = upsert_users(&mut tx, rows).await?;
    changed.extend(write_memberships(&mut tx, pairs, &synced, scope, &newer_keys).await?);
    count_changed(&mut report, &inserted, changed);
    let touched = touched(scope, &keys, &deleted, &newer);
    settle(&mut tx, Touch::User, ticket, &touched).await?;
    tx.commit().await.map_err(db("mirror_commit"))?;
    Ok(report)
}

async fn upsert_users(
    tx: &mut Transaction<'_, Postgres>,
    rows: Vec<Value>,
) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
    let r = sqlx::query(
        "with x as (select * from jsonb_to_recordset($1) as x(key uuid, external_id text, \
           name text, email text, state text, content_start_root boolean, \
           content_start_keys uuid[], media_start_root boolean, media_start_keys uuid[])), \
         up as (insert into users (key, external_id, name, email, state, content_start_root, \
           content_start_keys, media_start_root, media_start_keys, origin) \
           select key, external_id, name, email, state, content_start_root, content_start_keys, \
             media_start_root, media_start_keys, 'umbraco' from x \
           on conflict (key) do update set external_id = excluded.external_id, \
             name = excluded.name, email = excluded.email, state = excluded.state, \
             content_start_root = excluded.content_start_root, \
             content_start_keys = excluded.content_start_keys, \
             media_start_root = excluded.media_start_root, \
             media_start_keys = excluded.media_start_keys \
           where (users.external_id, users.name, users.email, users.state, \
             users.content_start_root, users.content_start_keys, users.media_start_root, \
             users.media_start_keys) is distinct from (excluded.external_id, excluded.name, \
             excluded.email, excluded.state, excluded.content_start_root, \
             excluded.content_start_keys, excluded.media_start_root, excluded.media_start_keys) \
           returning key, (xmax = 0) as inserted) \
         select coalesce(array_agg(key) filter (where inserted), '{}') as i, \
           coalesce(array_agg(key) filter (where not inserted), '{}') as u from up",
    )
    .bind(Json(rows))
    .fetch_one(&mut **tx)
    .await
    .map_err(db("mirror_upsert_users"))?;
    key_lists(&r)
}

/// Makes the `origin = 'umbraco'` memberships of the users in `scope` exactly `pairs`
/// (`{user_key, group_key}`, Umbraco groups only), leaving the `newer` users' alone; returns
/// the users whose memberships changed.
async fn write_memberships(
    tx: &mut Transaction<'_, Postgres>,
    pairs: Vec<Value>,
    synced: &[Uuid],
    scope: Scope<'_>,
    newer: &[Uuid],
) -> Result<Vec<Uuid>, StoreError> {
    let users = scope.keys().map(|_| synced);
    let r = sqlx::query(
        "with x as (select x.user_key, g.key as group_key \
           from jsonb_to_recordset($1) as x(user_key uuid, group_key uuid) \
           join user_groups g on g.key = x.group_key and g.origin = 'umbraco'), \
         del as (delete from memberships m where m.origin = 'umbraco' \
           and ($2::uuid[] is null or m.user_key = any($2)) and not (m.user_key = any($3)) \
           and not exists \
           (select 1 from x where x.user_key = m.user_key and x.group_key = m.group_key) \
           returning m.user_key), \
         up as (insert into memberships (user_key, group_key, origin) \
           select user_key, group_key, 'umbraco' from x on conflict do nothing returning user_key) \
         select array(select user_key from del union select user_key from up) as changed",
    )
    .bind(Json(pairs))
    .bind(users)
    .bind(newer)
    .fetch_one(&mut **tx)
    .await
    .map_err(db("mirror_memberships"))?;
    r.try_get("changed").map_err(super::row_err)
}
