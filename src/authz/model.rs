//! The authorization data model: sections, verbs, node paths, groups and a user's resolved
//! access. Plain data, cheap to clone (shared parts are `Arc`), filled by `store/` and read by
//! the pure decision functions.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// Umbraco's integer node id. `-1` is the root, `-20` the content recycle bin, `-21` the
/// media recycle bin.
pub type NodeId = i64;

pub const ROOT_ID: NodeId = -1;
pub const CONTENT_RECYCLE_BIN_ID: NodeId = -20;
pub const MEDIA_RECYCLE_BIN_ID: NodeId = -21;

/// What kind of tree a node lives in. Media has no verbs: only start-node path access applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Document,
    Media,
    Element,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Document => "document",
            NodeKind::Media => "media",
            NodeKind::Element => "element",
        }
    }
}

/// A back-office section alias, lowercase (`content`, `media`, `member`, `settings`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Section(pub Arc<str>);

impl Section {
    pub fn new(alias: &str) -> Self {
        Section(Arc::from(alias.to_ascii_lowercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A node permission verb such as `Umb.Document.Read`. Unknown strings are carried, never errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Verb(pub Arc<str>);

impl Verb {
    pub fn new(name: &str) -> Self {
        Verb(Arc::from(name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Lets sets of verbs be searched by `&str` without allocating a `Verb`; `Ord`/`Eq` of `Verb`
// are those of its string, so the `Borrow` contract holds.
impl std::borrow::Borrow<str> for Verb {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The verb names Umbraco v14+ knows for documents (UMBRACO.md §3). Unknown names are still
/// carried as [`Verb`]s; these constants only spare typos.
pub mod verbs {
    pub const READ: &str = "Umb.Document.Read";
    pub const CREATE: &str = "Umb.Document.Create";
    pub const UPDATE: &str = "Umb.Document.Update";
    pub const DELETE: &str = "Umb.Document.Delete";
    pub const MOVE: &str = "Umb.Document.Move";
    pub const DUPLICATE: &str = "Umb.Document.Duplicate";
    pub const SORT: &str = "Umb.Document.Sort";
    pub const ROLLBACK: &str = "Umb.Document.Rollback";
    pub const PUBLIC_ACCESS: &str = "Umb.Document.PublicAccess";
    pub const CULTURE_AND_HOSTNAMES: &str = "Umb.Document.CultureAndHostnames";
    pub const PUBLISH: &str = "Umb.Document.Publish";
    pub const UNPUBLISH: &str = "Umb.Document.Unpublish";
    pub const PERMISSIONS: &str = "Umb.Document.Permissions";
    pub const NOTIFICATIONS: &str = "Umb.Document.Notifications";
    pub const CREATE_BLUEPRINT: &str = "Umb.Document.CreateBlueprint";
    pub const PROPERTY_VALUE_READ: &str = "Umb.Document.PropertyValue.Read";
    pub const PROPERTY_VALUE_WRITE: &str = "Umb.Document.PropertyValue.Write";

    /// Every document verb: the `admin` group's defaults.
    pub const ALL_DOCUMENT: &[&str] = &[
        READ,
        CREATE,
        UPDATE,
        DELETE,
        MOVE,
        DUPLICATE,
        SORT,
        ROLLBACK,
        PUBLIC_ACCESS,
        CULTURE_AND_HOSTNAMES,
        PUBLISH,
        UNPUBLISH,
        PERMISSIONS,
        NOTIFICATIONS,
        CREATE_BLUEPRINT,
        PROPERTY_VALUE_READ,
        PROPERTY_VALUE_WRITE,
    ];
}

/// A set of verbs. An empty set is meaningful (an explicit "nothing here" entry).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VerbSet(pub BTreeSet<Verb>);

impl VerbSet {
    pub fn contains(&self, verb: &Verb) -> bool {
        self.0.contains(verb)
    }
    /// Whether the set holds the verb named `verb` (no allocation; names compare exactly).
    pub fn contains_str(&self, verb: &str) -> bool {
        self.0.contains(verb)
    }
    /// Number of verbs in the set.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Verb> {
        self.0.iter()
    }
}

impl<S: AsRef<str>> FromIterator<S> for VerbSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        VerbSet(iter.into_iter().map(|s| Verb::new(s.as_ref())).collect())
    }
}

/// A materialised path of node ids from the root, e.g. `[-1, 1051, 1062]` for `-1,1051,1062`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodePath(pub Arc<[NodeId]>);

impl NodePath {
    /// The root's path, `-1`.
    pub fn root() -> Self {
        NodePath(Arc::from([ROOT_ID]))
    }
    /// Parses Umbraco's comma-separated form (`-1,1051,1062`); `None` when any segment is not
    /// an integer or the path is empty.
    pub fn parse(s: &str) -> Option<Self> {
        let ids: Option<Vec<NodeId>> = s.split(',').map(|p| p.trim().parse().ok()).collect();
        let ids = ids?;
        (!ids.is_empty()).then(|| NodePath(ids.into()))
    }
    pub fn ids(&self) -> &[NodeId] {
        &self.0
    }
    /// The node the path leads to (its last segment).
    pub fn node(&self) -> NodeId {
        self.0.last().copied().unwrap_or(ROOT_ID)
    }
    /// Whole-segment containment: is `id` this node or one of its ancestors?
    pub fn contains(&self, id: NodeId) -> bool {
        self.0.contains(&id)
    }
    /// True when the path passes through a recycle bin.
    pub fn in_recycle_bin(&self) -> bool {
        self.0
            .get(1)
            .is_some_and(|id| *id == CONTENT_RECYCLE_BIN_ID || *id == MEDIA_RECYCLE_BIN_ID)
    }
}

impl std::fmt::Display for NodePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// What the content mirror knows of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub key: Uuid,
    pub id: NodeId,
    pub kind: NodeKind,
    pub path: NodePath,
    pub trashed: bool,
    /// Delivery route path in Umbraco's form: the `route.path` the Delivery API reports,
    /// relative to the node's root (`/blog/post-1/`). Item paths match it by `route_key`.
    pub route_path: Option<String>,
    /// Member protection on this node itself (ancestors: [`ProtectedNodes`], then by id).
    pub public_access: Option<Arc<PublicAccess>>,
}

/// The ids of every node with a public-access entry, sorted: member protection looks up only
/// the ancestors of a Delivery item that are among them. The stores keep every node's parent
/// (a foreign key in Postgres, a checked parent in the policy file), so an ancestor that is
/// not here has no entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProtectedNodes(Box<[NodeId]>);

impl ProtectedNodes {
    pub fn new(mut ids: Vec<NodeId>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        ProtectedNodes(ids.into())
    }
    pub fn contains(&self, id: NodeId) -> bool {
        self.0.binary_search(&id).is_ok()
    }
    pub fn ids(&self) -> &[NodeId] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Who may read member-protected Delivery content ("Public Access" on a node).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublicAccess {
    pub member_groups: Vec<String>,
    pub member_usernames: Vec<String>,
}

/// A user's or an API key's state. Only `Active` may do anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    Active,
    Disabled,
    Locked,
    Invited,
}

/// Calculated start nodes (content or media), each as its full path. Empty means no access;
/// a path equal to `[-1]` means root access.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StartNodes(pub Vec<NodePath>);

impl StartNodes {
    pub fn root() -> Self {
        StartNodes(vec![NodePath::root()])
    }
    pub fn has_root(&self) -> bool {
        self.0.iter().any(|p| p.node() == ROOT_ID)
    }
}

/// Which cultures a user may edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "cultures")]
pub enum LanguageAccess {
    All,
    /// ISO codes, lowercase (`en-us`).
    Only(BTreeSet<String>),
}

/// One user group with everything the decision needs about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPolicy {
    pub key: Uuid,
    /// Shared with every grant and audit event that names the group (no copy per request).
    pub alias: Arc<str>,
    pub name: String,
    pub sections: Vec<Section>,
    pub default_verbs: VerbSet,
    /// Content start node as a path; `None` means the group contributes no content start node.
    pub content_start: Option<NodePath>,
    pub media_start: Option<NodePath>,
    pub languages: LanguageAccess,
    /// Explicit (granular) entries: node id → the verbs this group has there and below.
    pub granular: HashMap<NodeId, VerbSet>,
}

/// Everything resolved about one principal: the input to `authorize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAccess {
    pub user_key: Uuid,
    pub external_id: String,
    pub name: String,
    pub state: UserState,
    pub groups: Vec<Arc<GroupPolicy>>,
    pub content_start_nodes: StartNodes,
    pub media_start_nodes: StartNodes,
}

impl UserAccess {
    /// The user's `admin` group, if any: Umbraco's `IsAdmin` (alias `admin`, exact).
    pub fn admin_group(&self) -> Option<&GroupPolicy> {
        self.groups
            .iter()
            .map(|g| &**g)
            .find(|g| &*g.alias == crate::authz::builtin::ADMIN_ALIAS)
    }
}
