//! The mirror's file target (`portcullis sync umbraco` with a file store, or `--policy-file`):
//! reads the same kinds as the full sync and writes Umbraco's part of the policy file —
//! `groups`, `users`, `nodes` (with the documents' Delivery routes), `permissions` and the
//! documents' `public_access` entries — keeping what Portcullis owns: groups and users with
//! `origin = "local"` and their granular entries, API keys, group mappings and public-access
//! entries of media nodes that still exist. Languages are not written. Node numbers survive
//! moves and syncs; new nodes are numbered from 1,000,000,000 like the Postgres mirror's
//! sequence. The result is validated as `serve` would load it and written atomically (a
//! failed read or an invalid result leaves the file as it was); the other sections of the
//! file, comments included, are kept.

use super::client::Reader;
use super::full::{all_pages, group_entries, user_entry, SyncReport};
use super::public_access::read_entries;
use super::wire::{self, UserGroup};
use super::{ExternalId, SyncConfig, SyncError};
use crate::authz::{NodeId, NodeKind};
use crate::store::file_edit;
use crate::store::policy_file::{
    GroupEntry, NodeEntry, Origin, PermissionEntry, PolicyFile, PublicAccessEntry, UserEntry,
};
use crate::store::postgres::mirror::{KindReport, MirrorNode};
use crate::store::postgres::mirror_public_access::MirrorAccess;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Instant;
use uuid::Uuid;

/// The first number the mirror gives a node it has not numbered before.
const FIRST_MIRROR_ID: NodeId = 1_000_000_000;

/// Everything one read of Umbraco returned.
#[derive(Debug, Clone, Default)]
pub struct UmbracoState {
    pub documents: Vec<MirrorNode>,
    pub media: Vec<MirrorNode>,
    pub groups: Vec<UserGroup>,
    pub users: Vec<wire::User>,
    /// Document key → Delivery route (documents without one are absent).
    pub routes: HashMap<Uuid, String>,
    /// The entries of the protected documents that own one (`public_access.rs`).
    pub public_access: Vec<MirrorAccess>,
}

/// Reads both trees (recycle bins included), the documents' Delivery routes and public-access
/// entries, the user groups and the users.
pub async fn read(reader: &Reader, cfg: &SyncConfig) -> Result<UmbracoState, SyncError> {
    let (documents, protected) = super::tree::walk_marked(reader, NodeKind::Document, cfg).await?;
    let live = super::routes::live_depths(&documents);
    let routes = super::routes::read_routes(reader, cfg, &live).await?;
    let public_access = read_entries(reader, &protected, cfg.concurrency).await?;
    Ok(UmbracoState {
        public_access,
        routes: routes
            .into_iter()
            .filter_map(|r| Some((r.key, r.route?)))
            .collect(),
        documents,
        media: super::tree::walk(reader, NodeKind::Media, cfg).await?,
        groups: all_pages(reader, "user_groups", "/user-group", cfg.page_size).await?,
        users: all_pages(reader, "users", "/user", cfg.page_size).await?,
    })
}

/// Reads Umbraco and rewrites Umbraco's part of the policy file at `path` (created when it
/// does not exist).
pub async fn sync_file(
    reader: &Reader,
    cfg: &SyncConfig,
    path: &Path,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let (text, existing) = match file_edit::read(path) {
        Ok(read) => read,
        Err(crate::store::StoreError::ReadFile { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            (String::new(), PolicyFile::default())
        }
        Err(e) => return Err(e.into()),
    };
    let state = read(reader, cfg).await?;
    let (merged, kinds) = merge(&existing, &state, cfg.external_id);
    merged.validate()?;
    let new_text = file_edit::replace_items(path, &text, &Written::from(&merged), WRITTEN)?;
    file_edit::replace_atomically(path, new_text.as_bytes())?;
    Ok(SyncReport {
        kinds,
        duration_ms: started.elapsed().as_millis(),
    })
}

/// The top-level items a file sync writes.
const WRITTEN: &[&str] = &[
    "empty",
    "groups",
    "users",
    "nodes",
    "permissions",
    "public_access",
];

/// Umbraco's part of the file; an empty list removes its item (a new `x = []` would land
/// above the file's first table and its comments).
#[derive(Serialize)]
struct Written<'a> {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    groups: &'a [GroupEntry],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    users: &'a [UserEntry],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    nodes: &'a [NodeEntry],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    permissions: &'a [PermissionEntry],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    public_access: &'a [PublicAccessEntry],
}

impl<'a> From<&'a PolicyFile> for Written<'a> {
    fn from(f: &'a PolicyFile) -> Self {
        Written {
            empty: f.has_no_entries(),
            groups: &f.groups,
            users: &f.users,
            nodes: &f.nodes,
            permissions: &f.permissions,
            public_access: &f.public_access,
        }
    }
}

/// The policy file after a sync: Umbraco's rows from `state`, Portcullis's from `existing`,
/// sorted as `policy export` sorts them; with what changed per kind.
pub fn merge(
    existing: &PolicyFile,
    state: &UmbracoState,
    external_id: ExternalId,
) -> (PolicyFile, BTreeMap<&'static str, KindReport>) {
    let nodes = numbered_nodes(existing, state);
    let known: HashSet<Uuid> = nodes.iter().map(|n| n.key).collect();
    let (groups, permissions, alias) = groups_and_entries(existing, state);
    let mut users: Vec<UserEntry> = state
        .users
        .iter()
        .map(|u| {
            let m = user_entry(u, external_id);
            let groups = m.groups.iter().filter_map(|k| alias.get(k).cloned());
            UserEntry {
                groups: groups.collect(),
                ..m.entry
            }
        })
        .collect();
    users.extend(
        existing
            .users
            .iter()
            .filter(|u| is_local(u.origin))
            .cloned(),
    );
    let kinds = BTreeMap::from([
        ("nodes", diff(&existing.nodes, &nodes, |n| n.key, |_| true)),
        (
            "user_groups",
            diff(
                &existing.groups,
                &groups,
                |g| g.key,
                |g| !is_local(g.origin),
            ),
        ),
        (
            "users",
            diff(&existing.users, &users, |u| u.key, |u| !is_local(u.origin)),
        ),
    ]);
    let (public_access, access_report) = access_entries(existing, state, &known);
    let mut kinds = kinds;
    kinds.insert("public_access", access_report);
    let merged = PolicyFile {
        empty: false,
        groups,
        users,
        nodes,
        permissions,
        public_access,
        ..existing.clone()
    };
    // Sorted as `policy export` sorts, without the built-in groups it adds: a file store
    // has those anyway, and Umbraco's own groups are the ones it reported.
    let listed: HashSet<Uuid> = merged.groups.iter().map(|g| g.key).collect();
    let mut merged = merged.normalized();
    merged.groups.retain(|g| listed.contains(&g.key));
    merged.empty = merged.has_no_entries();
    (merged, kinds)
}

/// Umbraco's entries on the documents the file keeps (name lists sorted, as the Postgres
/// mirror stores them), then the file's entries on media nodes that still exist; with what
/// changed among the documents' entries.
fn access_entries(
    existing: &PolicyFile,
    state: &UmbracoState,
    known: &HashSet<Uuid>,
) -> (Vec<PublicAccessEntry>, KindReport) {
    let media: HashSet<Uuid> = state.media.iter().map(|n| n.key).collect();
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v
    };
    let mut entries: Vec<PublicAccessEntry> = state
        .public_access
        .iter()
        .filter(|a| known.contains(&a.node))
        .map(|a| PublicAccessEntry {
            node: a.node,
            member_groups: sorted(&a.groups),
            member_usernames: sorted(&a.usernames),
        })
        .collect();
    entries.extend(
        existing
            .public_access
            .iter()
            .filter(|a| media.contains(&a.node))
            .cloned(),
    );
    let owned = |a: &PublicAccessEntry| !media.contains(&a.node);
    let report = diff(&existing.public_access, &entries, |a| a.node, owned);
    (entries, report)
}

fn is_local(origin: Origin) -> bool {
    origin == Origin::Local
}

/// Umbraco's groups and granular entries, then the file's local ones; with the alias of each
/// Umbraco group key.
fn groups_and_entries(
    existing: &PolicyFile,
    state: &UmbracoState,
) -> (Vec<GroupEntry>, Vec<PermissionEntry>, HashMap<Uuid, String>) {
    let (mut groups, entries) = group_entries(&state.groups);
    let alias: HashMap<Uuid, String> = groups.iter().map(|g| (g.key, g.alias.clone())).collect();
    let local: Vec<&GroupEntry> = existing
        .groups
        .iter()
        .filter(|g| is_local(g.origin))
        .collect();
    let local_aliases: HashSet<&str> = local.iter().map(|g| g.alias.as_str()).collect();
    let mut permissions: Vec<PermissionEntry> = entries
        .iter()
        .filter_map(|e| {
            Some(PermissionEntry {
                group: alias.get(&e.group)?.clone(),
                node: e.node,
                verbs: e.verbs.clone(),
            })
        })
        .collect();
    let kept = existing.permissions.iter();
    permissions.extend(
        kept.filter(|p| local_aliases.contains(p.group.as_str()))
            .cloned(),
    );
    groups.extend(local.into_iter().cloned());
    (groups, permissions, alias)
}

/// Umbraco's nodes with their numbers: the one the file gave the key, else a new one.
fn numbered_nodes(existing: &PolicyFile, state: &UmbracoState) -> Vec<NodeEntry> {
    let ids: HashMap<Uuid, NodeId> = existing.nodes.iter().map(|n| (n.key, n.id)).collect();
    let mut next = existing
        .nodes
        .iter()
        .map(|n| n.id + 1)
        .max()
        .unwrap_or(FIRST_MIRROR_ID)
        .max(FIRST_MIRROR_ID);
    let trees = [
        (NodeKind::Document, &state.documents),
        (NodeKind::Media, &state.media),
    ];
    let mut out = Vec::new();
    for (kind, nodes) in trees {
        for n in nodes {
            let id = match ids.get(&n.key) {
                Some(id) => *id,
                None => {
                    next += 1;
                    next - 1
                }
            };
            out.push(NodeEntry {
                key: n.key,
                id,
                parent: n.parent,
                kind,
                trashed: n.trashed,
                route_path: state.routes.get(&n.key).cloned(),
            });
        }
    }
    out
}

/// Rows of one kind seen, inserted, updated and deleted (only `owned` old rows can go).
fn diff<T: PartialEq>(
    old: &[T],
    new: &[T],
    key: impl Fn(&T) -> Uuid,
    owned: impl Fn(&T) -> bool,
) -> KindReport {
    let before: HashMap<Uuid, &T> = old.iter().map(|r| (key(r), r)).collect();
    let after: HashSet<Uuid> = new.iter().map(&key).collect();
    let mut report = KindReport {
        seen: new.iter().filter(|r| owned(r)).count() as u64,
        ..KindReport::default()
    };
    for r in new.iter().filter(|r| owned(r)) {
        match before.get(&key(r)) {
            None => report.inserted += 1,
            Some(b) if *b != r => report.updated += 1,
            Some(_) => {}
        }
    }
    report.deleted = old
        .iter()
        .filter(|r| owned(r) && !after.contains(&key(r)))
        .count() as u64;
    report
}
