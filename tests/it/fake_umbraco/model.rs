//! The fake's data: content and media nodes, user groups, users, API-user clients and issued
//! tokens — the subset of Umbraco's model its endpoints answer from — and the rules Umbraco
//! applies to it: node paths (`umbracoNode.path`), calculated start nodes
//! (`UserExtensions.CombineStartNodes`) and per-group effective verbs
//! (`UserService.CalculatePermissionsForPathForUser`). Written from the Umbraco source; nothing
//! here is taken from it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `Constants.System.Root`, `RecycleBinContent`, `RecycleBinMedia`.
pub const ROOT: i64 = -1;
pub const CONTENT_BIN: i64 = -20;
pub const MEDIA_BIN: i64 = -21;
/// Umbraco's super user (`Constants.Security.SuperUserId`): never has its tokens revoked.
pub const SUPER_USER_ID: i64 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tree {
    Document,
    Media,
}

impl Tree {
    fn bin(self) -> i64 {
        match self {
            Tree::Document => CONTENT_BIN,
            Tree::Media => MEDIA_BIN,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub key: Uuid,
    /// `umbracoNode.id` (identity seeded at 1060); Umbraco's API never shows it.
    pub id: i64,
    pub tree: Tree,
    /// `None`: at the root (or, when trashed, directly in the recycle bin).
    pub parent: Option<Uuid>,
    pub name: String,
    pub trashed: bool,
    pub content_type: Uuid,
    pub sort_order: i32,
}

/// A group's start node: root access or one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Root,
    Node(Uuid),
}

#[derive(Debug, Clone)]
pub struct Group {
    pub key: Uuid,
    pub alias: String,
    pub name: String,
    pub sections: Vec<String>,
    /// Default verbs (`umbracoUserGroup2Permission`).
    pub fallback: BTreeSet<String>,
    /// Granular document entries (node key → verbs; an empty set is a real "nothing").
    pub granular: BTreeMap<Uuid, BTreeSet<String>>,
    /// Document-type property permissions: (document type, property type) → verbs.
    pub property_values: Vec<(Uuid, Uuid, BTreeSet<String>)>,
    pub document_start: Option<Start>,
    pub media_start: Option<Start>,
    pub languages: Vec<String>,
    pub all_languages: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    Default,
    Api,
}

#[derive(Debug, Clone)]
pub struct User {
    pub key: Uuid,
    pub id: i64,
    pub user_name: String,
    pub name: String,
    pub email: String,
    pub kind: UserKind,
    pub groups: Vec<Uuid>,
    /// The user's own start nodes (`umbracoUserStartNode`); `*_root`: the root among them.
    pub document_starts: Vec<Uuid>,
    pub media_starts: Vec<Uuid>,
    pub document_root: bool,
    pub media_root: bool,
    pub approved: bool,
    pub locked: bool,
}

/// An API user's client credentials (an OpenIddict application).
#[derive(Debug, Clone)]
pub struct Client {
    pub secret: String,
    pub user: Uuid,
}

/// An issued reference token.
#[derive(Debug, Clone)]
pub struct Token {
    pub user: Uuid,
    pub expires_at: Instant,
    pub revoked: bool,
}

/// Everything the fake knows. Tests change it through `FakeUmbraco::with`.
#[derive(Debug)]
pub struct State {
    pub nodes: BTreeMap<Uuid, Node>,
    pub groups: BTreeMap<Uuid, Group>,
    pub users: BTreeMap<Uuid, User>,
    pub clients: BTreeMap<String, Client>,
    pub tokens: HashMap<String, Token>,
    /// Access-token lifetime (`GlobalSettings.TimeOut / 4`, 5 min by default).
    pub token_lifetime: Duration,
    /// `GlobalSettings.UseHttps`: the back-office cookies get the `__Host-` prefix.
    pub use_https: bool,
    /// `BackOfficeTokenCookieSettings.SiteName`, appended to the cookie names.
    pub site_name: String,
    /// Extra latency per endpoint name (to make concurrent callers overlap).
    pub delays: HashMap<&'static str, Duration>,
    /// Endpoint name → how many more calls it answers before it fails with 500 (a fault an
    /// endpoint module opts into with `sync::fault`).
    pub fail_after: HashMap<&'static str, usize>,
    /// Document versions: `umbracoContentVersion.id` → the document's key (`versions.rs`).
    pub versions: BTreeMap<i32, Uuid>,
    /// The tree listings' children index (`edit.rs` `index_tree`), for large trees; every
    /// change of the nodes through `State`'s methods drops it.
    pub tree_index: Option<super::edit::TreeIndex>,
    /// Members, member groups, public-access entries and languages (`members.rs`).
    pub protection: super::members::Protection,
    /// Languages, publish state and URL segments behind `document/urls` (`urls.rs`).
    pub urls: super::urls::UrlModel,
    next_node_id: i64,
    next_user_id: i64,
}

impl Default for State {
    fn default() -> Self {
        State {
            nodes: BTreeMap::new(),
            groups: BTreeMap::new(),
            users: BTreeMap::new(),
            clients: BTreeMap::new(),
            tokens: HashMap::new(),
            token_lifetime: Duration::from_secs(300),
            use_https: false,
            site_name: String::new(),
            delays: HashMap::new(),
            fail_after: HashMap::new(),
            versions: BTreeMap::new(),
            tree_index: None,
            protection: Default::default(),
            urls: super::urls::UrlModel::default(),
            next_node_id: 1060,
            next_user_id: SUPER_USER_ID,
        }
    }
}

fn set(verbs: &[&str]) -> BTreeSet<String> {
    verbs.iter().map(|v| (*v).to_owned()).collect()
}

impl State {
    /// A fresh install: the five built-in groups (`DatabaseDataCreator`) and no content.
    pub fn fresh_install() -> State {
        let mut s = State::default();
        for g in portcullis::authz::builtin::builtin_group_rows() {
            let root = g.root_and_all_languages.then_some(Start::Root);
            s.groups.insert(
                g.key,
                Group {
                    key: g.key,
                    alias: g.alias.to_owned(),
                    name: g.name.to_owned(),
                    sections: g.sections.iter().map(|x| (*x).to_owned()).collect(),
                    fallback: set(&g.verbs),
                    granular: BTreeMap::new(),
                    property_values: Vec::new(),
                    document_start: root,
                    media_start: root,
                    languages: Vec::new(),
                    all_languages: g.root_and_all_languages,
                },
            );
        }
        s
    }

    /// Adds a node under `parent` (`None` = root) and returns its key.
    pub fn add_node(&mut self, tree: Tree, name: &str, parent: Option<Uuid>) -> Uuid {
        let key = Uuid::new_v4();
        self.tree_index = None;
        self.next_node_id += 1;
        let sort_order = self.nodes.values().filter(|n| n.parent == parent).count() as i32;
        self.nodes.insert(
            key,
            Node {
                key,
                id: self.next_node_id,
                tree,
                parent,
                name: name.to_owned(),
                trashed: false,
                content_type: Uuid::from_u128(0xC0FFEE),
                sort_order,
            },
        );
        key
    }

    /// Adds a group with sections and fallback verbs; granular entries and start nodes are
    /// set on the returned key through `groups`.
    pub fn add_group(&mut self, alias: &str, sections: &[&str], fallback: &[&str]) -> Uuid {
        let key = Uuid::new_v4();
        self.groups.insert(
            key,
            Group {
                key,
                alias: alias.to_owned(),
                name: alias.to_owned(),
                sections: sections.iter().map(|s| (*s).to_owned()).collect(),
                fallback: set(fallback),
                granular: BTreeMap::new(),
                property_values: Vec::new(),
                document_start: None,
                media_start: None,
                languages: Vec::new(),
                all_languages: true,
            },
        );
        key
    }

    /// The group `key`, to change it (panics when unknown: a test mistake).
    pub fn group_mut(&mut self, key: Uuid) -> &mut Group {
        self.groups.get_mut(&key).expect("known group")
    }

    /// The user `key`, to change it (panics when unknown: a test mistake).
    pub fn user_mut(&mut self, key: Uuid) -> &mut User {
        self.users.get_mut(&key).expect("known user")
    }

    /// Sets the granular entry of `group` on `node` (`verbs = []` is a real "nothing here").
    pub fn grant(&mut self, group: Uuid, node: Uuid, verbs: &[&str]) {
        self.group_mut(group).granular.insert(node, set(verbs));
    }

    /// The key of the group with `alias`.
    pub fn group_key(&self, alias: &str) -> Uuid {
        self.groups
            .values()
            .find(|g| g.alias == alias)
            .map(|g| g.key)
            .unwrap_or_else(|| panic!("no group `{alias}`"))
    }

    /// Adds an approved back-office user in the groups with these aliases. The first user
    /// added is the super user (id -1), as in a fresh install.
    pub fn add_user(&mut self, user_name: &str, groups: &[&str]) -> Uuid {
        self.insert_user(user_name, groups, UserKind::Default)
    }

    /// Adds an API user with client credentials (`client_id` must carry Umbraco's prefix).
    pub fn add_api_user(&mut self, client_id: &str, secret: &str, groups: &[&str]) -> Uuid {
        let key = self.insert_user(client_id, groups, UserKind::Api);
        self.clients.insert(
            client_id.to_owned(),
            Client {
                secret: secret.to_owned(),
                user: key,
            },
        );
        key
    }

    fn insert_user(&mut self, user_name: &str, groups: &[&str], kind: UserKind) -> Uuid {
        let key = Uuid::new_v4();
        let id = self.next_user_id;
        self.next_user_id = if id == SUPER_USER_ID { 1 } else { id + 1 };
        let groups = groups.iter().map(|a| self.group_key(a)).collect();
        self.users.insert(
            key,
            User {
                key,
                id,
                user_name: user_name.to_owned(),
                name: user_name.to_owned(),
                email: format!("{user_name}@example.invalid"),
                kind,
                groups,
                document_starts: Vec::new(),
                media_starts: Vec::new(),
                document_root: false,
                media_root: false,
                approved: true,
                locked: false,
            },
        );
        key
    }

    /// Issues a reference token for `user` as an interactive login would (returns the token).
    pub fn issue_token(&mut self, user: Uuid) -> String {
        use rand::Rng;
        let bytes: [u8; 32] = rand::thread_rng().gen();
        let token = base64_url(&bytes);
        self.tokens.insert(
            token.clone(),
            Token {
                user,
                expires_at: Instant::now() + self.token_lifetime,
                revoked: false,
            },
        );
        token
    }

    /// Revokes every token of `user` (`RevokeUmbracoUserTokens`).
    pub fn revoke_tokens(&mut self, user: Uuid) {
        for t in self.tokens.values_mut().filter(|t| t.user == user) {
            t.revoked = true;
        }
    }

    /// Disables (un-approves) a user and saves it: Umbraco then revokes its tokens unless it
    /// is the super user (`RevokeUserAuthenticationTokensNotificationHandler`).
    pub fn disable_user(&mut self, user: Uuid) {
        let Some(u) = self.users.get_mut(&user) else {
            return;
        };
        u.approved = false;
        if u.id != SUPER_USER_ID {
            self.revoke_tokens(user);
        }
    }

    /// The name of the access-token cookie Umbraco reads (`HideBackOfficeTokensHandler`).
    pub fn access_cookie_name(&self) -> String {
        let prefix = if self.use_https { "__Host-" } else { "" };
        format!("{prefix}umbAccessToken{}", self.site_name)
    }

    /// The user a live token belongs to.
    pub fn token_user(&self, token: &str) -> Option<Uuid> {
        self.tokens
            .get(token)
            .filter(|t| !t.revoked && t.expires_at > Instant::now())
            .map(|t| t.user)
    }

    /// `umbracoNode.path` of a node: ids from the root, through the recycle bin when trashed.
    pub fn path(&self, key: Uuid) -> Option<Vec<i64>> {
        let node = self.nodes.get(&key)?;
        let mut path = match node.parent {
            Some(p) => self.path(p)?,
            None if node.trashed => vec![ROOT, node.tree.bin()],
            None => vec![ROOT],
        };
        path.push(node.id);
        Some(path)
    }

    fn id_path(&self, tree: Tree, id: i64) -> Option<Vec<i64>> {
        if id == ROOT {
            return Some(vec![ROOT]);
        }
        let node = self.nodes.values().find(|n| n.id == id && n.tree == tree)?;
        self.path(node.key)
    }

    fn key_of(&self, tree: Tree, id: i64) -> Option<Uuid> {
        self.nodes
            .values()
            .find(|n| n.id == id && n.tree == tree)
            .map(|n| n.key)
    }

    /// `UserExtensions.CombineStartNodes` for `tree`, as node ids (`-1` = root).
    pub fn calculated_start_nodes(&self, user: &User, tree: Tree) -> Vec<i64> {
        let group_sn: Vec<i64> = user
            .groups
            .iter()
            .filter_map(|g| self.groups.get(g))
            .filter_map(|g| match tree {
                Tree::Document => g.document_start,
                Tree::Media => g.media_start,
            })
            .filter_map(|s| match s {
                Start::Root => Some(ROOT),
                Start::Node(k) => self.nodes.get(&k).map(|n| n.id),
            })
            .collect();
        let (own, own_root) = match tree {
            Tree::Document => (&user.document_starts, user.document_root),
            Tree::Media => (&user.media_starts, user.media_root),
        };
        let user_sn: Vec<i64> = own_root
            .then_some(ROOT)
            .into_iter()
            .chain(own.iter().filter_map(|k| self.nodes.get(k).map(|n| n.id)))
            .collect();
        let path = |id: i64| self.id_path(tree, id);
        let in_bin = |p: &[i64]| p.get(1) == Some(&tree.bin());
        // `StartsWithPath(a, b)`: b is a or an ancestor of a (whole segments).
        let starts_with = |a: &[i64], b: &[i64]| a.starts_with(b);
        let mut lsn: Vec<(i64, Vec<i64>)> = Vec::new();
        for sn in group_sn {
            let Some(p) = path(sn) else { continue };
            if in_bin(&p) || lsn.iter().any(|(_, x)| starts_with(&p, x)) {
                continue;
            }
            lsn.retain(|(_, x)| !starts_with(x, &p));
            lsn.push((sn, p));
        }
        let mut usn: Vec<(i64, Vec<i64>)> = Vec::new();
        for sn in user_sn {
            let Some(p) = path(sn) else { continue };
            if in_bin(&p) || usn.iter().any(|(_, x)| starts_with(x, &p)) {
                continue;
            }
            usn.retain(|(_, x)| !starts_with(&p, x));
            usn.push((sn, p));
        }
        for (sn, p) in usn {
            lsn.retain(|(_, x)| !starts_with(&p, x) && !starts_with(x, &p));
            lsn.push((sn, p));
        }
        lsn.into_iter().map(|(id, _)| id).collect()
    }

    /// Node keys of calculated start node ids (`GetKeysFromIds`: the root has no key).
    pub fn start_node_keys(&self, tree: Tree, ids: &[i64]) -> Vec<Uuid> {
        ids.iter().filter_map(|id| self.key_of(tree, *id)).collect()
    }

    /// A user's effective verbs on a document: per group, the nearest explicit entry on the
    /// path (deepest first) or the group's fallback; unioned over groups.
    pub fn effective_verbs(&self, user: &User, node: Uuid) -> Option<BTreeSet<String>> {
        let path = self.path(node)?;
        let keys: Vec<Option<Uuid>> = path
            .iter()
            .map(|id| self.key_of(Tree::Document, *id))
            .collect();
        let mut out = BTreeSet::new();
        for g in user.groups.iter().filter_map(|g| self.groups.get(g)) {
            let explicit = keys.iter().rev().flatten().find_map(|k| g.granular.get(k));
            out.extend(explicit.unwrap_or(&g.fallback).iter().cloned());
        }
        Some(out)
    }
}

/// RFC 4648 base64url without padding (the shape of OpenIddict reference token ids).
pub fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
