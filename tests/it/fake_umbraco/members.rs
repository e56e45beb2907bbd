//! Members, member groups, public-access entries and languages, as the mirror reads them:
//! - `GET document/{id}/public-access` (`GetPublicAccessDocumentController`): the document's
//!   *own* entry (`GetEntryByContentKeyWithoutAncestorsAsync`; with `includeAncestors=true`
//!   the nearest one, flagged `isProtectedByAncestor`), shaped by
//!   `PublicAccessPresentationFactory`: the rule usernames as `MemberItemResponseModel`s of the
//!   members that exist, the rule role names as `MemberGroupItemResponseModel`s of the groups
//!   that exist; 404 problem for an unknown document or a node without its own entry;
//! - `GET member/{id}` (`ByKeyMemberController`): `MemberResponseModel` with `username`, 404
//!   problem when unknown; the Members section is required;
//! - `GET language` (`AllLanguageController`): `PagedLanguageResponseModel`.
//!
//! The tree listings mark `isProtected` on a node with an entry on it or an ancestor
//! ([`State::is_protected`]).

use super::listing::{fault, page, paging};
use super::model::State;
use super::{auth, Reply, Req};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Member {
    pub key: Uuid,
    pub username: String,
    pub name: String,
    pub groups: Vec<Uuid>,
}

#[derive(Debug, Clone)]
pub struct MemberGroup {
    pub key: Uuid,
    pub name: String,
}

/// `umbracoAccess` with its rules: the usernames and role names as Umbraco stores them.
#[derive(Debug, Clone)]
pub struct AccessEntry {
    pub key: Uuid,
    pub usernames: Vec<String>,
    pub roles: Vec<String>,
    pub login: Uuid,
    pub error: Uuid,
}

#[derive(Debug, Clone)]
pub struct Language {
    pub iso_code: String,
    pub name: String,
    pub is_default: bool,
    pub is_mandatory: bool,
    pub fallback: Option<String>,
}

/// The member side of the fake's data.
#[derive(Debug, Default)]
pub struct Protection {
    pub members: BTreeMap<Uuid, Member>,
    pub member_groups: BTreeMap<Uuid, MemberGroup>,
    /// Protected node key → its entry.
    pub entries: BTreeMap<Uuid, AccessEntry>,
    pub languages: Vec<Language>,
}

impl State {
    /// Adds a member in the member groups named `groups` (created when missing).
    pub fn add_member(&mut self, username: &str, groups: &[&str]) -> Uuid {
        let groups = groups.iter().map(|g| self.member_group(g)).collect();
        let key = Uuid::new_v4();
        let member = Member {
            key,
            username: username.to_owned(),
            name: username.to_owned(),
            groups,
        };
        self.protection.members.insert(key, member);
        key
    }

    /// The key of the member group `name`, created when missing.
    pub fn member_group(&mut self, name: &str) -> Uuid {
        let p = &mut self.protection;
        if let Some(g) = p.member_groups.values().find(|g| g.name == name) {
            return g.key;
        }
        let key = Uuid::new_v4();
        let name = name.to_owned();
        p.member_groups.insert(key, MemberGroup { key, name });
        key
    }

    /// Protects `node` for these member usernames and group names (replacing its own entry;
    /// login and error pages are the node itself).
    pub fn protect(&mut self, node: Uuid, usernames: &[&str], roles: &[&str]) {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        let entry = AccessEntry {
            key: Uuid::new_v4(),
            usernames: strings(usernames),
            roles: strings(roles),
            login: node,
            error: node,
        };
        self.protection.entries.insert(node, entry);
    }

    /// Removes `node`'s own entry.
    pub fn unprotect(&mut self, node: Uuid) {
        self.protection.entries.remove(&node);
    }

    /// Adds a language (`default`: it becomes the only default one).
    pub fn add_language(&mut self, iso_code: &str, default: bool) {
        let langs = &mut self.protection.languages;
        if default {
            langs.iter_mut().for_each(|l| l.is_default = false);
        }
        langs.retain(|l| !l.iso_code.eq_ignore_ascii_case(iso_code));
        langs.push(Language {
            iso_code: iso_code.to_owned(),
            name: iso_code.to_owned(),
            is_default: default,
            is_mandatory: default,
            fallback: None,
        });
    }

    /// The nearest entry on `node`'s path (itself first) and the node that owns it.
    pub fn nearest_entry(&self, node: Uuid) -> Option<(Uuid, &AccessEntry)> {
        let mut cur = Some(node);
        while let Some(k) = cur {
            if let Some(e) = self.protection.entries.get(&k) {
                return Some((k, e));
            }
            cur = self.nodes.get(&k).and_then(|n| n.parent);
        }
        None
    }

    /// `isProtected` of a tree item: an entry on the node or an ancestor.
    pub fn is_protected(&self, node: Uuid) -> bool {
        !self.protection.entries.is_empty() && self.nearest_entry(node).is_some()
    }
}

fn caller_in(state: &State, req: &Req, sections: &[&str]) -> Result<(), Reply> {
    let user = auth::backoffice_user(state, req)?;
    match state.users.get(&user) {
        Some(u) => auth::require_sections(state, u, sections),
        None => Err(Reply::empty(401)),
    }
}

fn key_param(req: &Req) -> Option<Uuid> {
    req.params.get("id").and_then(|k| Uuid::parse_str(k).ok())
}

/// `GET document/{id}/public-access`.
pub fn document_public_access(state: &mut State, req: &Req) -> Reply {
    if let Err(r) = caller_in(state, req, &["content"]) {
        return r;
    }
    if let Some(r) = fault(state, req.endpoint) {
        return r;
    }
    let Some(key) = key_param(req).filter(|k| state.nodes.contains_key(k)) else {
        return Reply::problem(404, "The document could not be found");
    };
    let with_ancestors = req
        .query_param("includeAncestors")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let found = match state.nearest_entry(key) {
        Some((owner, e)) if owner == key || with_ancestors => Some((owner, e)),
        _ => None,
    };
    let Some((owner, e)) = found else {
        return Reply::problem(404, "The public access entry could not be found");
    };
    let p = &state.protection;
    let members: Vec<Value> = e
        .usernames
        .iter()
        .filter_map(|u| {
            p.members
                .values()
                .find(|m| m.username.eq_ignore_ascii_case(u))
        })
        .map(|m| {
            json!({"id": m.key, "flags": [], "kind": "Default",
                   "memberType": {"id": Uuid::from_u128(0x3E3B3E), "icon": "icon-user"},
                   "variants": [{"name": m.name, "culture": null}]})
        })
        .collect();
    let groups: Vec<Value> = e
        .roles
        .iter()
        .filter_map(|r| p.member_groups.values().find(|g| &g.name == r))
        .map(|g| json!({"id": g.key, "flags": [], "name": g.name}))
        .collect();
    Reply::json(
        200,
        json!({"loginDocument": {"id": e.login}, "errorDocument": {"id": e.error},
               "members": members, "groups": groups, "isProtectedByAncestor": owner != key}),
    )
}

/// `GET member/{id}`.
pub fn member(state: &mut State, req: &Req) -> Reply {
    if let Err(r) = caller_in(state, req, &["member"]) {
        return r;
    }
    if let Some(r) = fault(state, req.endpoint) {
        return r;
    }
    let Some(m) = key_param(req).and_then(|k| state.protection.members.get(&k)) else {
        return Reply::problem(404, "The member could not be found");
    };
    Reply::json(
        200,
        json!({"id": m.key, "email": format!("{}@example.invalid", m.username),
               "username": m.username, "memberType": {"id": Uuid::from_u128(0x3E3B3E)},
               "isApproved": true, "isLockedOut": false, "isTwoFactorEnabled": false,
               "failedPasswordAttempts": 0, "groups": m.groups, "values": [],
               "variants": [{"name": m.name, "culture": null, "segment": null}], "flags": []}),
    )
}

/// `GET language`.
pub fn languages(state: &mut State, req: &Req) -> Reply {
    if let Err(r) = auth::backoffice_user(state, req) {
        return r;
    }
    if let Some(r) = fault(state, req.endpoint) {
        return r;
    }
    let (skip, take) = match paging(req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let items: Vec<Value> = state
        .protection
        .languages
        .iter()
        .map(|l| {
            json!({"name": l.name, "isDefault": l.is_default, "isMandatory": l.is_mandatory,
                   "fallbackIsoCode": l.fallback, "isoCode": l.iso_code})
        })
        .collect();
    page(items, skip, take)
}
