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

use super::{parse_json, ApiUser, ManagementClient, UmbracoError, UmbracoMetrics};
use moka::future::Cache;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const DOCUMENT_VERSION: &str = "/umbraco/management/api/v1/document-version";
/// The metric/error name of the endpoint.
const ENDPOINT: &str = "document_version";
/// How long "Umbraco has no such version" is believed (it may be created a moment later).
const UNKNOWN_TTL: Duration = Duration::from_secs(5);
/// A version answer carries the version's property values; larger answers are refused.
const ANSWER_LIMIT: usize = 4 * 1024 * 1024;
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
    client: ManagementClient,
    api_user: Arc<ApiUser>,
    metrics: UmbracoMetrics,
    timeout: Duration,
    cache: Cache<Uuid, Option<Uuid>>,
}

impl VersionResolver {
    /// A resolver calling Umbraco through `client` as `api_user`, each call bounded by
    /// `timeout`. No I/O.
    pub fn new(
        client: ManagementClient,
        api_user: Arc<ApiUser>,
        metrics: UmbracoMetrics,
        timeout: Duration,
    ) -> Self {
        VersionResolver {
            client,
            api_user,
            metrics,
            timeout,
            cache: Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(OwnerExpiry)
                .build(),
        }
    }

    /// The key of the document that owns `version`; `None` when Umbraco has no such version.
    pub async fn owner(&self, version: Uuid) -> Result<Option<Uuid>, Arc<UmbracoError>> {
        self.cache
            .try_get_with(version, async move {
                let started = std::time::Instant::now();
                let outcome = self.fetch(version).await;
                self.metrics.observe(ENDPOINT, started.elapsed(), &outcome);
                outcome
            })
            .await
    }

    /// One `GET document-version/{id}` with the API user's token (replaced once when Umbraco
    /// rejects it).
    async fn fetch(&self, version: Uuid) -> Result<Option<Uuid>, UmbracoError> {
        let target = format!("{DOCUMENT_VERSION}/{version}");
        let mut token = self.api_user.token().await?;
        for attempt in 0..2 {
            let req = self
                .client
                .request(reqwest::Method::GET, &target, self.timeout)
                .header(http::header::AUTHORIZATION, token.authorization().clone())
                .header(http::header::ACCEPT, "application/json");
            let answer = self.client.send(ENDPOINT, req, ANSWER_LIMIT).await?;
            match answer.status {
                http::StatusCode::UNAUTHORIZED if attempt == 0 => {
                    token = self.api_user.replace(&token).await?;
                }
                http::StatusCode::NOT_FOUND => return Ok(None),
                s if s.is_success() => {
                    let v: VersionAnswer = parse_json(ENDPOINT, &answer.body)?;
                    if v.id != version {
                        return Err(UmbracoError::Unusable {
                            path: ENDPOINT,
                            why: "the answer is about another version",
                        });
                    }
                    return Ok(v.document.map(|d| d.id));
                }
                s => {
                    return Err(UmbracoError::Status {
                        path: ENDPOINT,
                        status: s.as_u16(),
                    })
                }
            }
        }
        Err(UmbracoError::Status {
            path: ENDPOINT,
            status: 401,
        })
    }
}
