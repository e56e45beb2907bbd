//! The declarative policy file (TOML): groups, users, the content tree, granular entries,
//! public access and API keys by hash. The same model as the Postgres tables; read by
//! `FileStore`, loaded into Postgres by `apply_policy`, written back by `export_policy`.
//!
//! `validate` reports every problem at once; `node_paths` computes materialised paths from
//! parents (a trashed node without a parent sits in its tree's recycle bin).

use crate::authz::{NodeId, NodeKind, UserState, CONTENT_RECYCLE_BIN_ID, MEDIA_RECYCLE_BIN_ID};
use crate::request::Api;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A whole policy file. Lists are sorted by key on export so files diff cleanly.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// `empty = true`: the file has no entries on purpose. A file without entries and without
    /// this marker is refused (a truncated or wrong file must not serve an empty policy).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty: bool,
    #[serde(default)]
    pub groups: Vec<GroupEntry>,
    #[serde(default)]
    pub users: Vec<UserEntry>,
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
    #[serde(default)]
    pub permissions: Vec<PermissionEntry>,
    #[serde(default)]
    pub public_access: Vec<PublicAccessEntry>,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyEntry>,
    #[serde(default)]
    pub group_mappings: Vec<GroupMappingEntry>,
}

/// Who owns a group or user row (docs/STORE.md "Who owns which rows"): the Umbraco mirror,
/// which replaces its rows on every sync, or Portcullis itself (local overrides, never touched
/// by a sync). Memberships follow their user, granular entries their group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    #[default]
    Umbraco,
    Local,
}

impl Origin {
    /// The stored text (`umbraco`, `local`).
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Umbraco => "umbraco",
            Origin::Local => "local",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Origin> {
        match s {
            "umbraco" => Some(Origin::Umbraco),
            "local" => Some(Origin::Local),
            _ => None,
        }
    }

    fn is_umbraco(&self) -> bool {
        *self == Origin::Umbraco
    }
}

/// A start node of a group or a user: the root (`"root"`, Umbraco's `hasDocumentRootAccess` /
/// `hasMediaRootAccess`), or a node key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StartRef {
    Root,
    Node(Uuid),
}

impl TryFrom<String> for StartRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "root" {
            return Ok(StartRef::Root);
        }
        Uuid::parse_str(&s)
            .map(StartRef::Node)
            .map_err(|e| format!("start node `{s}` is neither `root` nor a uuid: {e}"))
    }
}

impl From<StartRef> for String {
    fn from(s: StartRef) -> String {
        match s {
            StartRef::Root => "root".to_owned(),
            StartRef::Node(k) => k.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub key: Uuid,
    pub alias: String,
    pub name: String,
    #[serde(default)]
    pub sections: Vec<String>,
    #[serde(default)]
    pub default_verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_start: Option<StartRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_start: Option<StartRef>,
    #[serde(default)]
    pub all_languages: bool,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default, skip_serializing_if = "Origin::is_umbraco")]
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub key: Uuid,
    pub external_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default = "active")]
    pub state: UserState,
    /// Group aliases.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The user's own start nodes (`"root"` or node keys); they narrow or widen the groups'.
    #[serde(default)]
    pub content_start: Vec<StartRef>,
    #[serde(default)]
    pub media_start: Vec<StartRef>,
    #[serde(default, skip_serializing_if = "Origin::is_umbraco")]
    pub origin: Origin,
}

fn active() -> UserState {
    UserState::Active
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub key: Uuid,
    pub id: NodeId,
    /// Parent node key; absent for a node at the root (or in the recycle bin when trashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
    pub kind: NodeKind,
    #[serde(default)]
    pub trashed: bool,
    /// The Delivery route path as Umbraco reports it (`route.path`, relative to the root:
    /// `/blog/`); item paths match it ASCII case-insensitively, trailing slash optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_path: Option<String>,
}

/// A granular entry: `verbs = []` is a real "nothing here for this group".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionEntry {
    /// Group alias.
    pub group: String,
    pub node: Uuid,
    pub verbs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicAccessEntry {
    pub node: Uuid,
    #[serde(default)]
    pub member_groups: Vec<String>,
    #[serde(default)]
    pub member_usernames: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    pub key_id: String,
    /// Hex of `SHA-256(pepper || secret)` (64 characters).
    pub hash: String,
    pub name: String,
    /// Who answers for the key (a person, team or contact address): a free-text label for
    /// operators and audits. It grants nothing; the user a key speaks for is `acts_as`.
    pub owner: String,
    pub apis: Vec<Api>,
    #[serde(default)]
    pub subtree_roots: Vec<Uuid>,
    #[serde(default)]
    pub cultures: Vec<String>,
    #[serde(default)]
    pub preview: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acts_as: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_rps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub revoked: bool,
    /// After a rotation: hex hash of the replaced secret, accepted until `previous_expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// IdP groups (from an issuer's groups claim) mapped to group aliases, for callers that are
/// not registered users; added to the issuer's `group_map` from the config. Portcullis-owned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMappingEntry {
    /// The issuer's configured `name`.
    pub issuer: String,
    /// The value in the token's groups claim.
    pub idp_group: String,
    /// Group aliases the IdP group grants.
    pub groups: Vec<String>,
}

/// Key of the built-in `sensitiveData` group.
pub const SENSITIVE_DATA_GROUP: Uuid = Uuid::from_u128(0x8c6ad70f_d307_4e4a_af58_72c2e4e9439d);

/// The five built-in groups of a fresh install (UMBRACO.md §4), exactly as the migration seeds
/// them. They always exist: the file store starts from them and `--prune` never removes them.
pub fn builtin_groups() -> Vec<GroupEntry> {
    // One definition of the built-in groups (`authz::builtin`), here as file entries.
    crate::authz::builtin::builtin_group_rows()
        .into_iter()
        .map(|g| {
            let root = g.root_and_all_languages.then_some(StartRef::Root);
            GroupEntry {
                key: g.key,
                alias: g.alias.to_owned(),
                name: g.name.to_owned(),
                sections: g.sections.iter().map(|s| (*s).to_owned()).collect(),
                default_verbs: g.verbs.iter().map(|v| (*v).to_owned()).collect(),
                content_start: root,
                media_start: root,
                all_languages: g.root_and_all_languages,
                languages: Vec::new(),
                origin: Origin::Umbraco,
            }
        })
        .collect()
}

impl PolicyFile {
    /// The canonical form used by `export_policy` and round-trip comparisons: built-in groups
    /// merged in, every list sorted, parents before children.
    pub fn normalized(&self) -> PolicyFile {
        let mut f = self.clone();
        f.groups = self.groups_with_builtins();
        f.groups.sort_by(|a, b| a.alias.cmp(&b.alias));
        f.users.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        for u in &mut f.users {
            u.groups.sort();
        }
        let paths = self.node_paths();
        f.nodes
            .sort_by_key(|n| (paths.get(&n.key).map_or(0, Vec::len), n.id));
        f.permissions
            .sort_by(|a, b| (&a.group, a.node).cmp(&(&b.group, b.node)));
        f.public_access.sort_by_key(|a| a.node);
        f.api_keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        for k in &mut f.api_keys {
            k.hash = k.hash.to_ascii_lowercase();
            k.previous_hash = k.previous_hash.as_ref().map(|h| h.to_ascii_lowercase());
        }
        f.group_mappings
            .sort_by(|a, b| (&a.issuer, &a.idp_group).cmp(&(&b.issuer, &b.idp_group)));
        for m in &mut f.group_mappings {
            m.groups.sort();
        }
        f
    }

    /// Parses TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, super::StoreError> {
        super::policy_parse::parse(text).map_err(|e| super::StoreError::ParseFile {
            path: origin.to_owned(),
            source: Box::new(e),
        })
    }

    /// The file's groups on top of the built-in ones (a file entry with a built-in key or alias
    /// replaces it).
    pub fn groups_with_builtins(&self) -> Vec<GroupEntry> {
        let mut out: Vec<GroupEntry> = builtin_groups()
            .into_iter()
            .filter(|b| {
                !self
                    .groups
                    .iter()
                    .any(|g| g.key == b.key || g.alias == b.alias)
            })
            .collect();
        out.extend(self.groups.iter().cloned());
        out
    }

    /// Computes every node's materialised path from its parent chain. Nodes on a cycle or
    /// under an unknown parent are left out (and reported by `validate`).
    pub fn node_paths(&self) -> HashMap<Uuid, Vec<NodeId>> {
        let by_key: HashMap<Uuid, &NodeEntry> = self.nodes.iter().map(|n| (n.key, n)).collect();
        let mut paths: HashMap<Uuid, Vec<NodeId>> = HashMap::new();
        for n in &self.nodes {
            let mut chain = vec![n];
            let mut seen = HashSet::from([n.key]);
            let mut cur = n;
            let mut ok = true;
            while let Some(parent) = cur.parent {
                match by_key.get(&parent) {
                    Some(p) if seen.insert(p.key) => {
                        chain.push(p);
                        cur = p;
                    }
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                continue;
            }
            let top = chain[chain.len() - 1];
            let mut path = vec![crate::authz::ROOT_ID];
            if top.trashed {
                path.push(match top.kind {
                    NodeKind::Media => MEDIA_RECYCLE_BIN_ID,
                    NodeKind::Document | NodeKind::Element => CONTENT_RECYCLE_BIN_ID,
                });
            }
            path.extend(chain.iter().rev().map(|c| c.id));
            paths.insert(n.key, path);
        }
        paths
    }

    /// Whether the file declares nothing at all (no group, user, node, entry, key or mapping).
    pub fn has_no_entries(&self) -> bool {
        self.groups.is_empty()
            && self.users.is_empty()
            && self.nodes.is_empty()
            && self.permissions.is_empty()
            && self.public_access.is_empty()
            && self.api_keys.is_empty()
            && self.group_mappings.is_empty()
    }

    /// Every problem in the file, or `Ok` when it is consistent.
    pub fn validate(&self) -> Result<(), super::StoreError> {
        self.validate_with(&HashMap::new())
    }

    /// Like `validate`, but nodes in `known` (key → kind, e.g. the database mirror) may be
    /// referenced without being listed in the file.
    pub fn validate_with(&self, known: &HashMap<Uuid, NodeKind>) -> Result<(), super::StoreError> {
        let p = super::policy_check::problems(self, known);
        if p.is_empty() {
            Ok(())
        } else {
            Err(super::StoreError::InvalidPolicy(p))
        }
    }
}
