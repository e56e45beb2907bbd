//! Umbraco's languages (`GET language`, `AllLanguageController`, paged
//! `PagedLanguageResponseModel`) mirrored into the store's `languages`. The gateway uses the
//! default one as the culture Umbraco serves a Delivery request without a usable
//! `Accept-Language`, unless `authz.delivery_default_culture` is configured (docs/AUTHZ.md).
//! The `languageSaved` / `languageDeleted` webhooks re-read the whole (short) list.

use super::full::all_pages;
use super::{Mirror, SyncError};
use crate::store::postgres::mirror::{KindReport, Ticket};
use crate::store::postgres::mirror_languages::{replace_languages, MirrorLanguage};
use serde::Deserialize;

/// `LanguageResponseModel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Language {
    pub iso_code: String,
    pub is_default: bool,
    pub is_mandatory: bool,
    #[serde(default)]
    pub fallback_iso_code: Option<String>,
}

impl Mirror {
    /// Reads every language and makes the mirror's languages exactly those (`ticket`, taken
    /// before the read: a writer with a later one that applied them first wins).
    pub(super) async fn sync_languages(&self, ticket: Ticket) -> Result<KindReport, SyncError> {
        let read: Vec<Language> =
            all_pages(&self.reader, "languages", "/language", self.cfg.page_size).await?;
        let languages: Vec<MirrorLanguage> = read
            .into_iter()
            .map(|l| MirrorLanguage {
                iso_code: l.iso_code,
                is_default: l.is_default,
                is_mandatory: l.is_mandatory,
                fallback_iso_code: l.fallback_iso_code,
            })
            .collect();
        let t = self.cfg.apply_timeout;
        Ok(replace_languages(&self.pool, &languages, ticket, t).await?)
    }
}
