//! Writing documents, as far as tests of what reaches Umbraco need it:
//! - `POST document` (`CreateDocumentController.Create`): `ContentPermissionResource` with
//!   `ActionNew` on `parent.id` (the root when `parent` is null, the user's default verbs);
//!   a parent the fake does not know → 404 problem; success → 201, no body, `Location` and
//!   `Umb-Generated-Resource` naming the new key (`CreatedAtId`).
//! - `PUT document/{id}` (`UpdateDocumentController` → `UpdateDocumentControllerBase`, whose
//!   permission check is commented out upstream): an unknown document → 404 problem, else 200.
//!
//! Both sit behind `DocumentControllerBase`'s content-section policy. The request model is not
//! validated beyond the parent: the fake keeps only the name.

use super::auth;
use super::model::{State, Tree};
use super::{Reply, Req};
use serde_json::Value;
use std::collections::BTreeSet;
use uuid::Uuid;

const CREATE: &str = "Umb.Document.Create";

/// The approved caller holding the content section, or Umbraco's 401/403.
fn content_user(state: &State, req: &Req) -> Result<Uuid, Reply> {
    let key = auth::backoffice_user(state, req)?;
    let user = state.users.get(&key).ok_or_else(|| Reply::empty(401))?;
    auth::require_sections(state, user, &["content"])?;
    Ok(key)
}

/// A JSON property by name, case-insensitively (ASP.NET's model binding).
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

pub fn create(state: &mut State, req: &Req) -> Reply {
    let user = match content_user(state, req) {
        Ok(u) => u,
        Err(reply) => return reply,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Reply::problem(400, "The request body is not valid JSON.");
    };
    let parent = match field(&body, "parent").and_then(|p| field(p, "id")) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
            Some(k) => Some(k),
            None => return Reply::problem(400, "The value is not valid for parent.id."),
        },
    };
    let u = &state.users[&user];
    let verbs: BTreeSet<String> = match parent {
        Some(p) if !state.nodes.contains_key(&p) => {
            return Reply::problem(404, "The parent could not be found")
        }
        Some(p) => state.effective_verbs(u, p).unwrap_or_default(),
        None => u
            .groups
            .iter()
            .filter_map(|g| state.groups.get(g))
            .flat_map(|g| g.fallback.iter().cloned())
            .collect(),
    };
    if !verbs.contains(CREATE) {
        return Reply::empty(403);
    }
    let name = field(&body, "variants")
        .and_then(|v| v.get(0))
        .and_then(|v| field(v, "name"))
        .and_then(Value::as_str)
        .unwrap_or("New document")
        .to_owned();
    let key = state.add_node(Tree::Document, &name, parent);
    Reply::empty(201)
        .header(
            "location",
            format!("/umbraco/management/api/v1/document/{key}"),
        )
        .header("umb-generated-resource", key.to_string())
}

pub fn update(state: &mut State, req: &Req) -> Reply {
    if let Err(reply) = content_user(state, req) {
        return reply;
    }
    let known = req
        .params
        .get("id")
        .and_then(|id| Uuid::parse_str(id).ok())
        .is_some_and(|k| {
            state
                .nodes
                .get(&k)
                .is_some_and(|n| n.tree == Tree::Document)
        });
    if known {
        Reply::empty(200)
    } else {
        Reply::problem(404, "The document could not be found")
    }
}
