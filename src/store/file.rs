//! `FileStore`: the embedded default policy store, read from a TOML policy file. The file is
//! validated as a whole (every problem reported), compiled into indexed maps and swapped in
//! atomically (arc-swap) when it changes; a file that fails to load keeps the previous policy.

use super::policy_file::{PolicyFile, PublicAccessEntry, StartRef};
use super::{PolicyStore, StoreError, UserRecord, MAX_ROUTE_MATCHES};
use crate::authn::{ApiKeyRecord, ApiKeyScope};
use crate::authz::{
    route_key, GroupPolicy, LanguageAccess, NodeId, NodeInfo, NodeKind, NodePath, PublicAccess,
    Section, VerbSet,
};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// A compiled policy: the file's model indexed for lookups.
#[derive(Debug, Default)]
pub struct Snapshot {
    users: HashMap<String, UserRecord>,
    groups: HashMap<Uuid, GroupPolicy>,
    aliases: HashMap<String, Uuid>,
    nodes: HashMap<Uuid, NodeInfo>,
    ids: HashMap<NodeId, Uuid>,
    /// Route key → live documents with that route.
    routes: HashMap<String, Vec<Uuid>>,
    /// Ids of the nodes with a public-access entry.
    protected: Vec<NodeId>,
    api_keys: HashMap<String, ApiKeyRecord>,
    /// Issuer name → (IdP group, group key) of `[[group_mappings]]`.
    mappings: HashMap<String, Vec<(String, Uuid)>>,
}

impl Snapshot {
    /// Validates `file` and builds the indexes from it by move (its strings become the
    /// snapshot's); `Err(InvalidPolicy)` lists every problem.
    pub fn compile(mut file: PolicyFile) -> Result<Snapshot, StoreError> {
        file.validate()?;
        let mut s = Snapshot::default();
        s.index_nodes(&mut file);
        let start = |r: Option<StartRef>, nodes: &HashMap<Uuid, NodeInfo>| match r {
            None => None,
            Some(StartRef::Root) => Some(NodePath::root()),
            // A trashed start node is ignored: the group contributes nothing (UMBRACO.md §6).
            Some(StartRef::Node(k)) => nodes.get(&k).filter(|n| !n.trashed).map(|n| n.path.clone()),
        };
        for g in file.groups_with_builtins() {
            let mut granular = HashMap::new();
            for e in file.permissions.iter().filter(|e| e.group == g.alias) {
                if let Some(n) = s.nodes.get(&e.node) {
                    granular.insert(n.id, e.verbs.iter().collect::<VerbSet>());
                }
            }
            let policy = GroupPolicy {
                key: g.key,
                alias: g.alias.as_str().into(),
                name: g.name.clone(),
                sections: g.sections.iter().map(|x| Section::new(x)).collect(),
                default_verbs: g.default_verbs.iter().collect(),
                content_start: start(g.content_start, &s.nodes),
                media_start: start(g.media_start, &s.nodes),
                languages: languages(g.all_languages, &g.languages),
                granular,
            };
            s.aliases.insert(g.alias.clone(), g.key);
            s.groups.insert(g.key, policy);
        }
        for u in std::mem::take(&mut file.users) {
            let group_keys: Vec<Uuid> = u
                .groups
                .iter()
                .filter_map(|a| s.aliases.get(a))
                .copied()
                .collect();
            s.users.insert(
                u.external_id.clone(),
                UserRecord {
                    key: u.key,
                    external_id: u.external_id,
                    name: u.name,
                    state: u.state,
                    group_keys,
                    group_aliases: u.groups,
                    content_start: u.content_start,
                    media_start: u.media_start,
                },
            );
        }
        for m in &file.group_mappings {
            let pairs = s.mappings.entry(m.issuer.clone()).or_default();
            for a in &m.groups {
                if let Some(k) = s.aliases.get(a) {
                    pairs.push((m.idp_group.clone(), *k));
                }
            }
        }
        for k in &file.api_keys {
            let mut hash = [0u8; 32];
            // `validate` already rejected malformed hashes.
            let Ok(()) = hex::decode_to_slice(&k.hash, &mut hash) else {
                continue;
            };
            s.api_keys.insert(k.key_id.clone(), api_key_record(k, hash));
        }
        Ok(s)
    }

    /// Indexes the file's nodes, moved out of it, with their paths and public access.
    fn index_nodes(&mut self, file: &mut PolicyFile) {
        let mut paths = file.node_paths();
        let mut access: HashMap<Uuid, PublicAccessEntry> = std::mem::take(&mut file.public_access)
            .into_iter()
            .map(|a| (a.node, a))
            .collect();
        let nodes = std::mem::take(&mut file.nodes);
        self.nodes.reserve(nodes.len());
        self.ids.reserve(nodes.len());
        for n in nodes {
            let Some(path) = paths.remove(&n.key) else {
                continue;
            };
            let path = NodePath(path.into());
            let trashed = path.in_recycle_bin();
            // A trashed subtree hangs below the recycle bin; its descendants are trashed too.
            if let Some(r) = n.route_path.as_deref().filter(|_| !trashed) {
                self.routes.entry(route_key(r)).or_default().push(n.key);
            }
            let public_access = access.remove(&n.key).map(|a| {
                Arc::new(PublicAccess {
                    member_groups: a.member_groups,
                    member_usernames: a.member_usernames,
                })
            });
            self.ids.insert(n.id, n.key);
            if public_access.is_some() {
                self.protected.push(n.id);
            }
            let info = NodeInfo {
                key: n.key,
                id: n.id,
                kind: n.kind,
                trashed,
                path,
                route_path: n.route_path,
                public_access,
            };
            self.nodes.insert(n.key, info);
        }
    }
}

/// `all_languages` wins; otherwise the listed ISO codes, lowercased.
pub(crate) fn languages(all: bool, list: &[String]) -> LanguageAccess {
    if all {
        LanguageAccess::All
    } else {
        LanguageAccess::Only(list.iter().map(|l| l.to_ascii_lowercase()).collect())
    }
}

pub(crate) fn api_key_record(k: &super::policy_file::ApiKeyEntry, hash: [u8; 32]) -> ApiKeyRecord {
    let scope = Arc::new(ApiKeyScope {
        key_id: k.key_id.clone(),
        name: k.name.clone(),
        apis: k.apis.clone(),
        subtree_roots: k.subtree_roots.clone(),
        cultures: k.cultures.iter().map(|c| c.to_ascii_lowercase()).collect(),
        preview: k.preview,
        acts_as: k.acts_as.clone(),
        rate_limit_rps: k.rate_limit_rps,
    });
    ApiKeyRecord {
        principal: crate::authn::key_principal(&scope),
        scope,
        hash,
        owner: k.owner.clone(),
        expires_at: k.expires_at,
        revoked: k.revoked,
        previous: previous_secret(k),
    }
}

/// The rotated-out secret of an entry (`validate` has checked the hash and the pair).
fn previous_secret(k: &super::policy_file::ApiKeyEntry) -> Option<crate::authn::PreviousSecret> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(k.previous_hash.as_deref()?, &mut hash).ok()?;
    Some(crate::authn::PreviousSecret {
        hash,
        expires_at: k.previous_expires_at?,
    })
}

/// The file-backed store. Cheap to share (`Arc`); lookups read the current snapshot.
pub struct FileStore {
    path: PathBuf,
    current: ArcSwap<Snapshot>,
    modified: std::sync::Mutex<Option<SystemTime>>,
}

impl FileStore {
    /// Loads and validates `path`; fails with every problem when the file is invalid.
    pub fn open(path: &Path) -> Result<FileStore, StoreError> {
        let (snapshot, modified) = super::file_load::load(path)?;
        Ok(FileStore {
            path: path.to_owned(),
            current: ArcSwap::from_pointee(snapshot),
            modified: std::sync::Mutex::new(modified),
        })
    }

    /// Reloads when the file's modification time changed. `Ok(true)` when a new policy was
    /// swapped in; on `Err` the previous policy stays in force.
    pub fn reload_if_changed(&self) -> Result<bool, StoreError> {
        let now = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        {
            let mut seen = self.modified.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == now {
                return Ok(false);
            }
            // Remember the attempt either way: a broken file is reported once, not every poll.
            *seen = now;
        }
        let result = super::file_load::load(&self.path);
        let (snapshot, _) = result?;
        self.current.store(Arc::new(snapshot));
        Ok(true)
    }

    /// Wires this store to `cache`: every reload evicts the whole cache, so the cache counts as
    /// always current; a failed reload is counted (`portcullis_policy_reload_failures_total`)
    /// and kept for readiness until a reload works. Polls every `every`.
    pub fn spawn_watch(
        self: Arc<Self>,
        cache: &super::PolicyCache,
        every: Duration,
        failures: prometheus::IntCounter,
    ) -> tokio::task::JoinHandle<()> {
        cache.set_always_current();
        let cache = cache.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!(policy.file = %self.path.display(), "policy file reloaded");
                        cache.set_reload_error(None);
                        cache.invalidate_all();
                    }
                    Ok(false) => {}
                    Err(e) => {
                        let text = crate::config::error_chain(&e);
                        tracing::error!(
                            policy.file = %self.path.display(), error = %text,
                            "policy file reload failed; keeping the previous policy"
                        );
                        failures.inc();
                        cache.set_reload_error(Some(text));
                    }
                }
            }
        })
    }

    fn snap(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }
}

/// Reads, parses, validates and compiles `path` (on the loader thread, `file_load`).
pub(super) fn load(path: &Path) -> super::file_load::Loaded {
    let shown = path.display().to_string();
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let file = {
        // The text is dropped before the snapshot is built (it is as large as the file).
        let text = std::fs::read_to_string(path).map_err(|source| StoreError::ReadFile {
            path: shown.clone(),
            source,
        })?;
        PolicyFile::parse(&text, &shown)?
    };
    Ok((Snapshot::compile(file)?, modified))
}

#[async_trait]
impl PolicyStore for FileStore {
    async fn user_by_external_id(&self, ext: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.snap().users.get(ext).cloned())
    }
    async fn user_external_id(&self, key: Uuid) -> Result<Option<String>, StoreError> {
        let s = self.snap();
        Ok(s.users
            .values()
            .find(|u| u.key == key)
            .map(|u| u.external_id.clone()))
    }
    async fn group(&self, key: Uuid) -> Result<Option<GroupPolicy>, StoreError> {
        Ok(self.snap().groups.get(&key).cloned())
    }
    async fn group_key_by_alias(&self, alias: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(self.snap().aliases.get(alias).copied())
    }
    async fn group_mappings(&self, issuer: &str) -> Result<Vec<(String, Uuid)>, StoreError> {
        Ok(self
            .snap()
            .mappings
            .get(issuer)
            .cloned()
            .unwrap_or_default())
    }
    async fn node(&self, key: Uuid) -> Result<Option<NodeInfo>, StoreError> {
        Ok(self.snap().nodes.get(&key).cloned())
    }
    async fn node_by_id(&self, id: NodeId) -> Result<Option<NodeInfo>, StoreError> {
        let s = self.snap();
        Ok(s.ids.get(&id).and_then(|k| s.nodes.get(k)).cloned())
    }
    async fn nodes_by_route(&self, key: &str) -> Result<Vec<NodeInfo>, StoreError> {
        let s = self.snap();
        let keys = s.routes.get(key).map_or(&[][..], Vec::as_slice);
        Ok(keys
            .iter()
            .filter_map(|k| s.nodes.get(k))
            .filter(|n| n.kind == NodeKind::Document)
            .take(MAX_ROUTE_MATCHES)
            .cloned()
            .collect())
    }
    async fn protected_nodes(&self) -> Result<Vec<NodeId>, StoreError> {
        Ok(self.snap().protected.clone())
    }
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.snap().api_keys.get(key_id).cloned())
    }
    async fn touch_api_keys(
        &self,
        _key_ids: &[String],
        _at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        // The file is the operator's declaration; usage is not written back to it.
        Ok(())
    }
}
