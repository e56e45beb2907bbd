//! `GET tree/{document|media}/ancestors?descendantId=` (`AncestorsDocumentTreeController` →
//! `EntityTreeControllerBase.GetAncestors`): the item and its ancestors of the same tree, root
//! first (ordered by level; the recycle bin is not a document, so a trashed item's ancestors
//! stop below it), each a `DocumentTreeItemResponseModel` / `MediaTreeItemResponseModel`.
//! An unknown id answers 200 with `[]`. No start-node or permission filter applies; the section
//! policy is `SectionAccessForContentTree` / `SectionAccessForMediaTree`.

use super::auth;
use super::model::{Node, State, Tree};
use super::{Reply, Req};
use serde_json::{json, Value};
use uuid::Uuid;

/// Sections of `SectionAccessForContentTree` and `SectionAccessForMediaTree`
/// (`BackOfficeAuthPolicyBuilderExtensions`).
pub(super) const TREE_SECTIONS: &[&str] = &[
    "content", "media", "users", "settings", "packages", "member", "library",
];

pub fn document_ancestors(state: &mut State, req: &Req) -> Reply {
    ancestors(state, req, Tree::Document)
}

pub fn media_ancestors(state: &mut State, req: &Req) -> Reply {
    ancestors(state, req, Tree::Media)
}

fn ancestors(state: &State, req: &Req, tree: Tree) -> Reply {
    let user = match auth::backoffice_user(state, req) {
        Ok(k) => k,
        Err(reply) => return reply,
    };
    if let Some(u) = state.users.get(&user) {
        if let Err(reply) = auth::require_sections(state, u, TREE_SECTIONS) {
            return reply;
        }
    }
    let Some(raw) = req.query_param("descendantId") else {
        return Reply::json(200, json!([]));
    };
    let Ok(key) = Uuid::parse_str(raw.trim()) else {
        return Reply::problem(400, "The value is not valid for descendantId.");
    };
    let mut chain: Vec<&Node> = Vec::new();
    let mut cur = state.nodes.get(&key).filter(|n| n.tree == tree);
    while let Some(n) = cur {
        chain.push(n);
        cur = n.parent.and_then(|p| state.nodes.get(&p));
    }
    chain.reverse();
    let items: Vec<Value> = chain.iter().map(|n| item(state, n, tree)).collect();
    Reply::json(200, Value::Array(items))
}

fn item(state: &State, n: &Node, tree: Tree) -> Value {
    let has_children = state.nodes.values().any(|c| c.parent == Some(n.key));
    tree_item(state, n, tree, has_children)
}

/// The `DocumentTreeItemResponseModel` / `MediaTreeItemResponseModel` of `n`.
pub(super) fn tree_item(state: &State, n: &Node, tree: Tree, has_children: bool) -> Value {
    let ancestors: Vec<Value> = {
        let mut keys = Vec::new();
        let mut cur = n.parent;
        while let Some(p) = cur {
            keys.push(json!({"id": p}));
            cur = state.nodes.get(&p).and_then(|x| x.parent);
        }
        keys.reverse();
        keys
    };
    let common = json!({
        "hasChildren": has_children,
        "id": n.key,
        "parent": n.parent.map(|p| json!({"id": p})),
        "flags": [],
        "noAccess": false,
        "isTrashed": n.trashed,
        "createDate": "2026-01-01T00:00:00Z",
    });
    let mut obj = common.as_object().cloned().unwrap_or_default();
    match tree {
        Tree::Document => {
            obj.insert("isProtected".into(), json!(state.is_protected(n.key)));
            obj.insert("ancestors".into(), Value::Array(ancestors));
            obj.insert(
                "documentType".into(),
                json!({"id": n.content_type, "icon": "icon-document", "collection": null}),
            );
            obj.insert(
                "variants".into(),
                json!([{"name": n.name, "culture": null, "id": n.key, "flags": [], "state": "Published"}]),
            );
        }
        Tree::Media => {
            obj.insert(
                "mediaType".into(),
                json!({"id": n.content_type, "icon": "icon-picture", "collection": null}),
            );
            obj.insert(
                "variants".into(),
                json!([{"name": n.name, "culture": null}]),
            );
        }
    }
    Value::Object(obj)
}
