//! The tree listings a mirror pages through, and the item endpoint webhooks are refreshed with:
//! - `GET tree/{document|media}/root` and `…/children?parentId=` (`RootDocumentTreeController`,
//!   `ChildrenDocumentTreeController` → `EntityTreeControllerBase`): live items, sorted by sort
//!   order, paged by `skip`/`take` (defaults 0/100) with `total`; section policy
//!   `SectionAccessForContentTree` / `…MediaTree`. The fake lists the whole tree (the API user
//!   in tests has root start nodes, so Umbraco's start-node filter would drop nothing).
//! - `GET recycle-bin/{document|media}/root` and `…/children` (`RootDocumentRecycleBinController`,
//!   `ChildrenDocumentRecycleBinController` → `RecycleBinControllerBase`): trashed items as
//!   `DocumentRecycleBinItemResponseModel` / `MediaRecycleBinItemResponseModel`; policy
//!   `SectionAccessContent` / `SectionAccessMedia` plus `RequireDocumentTreeRootAccess` /
//!   `RequireMediaTreeRootAccess` (403 without root access).
//! - `GET item/{document|media}?id=…` (`ItemDocumentItemController`): the known ids among those
//!   asked, unfiltered, each with `parent` and `isTrashed`; unknown ids are left out.
//!
//! Every listing endpoint fails with 500 while `State::fail_after` says so ([`fault`]).

use super::auth;
use super::model::{Node, State, Tree, ROOT};
use super::tree::{tree_item, TREE_SECTIONS};
use super::{Reply, Req};
use serde_json::{json, Value};
use std::collections::HashSet;
use uuid::Uuid;

/// 500 when `endpoint` has used up its `fail_after` budget; counts the call otherwise.
pub fn fault(state: &mut State, endpoint: &'static str) -> Option<Reply> {
    let left = state.fail_after.get_mut(endpoint)?;
    if *left == 0 {
        return Some(Reply::problem(500, "Injected failure"));
    }
    *left -= 1;
    None
}

/// `skip`/`take` as ASP.NET binds them (`int`, defaults 0 and 100); 400 when unparsable.
pub fn paging(req: &Req) -> Result<(usize, usize), Reply> {
    let int = |name: &str, default: usize| match req.query_param(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| Reply::problem(400, &format!("The value '{v}' is not valid for {name}."))),
    };
    Ok((int("skip", 0)?, int("take", 100)?))
}

/// `{total, items}` of `items[skip..skip+take]`.
pub fn page(items: Vec<Value>, skip: usize, take: usize) -> Reply {
    let total = items.len();
    let items: Vec<Value> = items.into_iter().skip(skip).take(take).collect();
    Reply::json(200, json!({"total": total, "items": items}))
}

fn tree_of(req: &Req) -> Option<Tree> {
    match req
        .params
        .get("tree")
        .map(|t| t.to_ascii_lowercase())
        .as_deref()
    {
        Some("document") => Some(Tree::Document),
        Some("media") => Some(Tree::Media),
        _ => None,
    }
}

fn caller(state: &State, req: &Req, sections: &[&str]) -> Result<Uuid, Reply> {
    let user = auth::backoffice_user(state, req)?;
    if let Some(u) = state.users.get(&user) {
        auth::require_sections(state, u, sections)?;
    }
    Ok(user)
}

/// The children of `parent` (`None`: the top) in `tree` with trashed state `trashed`, by sort
/// order, with whether each has children.
fn children(state: &State, tree: Tree, parent: Option<Uuid>, trashed: bool) -> Vec<(&Node, bool)> {
    if let Some(index) = &state.tree_index {
        let keys = index.children.get(&(tree, parent, trashed));
        return keys
            .into_iter()
            .flatten()
            .filter_map(|k| state.nodes.get(k))
            .map(|n| (n, index.parents.contains(&n.key)))
            .collect();
    }
    let parents: HashSet<Uuid> = state.nodes.values().filter_map(|n| n.parent).collect();
    let mut list: Vec<&Node> = state
        .nodes
        .values()
        .filter(|n| n.tree == tree && n.parent == parent && n.trashed == trashed)
        .collect();
    list.sort_by_key(|n| (n.sort_order, n.id));
    list.into_iter()
        .map(|n| (n, parents.contains(&n.key)))
        .collect()
}

fn parent_param(req: &Req, under: bool) -> Result<Option<Uuid>, Reply> {
    if !under {
        return Ok(None);
    }
    let raw = req.query_param("parentId").unwrap_or_default();
    Uuid::parse_str(raw.trim())
        .map(Some)
        .map_err(|_| Reply::problem(400, "The value is not valid for parentId."))
}

fn tree_listing(state: &mut State, req: &Req, under: bool) -> Reply {
    let Some(tree) = tree_of(req) else {
        return Reply::empty(404);
    };
    if let Err(r) = caller(state, req, TREE_SECTIONS) {
        return r;
    }
    if let Some(r) = fault(state, req.endpoint) {
        return r;
    }
    let (parent, (skip, take)) = match (parent_param(req, under), paging(req)) {
        (Ok(p), Ok(s)) => (p, s),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let items = children(state, tree, parent, false)
        .into_iter()
        .map(|(n, has)| tree_item(state, n, tree, has))
        .collect();
    page(items, skip, take)
}

pub fn tree_root(state: &mut State, req: &Req) -> Reply {
    tree_listing(state, req, false)
}

pub fn tree_children(state: &mut State, req: &Req) -> Reply {
    tree_listing(state, req, true)
}

fn bin_listing(state: &mut State, req: &Req, under: bool) -> Reply {
    let Some(tree) = tree_of(req) else {
        return Reply::empty(404);
    };
    let section = match tree {
        Tree::Document => "content",
        Tree::Media => "media",
    };
    let user = match caller(state, req, &[section]) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let root = state
        .users
        .get(&user)
        .is_some_and(|u| state.calculated_start_nodes(u, tree).contains(&ROOT));
    if !root {
        return Reply::empty(403);
    }
    if let Some(r) = fault(state, req.endpoint) {
        return r;
    }
    let (parent, (skip, take)) = match (parent_param(req, under), paging(req)) {
        (Ok(p), Ok(s)) => (p, s),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let type_field = match tree {
        Tree::Document => "documentType",
        Tree::Media => "mediaType",
    };
    let items = children(state, tree, parent, true)
        .into_iter()
        .map(|(n, has)| {
            json!({
                "id": n.key,
                "createDate": "2026-01-01T00:00:00Z",
                "hasChildren": has,
                "parent": n.parent.map(|p| json!({"id": p})),
                type_field: {"id": n.content_type, "icon": "icon-document", "collection": null},
                "variants": [{"name": n.name, "culture": null}],
            })
        })
        .collect();
    page(items, skip, take)
}

pub fn bin_root(state: &mut State, req: &Req) -> Reply {
    bin_listing(state, req, false)
}

pub fn bin_children(state: &mut State, req: &Req) -> Reply {
    bin_listing(state, req, true)
}

/// `item/{document|media}?id=…&id=…`: `BackOfficeAccess` only, no section.
pub fn items(state: &mut State, req: &Req) -> Reply {
    let Some(tree) = tree_of(req) else {
        return Reply::empty(404);
    };
    if let Err(r) = auth::backoffice_user(state, req) {
        return r;
    }
    if let Some(r) = fault(state, req.endpoint) {
        return r;
    }
    let wanted: Vec<Uuid> = req
        .query
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("id"))
        .filter_map(|(_, v)| Uuid::parse_str(v.trim()).ok())
        .collect();
    // The parents among all nodes once per call, not a scan of every node per id (Umbraco
    // answers `hasChildren` from an index; the scan made the fake the slowest part of a
    // 1,000-node move webhook).
    let parents: HashSet<Uuid> = state.nodes.values().filter_map(|c| c.parent).collect();
    let out: Vec<Value> = wanted
        .iter()
        .filter_map(|k| state.nodes.get(k))
        .filter(|n| n.tree == tree)
        .map(|n| {
            let has = parents.contains(&n.key);
            let mut v = tree_item(state, n, tree, has);
            if let Some(o) = v.as_object_mut() {
                o.remove("ancestors");
                o.remove("noAccess");
                o.remove("createDate");
            }
            v
        })
        .collect();
    Reply::json(200, Value::Array(out))
}
