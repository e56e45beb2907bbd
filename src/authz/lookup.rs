//! What `authorize` needs besides the principal: the request-scoped facts the lead fetches from
//! the store ([`Resolved`]), the list of what to fetch ([`Lookup`], [`required_refs`],
//! [`next_refs`]) and who is asking ([`Who`]).
//!
//! The lead's pipeline is a bounded loop (at most three rounds):
//! ```text
//! let mut resolved = Resolved::default();
//! let mut todo = required_refs(&target, &principal);
//! while !todo.is_empty() {
//!     for l in todo { resolved.fill(l, store_answer) }     // see `Lookup` for each answer
//!     todo = next_refs(&target, &who, &resolved);
//! }
//! let decision = authorize(&target, &who, &resolved, &policy);
//! ```
//! A lookup the lead never answered makes the decision `StoreUnavailable` (fail closed); an
//! answer "not known to the mirror" (`None`) follows the API's unknown-node mode.

use super::delivery::requested_culture;
use super::model::{
    NodeId, NodeInfo, ProtectedNodes, UserAccess, CONTENT_RECYCLE_BIN_ID, MEDIA_RECYCLE_BIN_ID,
    ROOT_ID,
};
use super::route_path::{route_key, route_node};
use crate::authn::{Principal, Subject};
use crate::request::{Api, CheckKind, CheckScope, DeliveryQuery, NodeRef, Target};
use serde::Serialize;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock};
use uuid::Uuid;

/// Who is asking, as the decision sees it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Who<'a> {
    pub principal: &'a Principal,
    /// The resolved back-office access: `Some` for a registered user, or for an API key that
    /// acts as a user (`ApiKeyScope::acts_as`, resolved to that user). `None` otherwise.
    pub access: Option<&'a UserAccess>,
    /// A member presented alongside an API key (member bearer token on the Delivery API). A
    /// principal whose subject is `Subject::Member` counts as a member without this.
    pub member: Option<MemberRef<'a>>,
}

/// A Delivery API member: username and member group names.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemberRef<'a> {
    pub username: &'a str,
    pub groups: &'a [String],
}

impl<'a> Who<'a> {
    /// A principal with no user access and no member (anonymous, plain API key).
    pub fn new(principal: &'a Principal) -> Self {
        Who {
            principal,
            access: None,
            member: None,
        }
    }

    /// Adds the resolved user access.
    pub fn with_access(mut self, access: &'a UserAccess) -> Self {
        self.access = Some(access);
        self
    }

    /// The member making the request, from `member` or from a member principal.
    pub fn member(&self) -> Option<MemberRef<'a>> {
        if let Some(m) = self.member {
            return Some(m);
        }
        match &self.principal.subject {
            Subject::Member { username, groups } => Some(MemberRef { username, groups }),
            _ => None,
        }
    }
}

/// A fact about a user that a user check needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserFacts {
    /// Member of the group with alias `admin`.
    pub is_admin: bool,
}

/// One thing to fetch from the store, and where its answer goes in [`Resolved`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "lookup", content = "value", rename_all = "snake_case")]
pub enum Lookup {
    /// Node by key → `Resolved::nodes` (`None` when the mirror does not know it).
    Node(Uuid),
    /// Delivery route key ([`route_key`]) → every live document answering to it in
    /// `Resolved::paths`; `route_path::resolve_route` picks the one Umbraco serves, if exactly one.
    RoutePath(String),
    /// Document/element version key → the owning node's key in `Resolved::version_owners`.
    VersionOwner(Uuid),
    /// Node by integer id → `Resolved::nodes_by_id`: protected ancestors of Delivery items
    /// (their `public_access`) and the nodes of the user's granular entries (their paths, for
    /// branch checks).
    NodeById(NodeId),
    /// A user by key → `Resolved::users`, for user checks.
    User(Uuid),
    /// The culture Umbraco serves a Delivery request without a usable `Accept-Language` →
    /// `Resolved::default_culture`: `authz.delivery_default_culture` when configured, else the
    /// mirrored default language (`None`: neither is known). Asked for culture-limited API
    /// keys whose request names no culture, and for item paths in a named culture.
    DefaultCulture,
    /// The ids of the nodes with a public-access entry → `Resolved::protected`: a Delivery
    /// item's ancestors are looked up by id only when they are among them.
    ProtectedNodes,
}

/// A map of [`Resolved`]: built and read on every request (a warm Delivery item fills it with
/// the item and its protected ancestors, by key and by id), so hashed with ahash rather than
/// SipHash.
pub type FactMap<K, V> = HashMap<K, V, FactHasher>;

/// ahash with keys drawn once per process: an empty [`Resolved`] (two a request) builds its
/// maps without drawing new keys, which `ahash::RandomState::new` does for each map.
#[derive(Debug, Clone, Copy, Default)]
pub struct FactHasher;

static FACT_KEYS: LazyLock<ahash::RandomState> = LazyLock::new(ahash::RandomState::new);

impl BuildHasher for FactHasher {
    type Hasher = ahash::AHasher;

    fn build_hasher(&self) -> ahash::AHasher {
        FACT_KEYS.build_hasher()
    }
}

/// The request-scoped facts fetched for one decision. Every map answers one [`Lookup`] kind;
/// a value of `None` means "the store/mirror does not know it", a missing key means "never
/// looked up" (a wiring error: the decision fails closed with `store_unavailable`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resolved {
    pub nodes: FactMap<Uuid, Option<Arc<NodeInfo>>>,
    /// Route key → the documents whose route has that key (empty: none).
    pub paths: FactMap<String, Vec<Arc<NodeInfo>>>,
    pub version_owners: FactMap<Uuid, Option<Uuid>>,
    pub nodes_by_id: FactMap<NodeId, Option<Arc<NodeInfo>>>,
    pub users: FactMap<Uuid, Option<UserFacts>>,
    /// The answer to [`Lookup::DefaultCulture`] (outer `None`: never looked up).
    pub default_culture: Option<Option<Arc<str>>>,
    /// The answer to [`Lookup::ProtectedNodes`] (`None`: never looked up).
    pub protected: Option<Arc<ProtectedNodes>>,
}

impl Resolved {
    /// Whether `lookup` has an answer (known or unknown).
    pub fn has(&self, lookup: &Lookup) -> bool {
        match lookup {
            Lookup::Node(k) => self.nodes.contains_key(k),
            Lookup::RoutePath(p) => self.paths.contains_key(p),
            Lookup::VersionOwner(k) => self.version_owners.contains_key(k),
            Lookup::NodeById(id) => self.nodes_by_id.contains_key(id),
            Lookup::User(k) => self.users.contains_key(k),
            Lookup::DefaultCulture => self.default_culture.is_some(),
            Lookup::ProtectedNodes => self.protected.is_some(),
        }
    }

    /// Records a node answer for `Lookup::Node`, `RoutePath` or `NodeById`; also indexes a
    /// known node by key and id so later rounds need not fetch it again.
    pub fn put_node(&mut self, lookup: &Lookup, node: Option<Arc<NodeInfo>>) {
        match lookup {
            Lookup::Node(k) => {
                self.nodes.insert(*k, node.clone());
            }
            Lookup::RoutePath(p) => {
                self.put_routes(p, node.into_iter().collect());
                return;
            }
            Lookup::NodeById(id) => {
                self.nodes_by_id.insert(*id, node.clone());
            }
            Lookup::VersionOwner(_)
            | Lookup::User(_)
            | Lookup::DefaultCulture
            | Lookup::ProtectedNodes => return,
        }
        if let Some(n) = node {
            self.nodes_by_id
                .entry(n.id)
                .or_insert_with(|| Some(n.clone()));
            self.nodes.entry(n.key).or_insert(Some(n));
        }
    }
}

impl Resolved {
    /// Records the answer to `Lookup::RoutePath(key)` and indexes each node by key and id.
    pub fn put_routes(&mut self, key: &str, nodes: Vec<Arc<NodeInfo>>) {
        for n in &nodes {
            self.nodes_by_id
                .entry(n.id)
                .or_insert_with(|| Some(n.clone()));
            self.nodes.entry(n.key).or_insert_with(|| Some(n.clone()));
        }
        self.paths.insert(key.to_owned(), nodes);
    }
}

/// What must be looked up first for `target`, before anything is known. Includes the key
/// scope's subtree roots for an API-key principal.
pub fn required_refs(target: &Target, principal: &Principal) -> Vec<Lookup> {
    collect(target, principal, None, &Resolved::default())
}

/// What is still missing once `resolved` holds earlier answers: version owners' nodes, the
/// protected ancestors of Delivery items (member protection) and, for branch checks, the nodes
/// of the user's granular entries. Empty when the decision has everything it needs.
pub fn next_refs(target: &Target, who: &Who<'_>, resolved: &Resolved) -> Vec<Lookup> {
    collect(target, who.principal, who.access, resolved)
}

fn collect(
    target: &Target,
    principal: &Principal,
    access: Option<&UserAccess>,
    resolved: &Resolved,
) -> Vec<Lookup> {
    let mut out: Vec<Lookup> = Vec::new();
    let mut want = |l: Lookup| {
        if !resolved.has(&l) && !out.contains(&l) {
            out.push(l);
        }
    };
    let delivery = target.api == Api::Delivery;
    let q = target.delivery.as_ref();
    for check in &target.checks {
        for r in &check.nodes {
            match (check.kind, r) {
                (CheckKind::UserGroup, _) => {}
                (CheckKind::User, NodeRef::Key(k)) => want(Lookup::User(*k)),
                (CheckKind::DocumentVersion | CheckKind::ElementVersion, NodeRef::Key(k)) => {
                    match resolved.version_owners.get(k) {
                        None => want(Lookup::VersionOwner(*k)),
                        Some(Some(owner)) => want(Lookup::Node(*owner)),
                        Some(None) => {}
                    }
                }
                (_, NodeRef::Key(k)) => want(Lookup::Node(*k)),
                (_, NodeRef::Path(p)) => want(Lookup::RoutePath(route_key(p))),
                (_, NodeRef::Root | NodeRef::RecycleBin) => {}
            }
            // Member protection (documents only, as `delivery.rs` applies it): the public-access
            // entries of the protected ancestors.
            if delivery && check.kind != CheckKind::Media {
                match (&resolved.protected, known(resolved, q, r)) {
                    (None, _) => want(Lookup::ProtectedNodes),
                    (Some(protected), Some(node)) => {
                        for id in ancestors(&node).filter(|id| protected.contains(*id)) {
                            want(Lookup::NodeById(id));
                        }
                    }
                    (Some(_), None) => {}
                }
            }
            if check.scope == CheckScope::Branch && !check.verbs.is_empty() {
                if let (Some(access), Some(_)) = (access, known(resolved, q, r)) {
                    for g in &access.groups {
                        for id in g.granular.keys() {
                            want(Lookup::NodeById(*id));
                        }
                    }
                }
            }
        }
    }
    if let Some(q) = q {
        // A Start-Item path is a root's URL segment, which the mirror does not hold.
        if let Some(NodeRef::Key(k)) = &q.start_item {
            want(Lookup::Node(*k));
        }
        match q.fetch.as_ref().map(|(_, r)| r) {
            Some(NodeRef::Key(k)) => want(Lookup::Node(*k)),
            Some(NodeRef::Path(p)) => want(Lookup::RoutePath(route_key(p))),
            _ => {}
        }
    }
    if delivery {
        if let Subject::ApiKey(scope) = &principal.subject {
            for k in &scope.subtree_roots {
                want(Lookup::Node(*k));
            }
            if !scope.cultures.is_empty() && requested_culture(q).is_none() {
                want(Lookup::DefaultCulture);
            }
        }
        // Mirrored routes are the default culture's: a path in a named culture needs it.
        let paths = target.checks.iter().flat_map(|c| &c.nodes);
        let fetched = q.and_then(|q| q.fetch.as_ref()).map(|(_, r)| r);
        let has_path = paths.chain(fetched).any(|r| matches!(r, NodeRef::Path(_)));
        if has_path && requested_culture(q).is_some() {
            want(Lookup::DefaultCulture);
        }
    }
    out
}

/// The known node a reference points at, if already resolved (a path: the one node it
/// resolves to under the request's root).
pub(crate) fn known(
    resolved: &Resolved,
    q: Option<&DeliveryQuery>,
    r: &NodeRef,
) -> Option<Arc<NodeInfo>> {
    match r {
        NodeRef::Key(k) => resolved.nodes.get(k).cloned().flatten(),
        NodeRef::Path(p) => route_node(resolved, q, p),
        NodeRef::Root | NodeRef::RecycleBin => None,
    }
}

/// Ids of the real ancestors of a node (not the root or the recycle bins, not the node).
pub(crate) fn ancestors(node: &NodeInfo) -> impl Iterator<Item = NodeId> + '_ {
    let ids = node.path.ids();
    ids[..ids.len().saturating_sub(1)]
        .iter()
        .copied()
        .filter(|id| *id != ROOT_ID && *id != CONTENT_RECYCLE_BIN_ID && *id != MEDIA_RECYCLE_BIN_ID)
}
