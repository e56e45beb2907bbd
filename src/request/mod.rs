//! Request classification: what is this request? Canonicalises the path (`normalize`), matches
//! it against the route table (`route`), reads Delivery API details (`delivery`) and node ids and
//! cultures out of JSON bodies (`body`), producing a [`Target`]; [`Classifier`] (`classify`) is
//! the entry point and `explain` renders `routes match` / `routes list`. Never sees pingora:
//! takes `http::request::Parts` and bytes.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// Which protected API a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    Management,
    Delivery,
}

impl Api {
    /// Stable label for metrics, logs and audit rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Management => "management",
            Api::Delivery => "delivery",
        }
    }
}

/// Who may call a route at all, before node checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy", content = "sections")]
pub enum SectionPolicy {
    /// No credential needed (install, login, token, server status, public Delivery reads).
    Anonymous,
    /// Any approved back-office user.
    Backoffice,
    /// Member of the group with alias `admin`.
    Admin,
    /// The caller holds at least one of these section aliases (shared with the route table).
    AnyOf(Arc<[String]>),
}

/// What a check is about: a node in one of the trees, or a user / user group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    Document,
    Media,
    Element,
    ElementFolder,
    /// A document *version* id: the check applies to the document that owns the version.
    DocumentVersion,
    ElementVersion,
    User,
    UserGroup,
}

/// Which nodes a check applies to, once read out of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "ref", content = "value")]
pub enum NodeRef {
    /// A node key (GUID, canonical lowercase hyphenated form).
    Key(Uuid),
    /// The tree root (`-1`): root-level actions, `parent: null`.
    Root,
    /// The tree's recycle bin (`-1,-20` content, `-1,-21` media): needs root access.
    RecycleBin,
    /// A Delivery API content route path (`/en/blog/`), looked up in the mirror.
    Path(String),
}

/// Whether a check applies to the node itself or to every descendant of it
/// (publish-with-descendants; Portcullis checks the node itself too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CheckScope {
    #[default]
    Node,
    Branch,
}

/// One requirement, resolved against this request: these nodes need these verbs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCheck {
    pub kind: CheckKind,
    pub scope: CheckScope,
    /// Where the ids came from, as written in the route table (`path:id`, `body:parent.id`, …).
    /// Shared with the route table (no copy per request).
    pub source: Arc<str>,
    pub nodes: Vec<NodeRef>,
    /// Verb names (`Umb.Document.Update`); empty means path (start-node) access only. Shared
    /// with the route table.
    pub verbs: Arc<[Arc<str>]>,
}

/// Delivery API request details that change what the upstream returns (UMBRACO.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DeliveryQuery {
    /// `Preview: true` header.
    pub preview: bool,
    /// `Start-Item` header (a root's GUID, or a root's URL segment as `Path`), if sent.
    pub start_item: Option<NodeRef>,
    /// `fetch=children:X` / `descendants:X` / `ancestors:X`.
    pub fetch: Option<(FetchAxis, NodeRef)>,
    /// `expand=` present and not `none`-equivalent.
    pub expand: bool,
    /// `Accept-Language` value, if any (cultures are not filtered on reads).
    pub culture: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchAxis {
    Children,
    Descendants,
    Ancestors,
}

/// A classified request under a protected prefix: the input to authentication and authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub api: Api,
    /// Route id from the table (`document.publish`); `"unmatched"` for the backoffice fallback.
    pub route: Arc<str>,
    pub sections: SectionPolicy,
    pub checks: Vec<NodeCheck>,
    /// Culture codes from the body that the caller must be allowed to edit, lowercase.
    pub cultures: Vec<String>,
    /// Only for Delivery API routes.
    pub delivery: Option<DeliveryQuery>,
}

pub mod body;
pub mod classify;
pub mod delivery;
mod explain;
mod member_names;
pub mod normalize;
pub mod route;

pub use classify::{Classified, Classifier, PendingBody};
pub use route::{ItemScope, RouteError, RoutesConfig, Unmatched, UnmatchedConfig};
