//! `GET user/current` (`GetCurrentUserController` →
//! `UserPresentationFactory.CreateCurrentUserResponseModelAsync`, `CurrentUserResponseModel` in
//! `OpenApi.json`) and the [`UserAccess`] a decision needs, built from it.
//!
//! Umbraco has already aggregated everything over the user's groups: `allowedSections`
//! (`Umb.Section.*` names, `SectionMapper`), calculated start nodes (`documentStartNodeIds` /
//! `hasDocumentRootAccess`, media alike), `languages` / `hasAccessToAllLanguages`,
//! `fallbackPermissions` (the union of the groups' defaults) and `permissions`: one entry per
//! document with a granular entry in any group, its verbs already resolved along that document's
//! path (`DocumentPermissionMapper.AggregatePresentationModels`). So for node N the verbs are
//! those of the deepest ancestor-or-self of N listed in `permissions`, else the fallback —
//! exactly what one group with those defaults and those entries resolves to
//! ([`crate::authz::resolve::group_verbs_at`]). The user's real groups are carried as empty
//! member-only groups (for the user-group membership checks), `admin` named when `isAdmin`.

use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use uuid::Uuid;

use crate::authz::builtin::{ADMIN_ALIAS, ADMIN_GROUP_KEY};
use crate::authz::{
    GroupPolicy, LanguageAccess, NodeId, NodePath, Section, StartNodes, UserAccess, UserState,
    VerbSet,
};

/// The path of the endpoint.
pub const CURRENT_USER_PATH: &str = "/umbraco/management/api/v1/user/current";

/// The alias of the group that carries the user's aggregated access.
pub const AGGREGATE_ALIAS: &str = "umbraco:user-current";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ref {
    id: Uuid,
}

/// The parts of `CurrentUserResponseModel` a decision uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentUser {
    pub id: Uuid,
    pub user_name: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    user_group_ids: Vec<Ref>,
    allowed_sections: Vec<String>,
    document_start_node_ids: Vec<Ref>,
    has_document_root_access: bool,
    media_start_node_ids: Vec<Ref>,
    has_media_root_access: bool,
    #[serde(default)]
    languages: Vec<String>,
    has_access_to_all_languages: bool,
    fallback_permissions: Vec<String>,
    /// Polymorphic (`$type`): document entries and document-type property entries.
    permissions: Vec<serde_json::Value>,
    #[serde(default)]
    is_admin: bool,
}

/// One aggregated document entry of `permissions`.
#[derive(Debug, Deserialize)]
struct DocumentEntry {
    document: Ref,
    verbs: Vec<String>,
}

/// Umbraco's section names back to the aliases routes use (`SectionMapper.GetAlias`; unknown
/// names are kept, as Umbraco does).
pub fn section_alias(name: &str) -> &str {
    match name {
        "Umb.Section.Content" => "content",
        "Umb.Section.Media" => "media",
        "Umb.Section.Members" => "member",
        "Umb.Section.Settings" => "settings",
        "Umb.Section.Packages" => "packages",
        "Umb.Section.Translation" => "translation",
        "Umb.Section.Users" => "users",
        "Umb.Section.Forms" => "forms",
        "Umb.Section.Library" => "library",
        other => other,
    }
}

impl CurrentUser {
    /// The section aliases Umbraco lists for the user.
    pub fn sections(&self) -> Vec<&str> {
        self.allowed_sections
            .iter()
            .map(|s| section_alias(s))
            .collect()
    }

    pub fn has_document_root_access(&self) -> bool {
        self.has_document_root_access
    }

    pub fn has_media_root_access(&self) -> bool {
        self.has_media_root_access
    }

    /// The documents whose paths the access needs: start nodes and granular entries.
    pub fn document_keys(&self) -> BTreeSet<Uuid> {
        let starts = self.document_start_node_ids.iter().map(|r| r.id);
        starts.chain(self.entries().map(|(k, _)| k)).collect()
    }

    /// The media start nodes (media have no verbs).
    pub fn media_keys(&self) -> BTreeSet<Uuid> {
        self.media_start_node_ids.iter().map(|r| r.id).collect()
    }

    fn entries(&self) -> impl Iterator<Item = (Uuid, Vec<String>)> + '_ {
        self.permissions.iter().filter_map(|p| {
            if p.get("$type").and_then(|t| t.as_str())
                != Some("DocumentPermissionPresentationModel")
            {
                return None;
            }
            let e: DocumentEntry = serde_json::from_value(p.clone()).ok()?;
            Some((e.document.id, e.verbs))
        })
    }

    /// Rough heap size of what is cached for this user (the session cache's weigher).
    pub fn weight(&self) -> u32 {
        let entries: usize = self.permissions.len() * 160;
        let starts = (self.document_start_node_ids.len() + self.media_start_node_ids.len()) * 48;
        let rest = 512 + self.fallback_permissions.len() * 40 + self.allowed_sections.len() * 32;
        u32::try_from(entries + starts + rest).unwrap_or(u32::MAX)
    }

    /// The user's access, with `paths` giving the path of every key of [`document_keys`] and
    /// [`media_keys`] that could be resolved. An unresolved start node grants nothing and an
    /// unresolved entry applies nowhere (its node cannot be on any known path).
    ///
    /// [`document_keys`]: CurrentUser::document_keys
    /// [`media_keys`]: CurrentUser::media_keys
    pub fn to_access(&self, paths: &HashMap<Uuid, NodePath>) -> UserAccess {
        let starts = |root: bool, keys: &[Ref]| {
            if root {
                return StartNodes::root();
            }
            StartNodes(
                keys.iter()
                    .filter_map(|r| paths.get(&r.id).cloned())
                    .collect(),
            )
        };
        let granular: HashMap<NodeId, VerbSet> = self
            .entries()
            .filter_map(|(k, verbs)| Some((paths.get(&k)?.node(), verbs.iter().collect())))
            .collect();
        let languages = if self.has_access_to_all_languages {
            LanguageAccess::All
        } else {
            LanguageAccess::Only(
                self.languages
                    .iter()
                    .map(|l| l.to_ascii_lowercase())
                    .collect(),
            )
        };
        let aggregate = GroupPolicy {
            key: Uuid::nil(),
            alias: AGGREGATE_ALIAS.into(),
            name: "Umbraco user/current".to_owned(),
            sections: self
                .allowed_sections
                .iter()
                .map(|s| Section::new(section_alias(s)))
                .collect(),
            default_verbs: self.fallback_permissions.iter().collect(),
            content_start: None,
            media_start: None,
            languages,
            granular,
        };
        let mut groups = vec![Arc::new(aggregate)];
        groups.extend(self.member_groups());
        UserAccess {
            user_key: self.id,
            external_id: format!("umbraco:{}", self.id),
            name: self.user_name.clone(),
            state: UserState::Active,
            groups,
            content_start_nodes: starts(
                self.has_document_root_access,
                &self.document_start_node_ids,
            ),
            media_start_nodes: starts(self.has_media_root_access, &self.media_start_node_ids),
        }
    }

    /// The user's groups as members-only entries (no sections, verbs or languages): group
    /// membership checks see them, nothing else does. `isAdmin` names the built-in admin group
    /// `admin` (or adds one when the user's admin group has another key).
    fn member_groups(&self) -> Vec<Arc<GroupPolicy>> {
        let empty = |key: Uuid, alias: String| {
            Arc::new(GroupPolicy {
                key,
                alias: alias.as_str().into(),
                name: alias,
                sections: Vec::new(),
                default_verbs: VerbSet::default(),
                content_start: None,
                media_start: None,
                languages: LanguageAccess::Only(BTreeSet::new()),
                granular: HashMap::new(),
            })
        };
        let mut admin_named = false;
        let mut out: Vec<Arc<GroupPolicy>> = self
            .user_group_ids
            .iter()
            .map(|r| {
                if self.is_admin && r.id == ADMIN_GROUP_KEY {
                    admin_named = true;
                    empty(r.id, ADMIN_ALIAS.to_owned())
                } else {
                    empty(r.id, format!("umbraco:{}", r.id))
                }
            })
            .collect();
        if self.is_admin && !admin_named {
            out.push(empty(Uuid::nil(), ADMIN_ALIAS.to_owned()));
        }
        out
    }
}

#[cfg(test)]
#[path = "current_user_tests.rs"]
mod tests;
