//! The mirror's writes of Umbraco's languages into `languages` (one transaction, see
//! `mirror.rs` for the contract), and the read of the default one the Delivery decision uses.

use super::mirror::{begin, db, KindReport, Ticket};
use super::mirror_public_access::{claim_whole_kind, left_to_newer, upsert_and_commit};
use super::StoreError;
use serde_json::{json, Value};
use sqlx::postgres::PgPool;
use sqlx::types::Json;
use std::time::Duration;

/// One language as Umbraco holds it (`LanguageResponseModel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorLanguage {
    pub iso_code: String,
    pub is_default: bool,
    pub is_mandatory: bool,
    pub fallback_iso_code: Option<String>,
}

/// Makes `languages` exactly `languages` (unchanged rows are not rewritten); nothing when a
/// writer with a later `ticket` already applied them.
pub async fn replace_languages(
    pool: &PgPool,
    languages: &[MirrorLanguage],
    ticket: Ticket,
    timeout: Duration,
) -> Result<KindReport, StoreError> {
    let rows: Vec<Value> = languages
        .iter()
        .map(|l| {
            json!({"iso_code": l.iso_code, "is_default": l.is_default,
                   "is_mandatory": l.is_mandatory, "fallback_iso_code": l.fallback_iso_code})
        })
        .collect();
    let mut tx = begin(pool, timeout).await?;
    if !claim_whole_kind(&mut tx, "languages", ticket).await? {
        return Ok(left_to_newer(languages.len()));
    }
    let deleted = sqlx::query(
        "delete from languages l where not exists \
         (select 1 from jsonb_to_recordset($1) as x(iso_code text) where x.iso_code = l.iso_code)",
    )
    .bind(Json(&rows))
    .execute(&mut *tx)
    .await
    .map_err(db("mirror_languages_delete"))?;
    let upsert = "insert into languages (iso_code, is_default, is_mandatory, fallback_iso_code) \
         select * from jsonb_to_recordset($1) as x(iso_code text, is_default boolean, \
                                                   is_mandatory boolean, fallback_iso_code text) \
         on conflict (iso_code) do update set is_default = excluded.is_default, \
           is_mandatory = excluded.is_mandatory, fallback_iso_code = excluded.fallback_iso_code, \
           updated_at = now() \
         where (languages.is_default, languages.is_mandatory, languages.fallback_iso_code) \
               is distinct from \
               (excluded.is_default, excluded.is_mandatory, excluded.fallback_iso_code) \
         returning (xmax = 0) as inserted";
    let (inserted, updated) =
        upsert_and_commit(tx, upsert, &rows, "mirror_languages_write").await?;
    Ok(KindReport {
        seen: languages.len() as u64,
        inserted,
        updated,
        deleted: deleted.rows_affected(),
        ..KindReport::default()
    })
}

/// The query behind `PolicyStore::default_language`: the mirrored default language's ISO code
/// (Umbraco has exactly one; the first by code should a store ever hold two).
pub(super) const DEFAULT_LANGUAGE: &str =
    "select iso_code from languages where is_default order by iso_code limit 1";
