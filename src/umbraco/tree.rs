//! Nodes the policy store does not know, resolved through Umbraco's tree API with the gateway's
//! API user: `GET tree/{document|media}/ancestors?descendantId=` (`AncestorsDocumentTreeController`
//! → `EntityTreeControllerBase.GetAncestors`: the item and its ancestors root first, each with
//! `id`, `parent` and `isTrashed`; `[]` for an unknown id). Until the mirror feeds the store in
//! bulk, this keeps a decision on such a node possible.
//!
//! Umbraco's API shows keys, never the int ids a path is made of. An ancestor the store knows
//! keeps its stored id; any other node gets a synthetic id derived from its key, in a range no
//! Umbraco id reaches (`[2^61, 2^62)`), so the same key always maps to the same id and never to
//! a real node's. Answers are cached (`node_ttl`; unknown nodes 5 s) and concurrent misses
//! share one call.

use moka::future::Cache;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::{parse_json, ApiUser, ManagementClient, UmbracoError};
use crate::authz::{
    NodeId, NodeInfo, NodeKind, NodePath, CONTENT_RECYCLE_BIN_ID, MEDIA_RECYCLE_BIN_ID, ROOT_ID,
};
use crate::store::PolicyCache;

const DOCUMENT_ANCESTORS: &str = "/umbraco/management/api/v1/tree/document/ancestors";
const MEDIA_ANCESTORS: &str = "/umbraco/management/api/v1/tree/media/ancestors";
/// How long "Umbraco does not know this key" is believed.
const UNKNOWN_TTL: Duration = Duration::from_secs(5);
/// Ancestor answers are small (one item per level); anything larger is refused.
const ANSWER_LIMIT: usize = 1024 * 1024;
/// Deeper chains are refused (Umbraco's path column holds 150 characters).
const MAX_DEPTH: usize = 64;

/// The id the gateway gives a node known only by its key (see the module notes).
pub fn synthetic_id(key: Uuid) -> NodeId {
    let low = key.as_u128() as u64;
    ((low >> 3) | (1 << 61)) as NodeId
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ref {
    id: Uuid,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TreeItem {
    id: Uuid,
    parent: Option<Ref>,
    #[serde(default)]
    is_trashed: bool,
}

type Entry = Option<Arc<NodeInfo>>;

struct NodeExpiry(Duration);

impl moka::Expiry<Uuid, Entry> for NodeExpiry {
    fn expire_after_create(&self, _: &Uuid, value: &Entry, _: Instant) -> Option<Duration> {
        Some(if value.is_some() { self.0 } else { UNKNOWN_TTL })
    }
}

/// Resolves unknown node keys through the tree API. Share it in an `Arc`.
pub struct NodeResolver {
    client: ManagementClient,
    api_user: Arc<ApiUser>,
    timeout: Duration,
    cache: Cache<Uuid, Entry>,
    calls: AtomicU64,
}

impl NodeResolver {
    pub fn new(
        client: ManagementClient,
        api_user: Arc<ApiUser>,
        timeout: Duration,
        ttl: Duration,
    ) -> Self {
        NodeResolver {
            client,
            api_user,
            timeout,
            cache: Cache::builder()
                .max_capacity(100_000)
                .expire_after(NodeExpiry(ttl))
                .build(),
            calls: AtomicU64::new(0),
        }
    }

    /// How many tree calls were made (tests, notes).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The node with `key` as Umbraco's tree shows it (document tree first, then media);
    /// `None` when Umbraco knows neither.
    pub async fn node(
        &self,
        key: Uuid,
        store: &PolicyCache,
    ) -> Result<Option<Arc<NodeInfo>>, Arc<UmbracoError>> {
        self.cache
            .try_get_with(key, async move {
                for (path, kind) in [
                    (DOCUMENT_ANCESTORS, NodeKind::Document),
                    (MEDIA_ANCESTORS, NodeKind::Media),
                ] {
                    let chain = self.ancestors(path, key).await?;
                    if !chain.is_empty() {
                        return to_node(key, kind, &chain, store).await.map(Some);
                    }
                }
                Ok(None)
            })
            .await
    }

    /// One ancestors call with the API user's token (replaced once when Umbraco rejects it).
    async fn ancestors(
        &self,
        path: &'static str,
        key: Uuid,
    ) -> Result<Vec<TreeItem>, UmbracoError> {
        let mut token = self.api_user.token().await?;
        for attempt in 0..2 {
            let req = self
                .client
                .request(
                    reqwest::Method::GET,
                    &format!("{path}?descendantId={key}"),
                    self.timeout,
                )
                .header(http::header::AUTHORIZATION, token.authorization().clone());
            self.calls.fetch_add(1, Ordering::Relaxed);
            let answer = self.client.send(path, req, ANSWER_LIMIT).await?;
            if answer.status == http::StatusCode::UNAUTHORIZED && attempt == 0 {
                token = self.api_user.replace(&token).await?;
                continue;
            }
            if !answer.status.is_success() {
                return Err(UmbracoError::Status {
                    path,
                    status: answer.status.as_u16(),
                });
            }
            return parse_json(path, &answer.body);
        }
        Err(UmbracoError::Status { path, status: 401 })
    }
}

/// The node at the end of `chain` (root first), with every link checked.
async fn to_node(
    key: Uuid,
    kind: NodeKind,
    chain: &[TreeItem],
    store: &PolicyCache,
) -> Result<Arc<NodeInfo>, UmbracoError> {
    let unusable = |why| UmbracoError::Unusable {
        path: DOCUMENT_ANCESTORS,
        why,
    };
    if chain.len() > MAX_DEPTH {
        return Err(unusable("the ancestor chain is too deep"));
    }
    let linked = chain.iter().enumerate().all(|(i, item)| {
        let want = i.checked_sub(1).map(|p| chain[p].id);
        item.parent.as_ref().map(|r| r.id) == want
    });
    let last = chain.last().map(|i| i.id);
    if !linked || last != Some(key) {
        return Err(unusable("the ancestors do not form a chain to the node"));
    }
    let trashed = chain.iter().any(|i| i.is_trashed);
    let mut ids = vec![ROOT_ID];
    if trashed {
        ids.push(match kind {
            NodeKind::Media => MEDIA_RECYCLE_BIN_ID,
            _ => CONTENT_RECYCLE_BIN_ID,
        });
    }
    for item in chain {
        let stored = store.node(item.id).await.ok().flatten().map(|n| n.id);
        ids.push(stored.unwrap_or_else(|| synthetic_id(item.id)));
    }
    let path = NodePath(ids.into());
    Ok(Arc::new(NodeInfo {
        key,
        id: path.node(),
        kind,
        path,
        trashed,
        route_path: None,
        public_access: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_ids_are_stable_positive_and_beyond_umbracos_ids() {
        for k in [Uuid::nil(), Uuid::max(), Uuid::new_v4()] {
            let id = synthetic_id(k);
            assert_eq!(id, synthetic_id(k));
            assert!((1 << 61..1 << 62).contains(&id), "{id}");
        }
        assert_ne!(
            synthetic_id(Uuid::from_u128(8)),
            synthetic_id(Uuid::from_u128(16))
        );
    }
}
