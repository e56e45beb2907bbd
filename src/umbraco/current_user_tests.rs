use super::*;
use crate::authz::resolve::{has_path_access, resolve_at};
use serde_json::json;

const A: Uuid = Uuid::from_u128(0xA);
const B: Uuid = Uuid::from_u128(0xB);
const C: Uuid = Uuid::from_u128(0xC);
const G: Uuid = Uuid::from_u128(0x6);

/// A `CurrentUserResponseModel` as Umbraco 17 sends it (shape from `OpenApi.json`).
fn body(root: bool, starts: &[Uuid], is_admin: bool) -> serde_json::Value {
    json!({
        "email": "e@x", "userName": "editor", "name": "Ed",
        "userGroupIds": [{"id": G}, {"id": ADMIN_GROUP_KEY}],
        "id": Uuid::from_u128(0x55),
        "languageIsoCode": "en-US",
        "documentStartNodeIds": starts.iter().map(|k| json!({"id": k})).collect::<Vec<_>>(),
        "hasDocumentRootAccess": root,
        "mediaStartNodeIds": [], "hasMediaRootAccess": false,
        "avatarUrls": [], "languages": ["da-DK"], "hasAccessToAllLanguages": false,
        "hasAccessToSensitiveData": false,
        "fallbackPermissions": ["Umb.Document.Read"],
        "permissions": [
            {"$type": "DocumentPermissionPresentationModel", "document": {"id": B},
             "verbs": ["Umb.Document.Read", "Umb.Document.Publish"]},
            {"$type": "DocumentPermissionPresentationModel", "document": {"id": C}, "verbs": []},
            {"$type": "DocumentPropertyValuePermissionPresentationModel",
             "documentType": {"id": A}, "propertyType": {"id": B}, "verbs": []}
        ],
        "allowedSections": ["Umb.Section.Content", "Umb.Section.Members", "My.Custom"],
        "isAdmin": is_admin,
    })
}

fn parse(v: serde_json::Value) -> CurrentUser {
    serde_json::from_value(v).unwrap()
}

fn p(s: &str) -> NodePath {
    NodePath::parse(s).unwrap()
}

/// A (1100) > B (1101) > C (1102).
fn paths() -> HashMap<Uuid, NodePath> {
    HashMap::from([
        (A, p("-1,1100")),
        (B, p("-1,1100,1101")),
        (C, p("-1,1100,1101,1102")),
    ])
}

#[test]
fn verbs_are_those_of_the_deepest_listed_ancestor_or_self_else_the_fallback() {
    let access = parse(body(true, &[], false)).to_access(&paths());
    let verbs = |path: &str| resolve_at(&access.groups, &p(path)).effective();
    let read: VerbSet = ["Umb.Document.Read"].iter().collect();
    assert_eq!(verbs("-1,1100"), read);
    assert_eq!(
        verbs("-1,1100,1101,1200"),
        ["Umb.Document.Read", "Umb.Document.Publish"]
            .iter()
            .collect()
    );
    // An empty entry is a real "nothing" below it.
    assert!(verbs("-1,1100,1101,1102,1300").is_empty());
    assert_eq!(verbs("-1,2000"), read);
}

#[test]
fn start_nodes_are_the_calculated_ones() {
    let root = parse(body(true, &[B], false)).to_access(&paths());
    assert!(root.content_start_nodes.has_root());
    let narrow = parse(body(false, &[B], false)).to_access(&paths());
    assert!(has_path_access(
        &narrow.content_start_nodes,
        &p("-1,1100,1101,1102"),
        false
    ));
    assert!(!has_path_access(
        &narrow.content_start_nodes,
        &p("-1,1100"),
        false
    ));
    // An unresolvable start node grants nothing.
    let unknown = parse(body(false, &[Uuid::from_u128(0xF)], false)).to_access(&paths());
    assert!(unknown.content_start_nodes.0.is_empty());
    assert!(!unknown.media_start_nodes.has_root());
}

#[test]
fn sections_languages_and_groups_follow_the_answer() {
    let access = parse(body(true, &[], false)).to_access(&paths());
    let agg = &access.groups[0];
    let sections: Vec<&str> = agg.sections.iter().map(Section::as_str).collect();
    assert_eq!(sections, ["content", "member", "my.custom"]);
    assert_eq!(
        agg.languages,
        LanguageAccess::Only(BTreeSet::from(["da-dk".to_owned()]))
    );
    // Member-only groups: the real keys, no sections or verbs; `admin` only with `isAdmin`.
    assert!(access
        .groups
        .iter()
        .any(|g| g.key == G && g.sections.is_empty()));
    assert!(!access.groups.iter().any(|g| &*g.alias == ADMIN_ALIAS));
    let admin = parse(body(true, &[], true)).to_access(&paths());
    let g = admin
        .groups
        .iter()
        .find(|g| &*g.alias == ADMIN_ALIAS)
        .unwrap();
    assert_eq!(g.key, ADMIN_GROUP_KEY);
    assert_eq!(access.state, UserState::Active);
    assert_eq!(access.name, "editor");
}

#[test]
fn the_keys_to_resolve_are_start_nodes_and_document_entries() {
    let cu = parse(body(false, &[A], false));
    assert_eq!(cu.document_keys(), BTreeSet::from([A, B, C]));
    assert!(cu.media_keys().is_empty());
}

#[test]
fn an_answer_without_required_fields_is_refused() {
    let mut v = body(true, &[], false);
    v.as_object_mut().unwrap().remove("fallbackPermissions");
    assert!(serde_json::from_value::<CurrentUser>(v).is_err());
}
