//! Users and user groups as the back-office lists them, under the `SectionAccessUsers` policy
//! (`UserGroupControllerBase`, `UserControllerBase`):
//! - `GET user-group` (`GetAllUserGroupController`, `skip`/`take` defaults 0/100) and
//!   `GET user-group/{id}` (`ByKeyUserGroupController`, 404 problem when unknown):
//!   `UserGroupResponseModel` (`UserGroupPresentationFactory.CreateAsync`): start node or root
//!   flag, fallback verbs, one `DocumentPermissionPresentationModel` per granular entry (an
//!   empty `verbs` set included) and the property-value entries;
//! - `GET user` (`GetAllUserController`) and `GET user/{id}` (`ByKeyUserController`):
//!   `UserResponseModel` (`UserPresentationFactory.CreateResponseModel`) with the user's *own*
//!   start nodes (`StartContentIds`, `-1` shown as `has…RootAccess`) and `state`.

use super::listing::{fault, page, paging};
use super::model::{Group, Start, State, User, UserKind};
use super::{auth, Reply, Req};
use serde_json::{json, Value};
use uuid::Uuid;

fn users_section(state: &State, req: &Req) -> Result<(), Reply> {
    let user = auth::backoffice_user(state, req)?;
    match state.users.get(&user) {
        Some(u) => auth::require_sections(state, u, &["users"]),
        None => Err(Reply::empty(401)),
    }
}

fn start(s: Option<Start>) -> (Value, bool) {
    match s {
        Some(Start::Root) => (Value::Null, true),
        Some(Start::Node(k)) => (json!({"id": k}), false),
        None => (Value::Null, false),
    }
}

/// The `UserGroupResponseModel` of `g`.
pub fn group_json(g: &Group) -> Value {
    let (doc, doc_root) = start(g.document_start);
    let (media, media_root) = start(g.media_start);
    let mut permissions: Vec<Value> = g
        .granular
        .iter()
        .map(|(node, verbs)| {
            json!({"$type": "DocumentPermissionPresentationModel", "document": {"id": node}, "verbs": verbs})
        })
        .collect();
    permissions.extend(g.property_values.iter().map(|(doc_type, prop, verbs)| {
        json!({
            "$type": "DocumentPropertyValuePermissionPresentationModel",
            "documentType": {"id": doc_type}, "propertyType": {"id": prop}, "verbs": verbs,
        })
    }));
    json!({
        "name": g.name, "alias": g.alias, "description": null, "icon": "icon-users",
        "sections": g.sections, "languages": g.languages,
        "hasAccessToAllLanguages": g.all_languages,
        "documentStartNode": doc, "documentRootAccess": doc_root,
        "mediaStartNode": media, "mediaRootAccess": media_root,
        "fallbackPermissions": g.fallback, "permissions": permissions,
        "id": g.key, "isDeletable": g.alias != "admin", "aliasCanBeChanged": g.alias != "admin",
    })
}

fn refs(keys: &[Uuid]) -> Value {
    Value::Array(keys.iter().map(|k| json!({"id": k})).collect())
}

/// The `UserResponseModel` of `u`.
pub fn user_json(u: &User) -> Value {
    let state = if u.locked {
        "LockedOut"
    } else if !u.approved {
        "Disabled"
    } else {
        "Active"
    };
    json!({
        "email": u.email, "userName": u.user_name, "name": u.name,
        "userGroupIds": refs(&u.groups), "id": u.key, "languageIsoCode": "en-US",
        "documentStartNodeIds": refs(&u.document_starts),
        "hasDocumentRootAccess": u.document_root,
        "mediaStartNodeIds": refs(&u.media_starts), "hasMediaRootAccess": u.media_root,
        "avatarUrls": [], "state": state, "failedLoginAttempts": 0,
        "createDate": "2026-01-01T00:00:00Z", "updateDate": "2026-01-01T00:00:00Z",
        "lastLoginDate": null, "lastLockoutDate": null, "lastPasswordChangeDate": null,
        "isAdmin": false,
        "kind": match u.kind { UserKind::Default => "Default", UserKind::Api => "Api" },
    })
}

fn by_id<'a, T>(req: &Req, get: impl Fn(&Uuid) -> Option<&'a T>) -> Result<&'a T, Reply> {
    let id = req.params.get("id").and_then(|s| Uuid::parse_str(s).ok());
    id.and_then(|k| get(&k))
        .ok_or_else(|| Reply::problem(404, "The item could not be found"))
}

pub fn user_groups(state: &mut State, req: &Req) -> Reply {
    if let Some(r) = users_section(state, req)
        .err()
        .or_else(|| fault(state, req.endpoint))
    {
        return r;
    }
    match paging(req) {
        Ok((skip, take)) => page(state.groups.values().map(group_json).collect(), skip, take),
        Err(r) => r,
    }
}

pub fn user_group(state: &mut State, req: &Req) -> Reply {
    if let Some(r) = users_section(state, req)
        .err()
        .or_else(|| fault(state, req.endpoint))
    {
        return r;
    }
    match by_id(req, |k| state.groups.get(k)) {
        Ok(g) => Reply::json(200, group_json(g)),
        Err(r) => r,
    }
}

pub fn users(state: &mut State, req: &Req) -> Reply {
    if let Some(r) = users_section(state, req)
        .err()
        .or_else(|| fault(state, req.endpoint))
    {
        return r;
    }
    match paging(req) {
        // Only the page is rendered (10,000 users in the mirror bench).
        Ok((skip, take)) => {
            let items = state.users.values().skip(skip).take(take);
            let items: Vec<Value> = items.map(user_json).collect();
            Reply::json(200, json!({"total": state.users.len(), "items": items}))
        }
        Err(r) => r,
    }
}

pub fn user(state: &mut State, req: &Req) -> Reply {
    if let Some(r) = users_section(state, req)
        .err()
        .or_else(|| fault(state, req.endpoint))
    {
        return r;
    }
    match by_id(req, |k| state.users.get(k)) {
        Ok(u) => Reply::json(200, user_json(u)),
        Err(r) => r,
    }
}
