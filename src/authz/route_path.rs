//! Delivery item paths resolved the way Umbraco resolves them, or refused.
//!
//! Umbraco's `ByRouteContentApiController` hands the decoded path to `ApiContentPathResolver`,
//! which asks `RequestRoutingService.GetContentRoute` for a content route: `{startItem.Id}{path}`
//! when the `Start-Item` header names a root (`RequestStartItemProvider` looks among root
//! documents only, by key or by URL segment), `{domain node id}{path}` when the request's host
//! matches a configured domain, else the bare path, which `DocumentUrlService.GetDocumentKeyByRoute`
//! walks from the root documents in their sort order. The route a node answers to is the
//! `route.path` the Delivery API reports for it (`ApiContentRouteBuilder`), relative to its root.
//!
//! The store holds each document's `route_path` in that form (`/blog/post-1/`); the mirror
//! learns it from Umbraco's `document/urls` (`src/mirror/routes.rs`): the published URL in
//! Umbraco's default culture, reported only after Umbraco routed it back to the same document.
//! Umbraco walks the request's culture (`RequestCultureService`: `Accept-Language` when it
//! matches `^[\w-]*$`, else the default language) and, for `Preview`, draft segments; so a
//! decision uses the routes only for a published read in the default culture
//! ([`resolve_route_for`]: no culture Umbraco honours, or the default one),
//! anything else follows the unknown-node mode. Under a `Start-Item` the bare path is the root
//! itself and any other path a document below it. Portcullis compares route keys
//! ([`route_key`]: ASCII letters folded, empty segments dropped, one leading and one trailing
//! `/`) and keeps the candidates under the request's root — the `Start-Item`
//! root, else every root. Exactly one candidate is the node; none is unknown; several are
//! **ambiguous** (Umbraco would pick by sort order, which the mirror does not hold), and both
//! follow the unknown-node mode. Umbraco compares URL segments ordinally, so a node it serves
//! always shares Portcullis's route key: one candidate means the same node. Refused, never
//! guessed: a `Start-Item` given as a URL segment (the mirror holds no segments: send the root's
//! key, `route.startItem.id`) and a `Start-Item` that is not a live root document (Umbraco
//! answers 404 for it). Not modelled (docs/AUTHZ.md): domains (the mirror leaves such routes
//! empty), routes of other cultures and drafts; for routes written by hand, the paths Umbraco
//! serves through a root's own URL segment (the mirror's routes are collision-checked by
//! Umbraco).

use super::delivery::requested_culture;
use super::lookup::Resolved;
use super::model::{NodeInfo, NodeKind};
use crate::request::{DeliveryQuery, NodeRef};
use std::sync::Arc;

/// The comparison key of a Delivery route: ASCII letters lower-cased, empty segments dropped,
/// one leading and one trailing `/` (`/Blog//Post-1` → `/blog/post-1/`; the root is `/`).
/// Stores index routes by the same key (the Postgres store by `portcullis_route_key`).
pub fn route_key(path: &str) -> String {
    let mut key = String::with_capacity(path.len() + 2);
    key.push('/');
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        key.push_str(&seg.to_ascii_lowercase());
        key.push('/');
    }
    key
}

/// What an item path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAnswer {
    /// Exactly one node: the one Umbraco serves.
    Node(Arc<NodeInfo>),
    /// No node, or the request's root cannot be resolved (note says which).
    Unknown(String),
    /// Several nodes inside the request's root answer to the path.
    Ambiguous(usize),
    /// A lookup the decision needed was never answered (fail closed).
    NotLookedUp,
}

/// The root a request's item paths are relative to.
enum Root {
    Any,
    Node(Arc<NodeInfo>),
    Unresolved(String),
    NotLookedUp,
}

fn request_root(resolved: &Resolved, q: Option<&DeliveryQuery>) -> Root {
    let Some(q) = q else { return Root::Any };
    match &q.start_item {
        Some(NodeRef::Key(k)) => match resolved.nodes.get(k) {
            None => Root::NotLookedUp,
            Some(Some(n)) if is_live_root(n) => Root::Node(n.clone()),
            Some(_) => Root::Unresolved(format!("Start-Item {k} is not a root document")),
        },
        Some(NodeRef::Path(seg)) => Root::Unresolved(format!(
            "Start-Item `{seg}` is a URL segment; the mirror resolves only a root's key"
        )),
        Some(NodeRef::Root | NodeRef::RecycleBin) => Root::Unresolved("Start-Item".into()),
        None => Root::Any,
    }
}

/// A root document: `-1,<id>`, not trashed.
pub(crate) fn is_live_root(n: &NodeInfo) -> bool {
    n.kind == NodeKind::Document && !n.trashed && n.path.ids().len() == 2
}

/// Resolves the item path `path` of a request with Delivery details `q`.
pub fn resolve_route(resolved: &Resolved, q: Option<&DeliveryQuery>, path: &str) -> RouteAnswer {
    let Some(candidates) = resolved.paths.get(&route_key(path)) else {
        return RouteAnswer::NotLookedUp;
    };
    let root = match request_root(resolved, q) {
        Root::NotLookedUp => return RouteAnswer::NotLookedUp,
        Root::Unresolved(why) => return RouteAnswer::Unknown(why),
        Root::Any => None,
        Root::Node(n) => Some(n),
    };
    // Under a Start-Item Umbraco walks the root's children: `/` is the root itself, any other
    // path a document below it (`GetDocumentKeyByRoute` with a start node).
    if let Some(r) = &root {
        if route_key(path) == "/" {
            return RouteAnswer::Node(r.clone());
        }
    }
    let mut inside = candidates.iter().filter(|n| {
        n.kind == NodeKind::Document
            && !n.trashed
            && root
                .as_ref()
                .is_none_or(|r| n.path.contains(r.id) && n.id != r.id)
    });
    match (inside.next(), inside.count()) {
        (None, _) => RouteAnswer::Unknown(match root {
            Some(r) => format!("no document answers to the path under node {}", r.id),
            None => "no document answers to the path".into(),
        }),
        (Some(n), 0) => RouteAnswer::Node(n.clone()),
        (Some(_), more) => RouteAnswer::Ambiguous(more + 1),
    }
}

/// What a decision takes an item path to be: [`resolve_route`] when the routes the mirror holds
/// are the ones Umbraco walks for this request — published routes in the default culture —,
/// else `Unknown`: a `Preview` request (Umbraco walks draft URL segments) or one whose
/// `Accept-Language` names a culture other than the default one — `configured`
/// (`authz.delivery_default_culture`), else the mirrored default language
/// ([`Lookup::DefaultCulture`](super::Lookup)); neither known: any named culture.
pub fn resolve_route_for(
    resolved: &Resolved,
    q: Option<&DeliveryQuery>,
    path: &str,
    configured: Option<&str>,
) -> RouteAnswer {
    if q.is_some_and(|q| q.preview) {
        return RouteAnswer::Unknown(
            "a preview walks draft URL segments; the mirror holds published routes only".into(),
        );
    }
    if let Some(c) = requested_culture(q) {
        let mirrored = resolved.default_culture.as_ref().and_then(|d| d.as_deref());
        if !configured
            .or(mirrored)
            .is_some_and(|d| d.eq_ignore_ascii_case(c))
        {
            return RouteAnswer::Unknown(format!(
                "Accept-Language `{c}` is not the default culture; the mirror holds routes in \
                 the default culture only"
            ));
        }
    }
    resolve_route(resolved, q, path)
}

/// The node an item path resolves to, when it resolves to exactly one.
pub(crate) fn route_node(
    resolved: &Resolved,
    q: Option<&DeliveryQuery>,
    path: &str,
) -> Option<Arc<NodeInfo>> {
    match resolve_route(resolved, q, path) {
        RouteAnswer::Node(n) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
#[path = "route_path_tests.rs"]
mod tests;
