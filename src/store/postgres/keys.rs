//! API key writes for the admin API: list, read, and one read-modify-write that locks the row,
//! upserts the new entry and records the change in `admin_changes`, all in one transaction.
//! The `api_keys` trigger notifies every gateway (`store::listen`), so a revocation reaches all
//! replicas without a restart.

use super::apply::write_api_keys;
use super::{api_key_row, StoreError};
use crate::store::keys::ChangeRow;
use crate::store::policy_file::ApiKeyEntry;
use sqlx::postgres::PgPool;

fn db(query: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { query, source }
}

/// Every key, ordered by id.
pub(crate) async fn list_keys(pool: &PgPool) -> Result<Vec<ApiKeyEntry>, StoreError> {
    let rows = sqlx::query("select * from api_keys order by key_id")
        .fetch_all(pool)
        .await
        .map_err(db("admin_list_api_keys"))?;
    rows.iter()
        .map(|r| api_key_row(r).map(|(e, _)| e))
        .collect()
}

/// One key by id.
pub(crate) async fn get_key(
    pool: &PgPool,
    key_id: &str,
) -> Result<Option<ApiKeyEntry>, StoreError> {
    let row = sqlx::query("select * from api_keys where key_id = $1")
        .bind(key_id)
        .fetch_optional(pool)
        .await
        .map_err(db("admin_get_api_key"))?;
    row.map(|r| api_key_row(&r).map(|(e, _)| e)).transpose()
}

/// Locks key `key_id` (absent: `None`), lets `edit` produce the new entry (or refuse), writes
/// it and the change row made by `change` from (before, after), and commits. Nothing is written
/// when `edit` refuses.
pub(crate) async fn write_key<E: From<StoreError>>(
    pool: &PgPool,
    key_id: &str,
    edit: impl FnOnce(Option<ApiKeyEntry>) -> Result<ApiKeyEntry, E>,
    change: impl FnOnce(Option<&ApiKeyEntry>, &ApiKeyEntry) -> ChangeRow,
) -> Result<ApiKeyEntry, E> {
    let mut tx = pool.begin().await.map_err(db("admin_begin"))?;
    let row = sqlx::query("select * from api_keys where key_id = $1 for update")
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("admin_lock_api_key"))?;
    let before = row.map(|r| api_key_row(&r).map(|(e, _)| e)).transpose()?;
    let after = edit(before.clone())?;
    write_api_keys(&mut tx, std::slice::from_ref(&after)).await?;
    record_change(&mut tx, &change(before.as_ref(), &after)).await?;
    tx.commit().await.map_err(db("admin_commit"))?;
    Ok(after)
}

/// Records one admin change in `admin_changes`, in the transaction that makes it.
pub(crate) async fn record_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    c: &ChangeRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "insert into admin_changes (occurred_at, change_id, actor, action, kind, resource, \
         before, after) values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.occurred_at)
    .bind(c.change_id)
    .bind(&c.actor)
    .bind(&c.action)
    .bind(&c.kind)
    .bind(&c.resource)
    .bind(&c.before)
    .bind(&c.after)
    .execute(&mut **tx)
    .await
    .map_err(db("admin_record_change"))?;
    Ok(())
}
