//! Document versions → the document that owns them, for the version routes
//! (`document-version/{id}`, `…/rollback`, `…/prevent-cleanup`), learnt from Umbraco with the
//! gateway's API user: `GET document-version/{id}` (`ByKeyDocumentVersionController`, policy
//! `TreeAccessDocuments`) answers a `DocumentVersionResponseModel` whose `document` names the
//! owner (`DocumentVersionMapDefinition`), or 404 for a version Umbraco does not have.
//!
//! A version never changes owner, so a known owner is kept until the cache needs the room; "no
//! such version" is believed for [`UNKNOWN_TTL`] only. Concurrent misses of one version share
//! one call. The caller bounds the wait (the decision deadline) and fails closed on an error.
//! Element versions (v18 `element-version/{id}`) are asked the same way: the answer names a
//! document at most, which an element check never accepts (the unknown-node mode decides).

use super::UmbracoError;
use crate::mirror::client::{Found, Reader};
use moka::future::Cache;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The metric/error name of the endpoint.
const ENDPOINT: &str = "document_version";
/// How long "Umbraco has no such version" is believed (it may be created a moment later).
const UNKNOWN_TTL: Duration = Duration::from_secs(5);
/// Versions remembered (a key and an owner each).
const CAPACITY: u64 = 100_000;

#[derive(Deserialize)]
struct Ref {
    id: Uuid,
}

/// The part of `DocumentVersionResponseModel` used here (`document` is nullable).
#[derive(Deserialize)]
struct VersionAnswer {
    id: Uuid,
    #[serde(default)]
    document: Option<Ref>,
}

struct OwnerExpiry;

impl moka::Expiry<Uuid, Option<Uuid>> for OwnerExpiry {
    fn expire_after_create(&self, _: &Uuid, owner: &Option<Uuid>, _: Instant) -> Option<Duration> {
        owner.is_none().then_some(UNKNOWN_TTL)
    }
}

/// Resolves document-version keys to their documents. Share it in an `Arc`.
pub struct VersionResolver {
    reader: Reader,
    cache: Cache<Uuid, Option<Uuid>>,
}

impl VersionResolver {
    /// A resolver asking Umbraco through `reader` (the API user's authenticated `GET`s, each
    /// bounded in time and answer size, counted per endpoint). No I/O.
    pub fn new(reader: Reader) -> Self {
        VersionResolver {
            reader,
            cache: Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(OwnerExpiry)
                .build(),
        }
    }

    /// The key of the document that owns `version`; `None` when Umbraco has no such version.
    pub async fn owner(&self, version: Uuid) -> Result<Option<Uuid>, Arc<UmbracoError>> {
        self.cache.try_get_with(version, self.fetch(version)).await
    }

    /// One `GET document-version/{id}` (the token replaced once when Umbraco rejects it).
    async fn fetch(&self, version: Uuid) -> Result<Option<Uuid>, UmbracoError> {
        let path = format!("/document-version/{version}");
        match self
            .reader
            .get::<VersionAnswer>(ENDPOINT, &path, &[])
            .await?
        {
            Found::NotFound => Ok(None),
            Found::Yes(v) if v.id != version => Err(UmbracoError::Unusable {
                path: ENDPOINT,
                why: "the answer is about another version",
            }),
            Found::Yes(v) => Ok(v.document.map(|d| d.id)),
        }
    }
}
