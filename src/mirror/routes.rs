//! Delivery routes of the mirrored documents, learnt from the Management API's
//! `GET document/urls?id=…&id=…` (`DocumentUrlController` → `DocumentUrlFactory` →
//! `PublishedUrlInfoProvider.GetAllAsync`): per document, the published URL of each culture
//! Umbraco can route. Without domains that is the **default culture only** (for invariant
//! content it is the only culture asked; for variant content `NewDefaultUrlProvider` gives no
//! URL to another culture without a domain, and the message Umbraco reports instead carries no
//! `url`). A URL is reported only after Umbraco routed it back to the same document
//! (`VerifyCollisionAsync`, else a collision message), through the same
//! `DocumentUrlService.GetDocumentKeyByRoute` a Delivery by-path request ends in.
//!
//! With `hideTopLevelNodeFromPath` (Umbraco's default) a non-root document's URL leaves out its
//! root's segment, so it *is* the Delivery `route.path` (`ApiContentRouteBuilder` trims the
//! root's segment only when the setting is off): `/blog/post-1/` for a node at depth 3. The
//! first published root's URL is `/`; another root's is `/{its segment}/`, the path Umbraco
//! serves it at when no `Start-Item` is sent. The mirror keeps a URL only in that form —
//! relative, one segment fewer than the node's depth, or a root's own one-segment URL — and
//! only when every URL Umbraco reports for the node is the same route. Anything else leaves the
//! route empty and by-path requests on the node follow the unknown-node mode: an absolute URL
//! (a domain), a URL under a virtual directory, `hideTopLevelNodeFromPath = false` (non-root
//! URLs then carry the root's segment), an unpublished or trashed document (no URL).

use super::client::{each_bounded, Reader};
use super::{Mirror, SyncConfig, SyncError};
use crate::store::postgres::mirror::{KindReport, MirrorNode, Ticket};
use crate::store::postgres::mirror_routes::{self as sql, MirrorRoute};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

/// Ids asked for per `document/urls` call.
const URL_BATCH: usize = 40;

/// `DocumentUrlInfoResponseModel`: a document's URLs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentUrls {
    pub id: Uuid,
    #[serde(default)]
    pub url_infos: Vec<UrlInfo>,
}

/// `DocumentUrlInfoModel`: one URL (`url`), per culture (`null` for invariant content under
/// a domain); `isExternal` on newer versions.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlInfo {
    #[serde(default)]
    pub culture: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub is_external: bool,
}

/// The Delivery route of a document at `depth` (a root is 1) from the URLs Umbraco reports for
/// it: `Some` only when every URL is in the Delivery form and they all agree.
pub fn delivery_route(infos: &[UrlInfo], depth: usize) -> Option<String> {
    let mut route: Option<String> = None;
    for info in infos {
        let Some(url) = info.url.as_deref() else {
            continue;
        };
        let this = route_of(url, depth, info.is_external)?;
        match &route {
            Some(seen) if *seen != this => return None,
            _ => route = Some(this),
        }
    }
    route
}

/// One URL as a Delivery route (`/a/b/`, the root `/`), or `None` when it is not one.
fn route_of(url: &str, depth: usize, external: bool) -> Option<String> {
    let plain = |c: char| !c.is_control() && !matches!(c, '?' | '#' | '%' | '\\');
    if external || !url.starts_with('/') || url.starts_with("//") || !url.chars().all(plain) {
        return None;
    }
    let segments: Vec<&str> = url.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return None;
    }
    let n = segments.len();
    if n + 1 != depth && !(depth == 1 && n == 1) {
        return None;
    }
    let mut route = String::from("/");
    for s in segments {
        route.push_str(s);
        route.push('/');
    }
    Some(route)
}

/// The depth of every live node of a walked tree (parents come before their children); trashed
/// nodes and nodes whose parent was not seen have none.
pub fn live_depths(nodes: &[MirrorNode]) -> Vec<(Uuid, usize)> {
    let mut depth: HashMap<Uuid, usize> = HashMap::with_capacity(nodes.len());
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes.iter().filter(|n| !n.trashed) {
        let d = match n.parent {
            None => 1,
            Some(p) => match depth.get(&p) {
                Some(d) => d + 1,
                None => continue,
            },
        };
        depth.insert(n.key, d);
        out.push((n.key, d));
    }
    out
}

/// The routes of `live` documents (key, depth), read `URL_BATCH` ids per call with at most
/// `sync.concurrency` calls in flight. A document Umbraco does not list gets no route.
pub async fn read_routes(
    reader: &Reader,
    cfg: &SyncConfig,
    live: &[(Uuid, usize)],
) -> Result<Vec<MirrorRoute>, SyncError> {
    // Owned batches: the futures then borrow nothing but the reader.
    let batches = live.chunks(URL_BATCH).map(<[_]>::to_vec);
    let read = |chunk| read_batch(reader, chunk);
    let into = Vec::with_capacity(live.len());
    each_bounded(batches, cfg.concurrency, read, into).await
}

/// One `document/urls` call: the routes of `chunk`.
async fn read_batch(
    reader: &Reader,
    chunk: Vec<(Uuid, usize)>,
) -> Result<Vec<MirrorRoute>, SyncError> {
    let query: Vec<(&str, String)> = chunk.iter().map(|(k, _)| ("id", k.to_string())).collect();
    let found: Vec<DocumentUrls> = reader
        .get_found("document_urls", "/document/urls", &query)
        .await?;
    let by_key: HashMap<Uuid, &DocumentUrls> = found.iter().map(|d| (d.id, d)).collect();
    let routes = chunk.iter().map(|(key, depth)| MirrorRoute {
        key: *key,
        depth: *depth,
        route: by_key
            .get(key)
            .and_then(|d| delivery_route(&d.url_infos, *depth)),
    });
    Ok(routes.collect())
}

impl Mirror {
    /// Re-reads the routes of `keys` and of every mirrored document below them (a rename,
    /// publish or move changes the routes of the whole subtree) and applies them. When one of
    /// `keys` is a root, every document's: which root is first, and the roots' segments, decide
    /// what Umbraco walks first for any path (`GetDocumentKeyByRoute` tries the first root's
    /// segment before the children of the roots).
    pub(super) async fn refresh_routes(
        &self,
        keys: &[Uuid],
        ticket: Ticket,
    ) -> Result<KindReport, SyncError> {
        let t = self.cfg.apply_timeout;
        let mut subtree = sql::subtree_depths(&self.pool, Some(keys), t).await?;
        let root_named = subtree
            .iter()
            .any(|(k, d)| *d == Some(1) && keys.contains(k));
        if root_named {
            subtree = sql::subtree_depths(&self.pool, None, t).await?;
        }
        let live: Vec<(Uuid, usize)> = subtree
            .iter()
            .filter_map(|(k, d)| d.map(|d| (*k, d)))
            .collect();
        let mut routes = read_routes(&self.reader, &self.cfg, &live).await?;
        routes.extend(
            subtree
                .iter()
                .filter(|(_, d)| d.is_none())
                .map(|(k, _)| MirrorRoute {
                    key: *k,
                    depth: 0,
                    route: None,
                }),
        );
        Ok(sql::set_routes(&self.pool, &routes, ticket, t).await?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn url(culture: &str, url: &str) -> UrlInfo {
        UrlInfo {
            culture: Some(culture.into()),
            url: Some(url.into()),
            is_external: false,
        }
    }

    #[test]
    fn urls_in_the_delivery_form_become_routes() {
        assert_eq!(
            delivery_route(&[url("en-US", "/")], 1).as_deref(),
            Some("/")
        );
        assert_eq!(
            delivery_route(&[url("en-US", "/site-b/")], 1).as_deref(),
            Some("/site-b/")
        );
        assert_eq!(
            delivery_route(&[url("en-US", "/blog/post-1/")], 3).as_deref(),
            Some("/blog/post-1/")
        );
        assert_eq!(
            delivery_route(&[url("en-US", "/blog/post-1")], 3).as_deref(),
            Some("/blog/post-1/"),
            "AddTrailingSlash off"
        );
        // Messages (no url) are skipped; equal URLs of several cultures agree.
        let message = UrlInfo {
            culture: Some("da-DK".into()),
            url: None,
            is_external: false,
        };
        let infos = [message, url("en-US", "/blog/"), url("de-DE", "/blog/")];
        assert_eq!(delivery_route(&infos, 2).as_deref(), Some("/blog/"));
    }

    #[test]
    fn anything_else_leaves_the_route_empty() {
        assert_eq!(delivery_route(&[], 2), None, "unpublished: no URL");
        // hideTopLevelNodeFromPath = false, or a virtual directory: one segment too many.
        assert_eq!(delivery_route(&[url("en-US", "/home/blog/")], 2), None);
        // A domain: absolute, protocol-relative or external.
        assert_eq!(
            delivery_route(&[url("en-US", "https://a.example/blog/")], 2),
            None
        );
        assert_eq!(
            delivery_route(&[url("en-US", "//a.example/blog/")], 2),
            None
        );
        let mut ext = url("en-US", "/blog/");
        ext.is_external = true;
        assert_eq!(delivery_route(&[ext], 2), None);
        // Cultures that disagree, or one URL in another form.
        let two = [url("en-US", "/blog/"), url("da-DK", "/blogg/")];
        assert_eq!(delivery_route(&two, 2), None);
        let mixed = [url("en-US", "/blog/"), url("da-DK", "https://b.example/")];
        assert_eq!(delivery_route(&mixed, 2), None);
        for odd in ["/a/../", "/a?b", "/a%2Fb/", "/a\\b/", "/a#b"] {
            assert_eq!(delivery_route(&[url("en-US", odd)], 2), None, "{odd}");
        }
        assert_eq!(delivery_route(&[url("en-US", "/")], 2), None);
    }

    #[test]
    fn depths_follow_parents_and_skip_the_bin() {
        let k = |n| Uuid::from_u128(n);
        let node = |key, parent, trashed| MirrorNode {
            key,
            parent,
            trashed,
        };
        let nodes = [
            node(k(1), None, false),
            node(k(2), Some(k(1)), false),
            node(k(3), Some(k(2)), false),
            node(k(4), None, true),
            node(k(5), Some(k(4)), false),
        ];
        assert_eq!(live_depths(&nodes), [(k(1), 1), (k(2), 2), (k(3), 3)]);
    }
}
