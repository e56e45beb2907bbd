//! `GET user/current` (`GetCurrentUserController` →
//! `UserPresentationFactory.CreateCurrentUserResponseModelAsync`): the caller's sections,
//! calculated start nodes, languages, fallback permissions (union of the groups' defaults) and
//! one aggregated `DocumentPermissionPresentationModel` per document that has a granular entry
//! in any of the user's groups (verbs resolved along the document's path,
//! `DocumentPermissionMapper.AggregatePresentationModels`), shaped as `CurrentUserResponseModel`
//! in Umbraco 17's `OpenApi.json`.

use super::auth;
use super::model::{State, Tree, User};
use super::{Reply, Req};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

fn refs(keys: impl IntoIterator<Item = Uuid>) -> Value {
    Value::Array(keys.into_iter().map(|k| json!({"id": k})).collect())
}

/// `SectionMapper.GetName`: a section alias as the Management API names it.
pub fn section_name(alias: &str) -> &str {
    match alias {
        "content" => "Umb.Section.Content",
        "media" => "Umb.Section.Media",
        "member" => "Umb.Section.Members",
        "settings" => "Umb.Section.Settings",
        "packages" => "Umb.Section.Packages",
        "translation" => "Umb.Section.Translation",
        "users" => "Umb.Section.Users",
        "forms" => "Umb.Section.Forms",
        "library" => "Umb.Section.Library",
        other => other,
    }
}

/// The current user.
pub fn current(state: &mut State, req: &Req) -> Reply {
    let key = match auth::backoffice_user(state, req) {
        Ok(k) => k,
        Err(reply) => return reply,
    };
    let Some(user) = state.users.get(&key) else {
        return Reply::empty(401);
    };
    Reply::json(200, current_user_json(state, user))
}

/// The `CurrentUserResponseModel` of `user`.
pub fn current_user_json(state: &State, user: &User) -> Value {
    let groups: Vec<_> = user
        .groups
        .iter()
        .filter_map(|g| state.groups.get(g))
        .collect();
    // The group API names sections `Umb.Section.*` (`SectionMapper.GetName`).
    let sections: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.sections.iter().map(|s| section_name(s)))
        .collect();
    let fallback: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.fallback.iter().map(String::as_str))
        .collect();
    let languages: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.languages.iter().map(String::as_str))
        .collect();
    let doc_sn = state.calculated_start_nodes(user, Tree::Document);
    let media_sn = state.calculated_start_nodes(user, Tree::Media);
    let with_entries: BTreeSet<Uuid> = groups
        .iter()
        .flat_map(|g| g.granular.keys().copied())
        .collect();
    let mut permissions: Vec<Value> = with_entries
        .into_iter()
        .filter_map(|node| {
            let verbs = state.effective_verbs(user, node)?;
            Some(json!({
                "$type": "DocumentPermissionPresentationModel",
                "document": {"id": node},
                "verbs": verbs,
            }))
        })
        .collect();
    permissions.extend(groups.iter().flat_map(|g| {
        g.property_values.iter().map(|(doc_type, prop, verbs)| {
            json!({
                "$type": "DocumentPropertyValuePermissionPresentationModel",
                "documentType": {"id": doc_type},
                "propertyType": {"id": prop},
                "verbs": verbs,
            })
        })
    }));
    let is_admin = groups.iter().any(|g| g.alias == "admin");
    let sensitive = user
        .groups
        .contains(&portcullis::authz::builtin::SENSITIVE_DATA_GROUP_KEY);
    json!({
        "email": user.email,
        "userName": user.user_name,
        "name": user.name,
        "userGroupIds": refs(user.groups.iter().copied()),
        "id": user.key,
        "languageIsoCode": "en-US",
        "documentStartNodeIds": refs(state.start_node_keys(Tree::Document, &doc_sn)),
        "hasDocumentRootAccess": doc_sn.contains(&super::model::ROOT),
        "mediaStartNodeIds": refs(state.start_node_keys(Tree::Media, &media_sn)),
        "hasMediaRootAccess": media_sn.contains(&super::model::ROOT),
        "avatarUrls": [],
        "languages": languages,
        "hasAccessToAllLanguages": groups.iter().any(|g| g.all_languages),
        "hasAccessToSensitiveData": sensitive,
        "fallbackPermissions": fallback,
        "permissions": permissions,
        "allowedSections": sections,
        "isAdmin": is_admin,
    })
}
