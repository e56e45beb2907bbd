//! One full sync: the document tree with each document's Delivery route (`routes.rs`, applied
//! in the tree's transaction), the media tree, then the user groups, then the users (groups
//! name start nodes and granular entries by node; users name groups), then the public-access
//! entries of the protected documents (`public_access.rs`), then the languages
//! (`languages.rs`), each read whole from the Management API ([`Mirror::read`]) and then
//! applied in its own transaction ([`Mirror::apply`]). A kind that fails to read or apply
//! changes nothing and stops the sync; kinds applied before it stay applied. Each tree, group
//! and user read starts with a [`Ticket`]: the apply leaves alone what webhooks wrote after it
//! (`store::postgres::mirror_touch`).

use super::client::Reader;
use super::wire::{self, Paged, UserGroup};
use super::{ExternalId, Mirror, SyncError};
use crate::authz::{NodeKind, UserState};
use crate::store::policy_file::{GroupEntry, Origin, StartRef, UserEntry};
use crate::store::postgres::mirror::{
    self as sql, KindReport, MirrorEntry, MirrorNode, MirrorUser, Scope, Ticket,
};
use crate::store::postgres::mirror_routes::{replace_documents, MirrorRoute};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;
use uuid::Uuid;

/// What a full sync did, per kind (`documents`, `routes`, `media`, `user_groups`, `users`,
/// `public_access`, `languages`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub kinds: BTreeMap<&'static str, KindReport>,
    pub duration_ms: u128,
}

impl SyncReport {
    /// `KindReport::changed` summed over every kind.
    pub fn changed(&self) -> u64 {
        self.kinds.values().map(KindReport::changed).sum()
    }
}

/// Every item of a paged listing (`skip`/`take` until `total` is reached).
pub(super) async fn all_pages<T: DeserializeOwned>(
    reader: &Reader,
    endpoint: &'static str,
    path: &str,
    take: u32,
) -> Result<Vec<T>, SyncError> {
    let mut items = Vec::new();
    loop {
        let query = [
            ("skip", items.len().to_string()),
            ("take", take.to_string()),
        ];
        let page: Paged<T> = reader.get_found(endpoint, path, &query).await?;
        let got = page.items.len();
        items.extend(page.items);
        if got == 0 || items.len() as i64 >= page.total {
            return Ok(items);
        }
    }
}

/// One kind of a full sync, in the order a sync applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Documents,
    Media,
    UserGroups,
    Users,
}

impl SyncKind {
    /// Every kind, in the order a sync reads and applies them.
    pub const ALL: [SyncKind; 4] = [
        SyncKind::Documents,
        SyncKind::Media,
        SyncKind::UserGroups,
        SyncKind::Users,
    ];

    /// The kind's name in the report and the metrics.
    pub fn name(self) -> &'static str {
        match self {
            SyncKind::Documents => "documents",
            SyncKind::Media => "media",
            SyncKind::UserGroups => "user_groups",
            SyncKind::Users => "users",
        }
    }
}

/// What a full sync read of one kind, with the ticket it took before reading.
#[derive(Debug, Clone)]
pub struct Snapshot {
    kind: SyncKind,
    ticket: Ticket,
    data: Data,
}

#[derive(Debug, Clone)]
enum Data {
    /// The nodes, the live ones the listing marks `isProtected`, and (documents) the routes.
    Tree(NodeKind, Vec<MirrorNode>, Vec<Uuid>, Vec<MirrorRoute>),
    Groups(Vec<GroupEntry>, Vec<MirrorEntry>),
    Users(Vec<MirrorUser>),
}

impl Mirror {
    /// Reads one kind whole from Umbraco (no write; the ticket is taken first).
    pub async fn read(&self, kind: SyncKind) -> Result<Snapshot, SyncError> {
        let ticket = Ticket::sync(&self.pool).await?;
        let take = self.cfg.page_size;
        let data = match kind {
            SyncKind::Documents | SyncKind::Media => {
                let nk = if kind == SyncKind::Media {
                    NodeKind::Media
                } else {
                    NodeKind::Document
                };
                let (nodes, marked) = super::tree::walk_marked(&self.reader, nk, &self.cfg).await?;
                let routes = match nk {
                    NodeKind::Document => {
                        let live = super::routes::live_depths(&nodes);
                        super::routes::read_routes(&self.reader, &self.cfg, &live).await?
                    }
                    _ => Vec::new(),
                };
                Data::Tree(nk, nodes, marked, routes)
            }
            SyncKind::UserGroups => {
                let groups: Vec<UserGroup> =
                    all_pages(&self.reader, "user_groups", "/user-group", take).await?;
                let (rows, entries) = group_entries(&groups);
                Data::Groups(rows, entries)
            }
            SyncKind::Users => {
                let users: Vec<wire::User> =
                    all_pages(&self.reader, "users", "/user", take).await?;
                let ext = self.cfg.external_id;
                Data::Users(users.iter().map(|u| user_entry(u, ext)).collect())
            }
        };
        Ok(Snapshot { kind, ticket, data })
    }

    /// Applies what [`read`](Mirror::read) returned, in one transaction.
    pub async fn apply(&self, snap: &Snapshot) -> Result<KindReport, SyncError> {
        Ok(self.apply_with_routes(snap).await?.0)
    }

    /// [`apply`](Mirror::apply), with the report of the documents' routes (applied in the
    /// document tree's transaction).
    async fn apply_with_routes(
        &self,
        snap: &Snapshot,
    ) -> Result<(KindReport, Option<KindReport>), SyncError> {
        let (pool, t, ticket) = (&self.pool, self.cfg.apply_timeout, snap.ticket);
        Ok((
            match &snap.data {
                Data::Tree(NodeKind::Document, nodes, _, routes) => {
                    let (tree, routes) = replace_documents(pool, nodes, routes, ticket, t).await?;
                    return Ok((tree, Some(routes)));
                }
                Data::Tree(kind, nodes, _, _) => {
                    sql::replace_tree(pool, *kind, nodes, ticket, t).await?
                }
                Data::Groups(rows, entries) => {
                    sql::replace_groups(pool, rows, entries, Scope::All, ticket, t).await?
                }
                Data::Users(users) => {
                    sql::replace_users(pool, users, Scope::All, ticket, t).await?
                }
            },
            None,
        ))
    }

    /// Runs one full sync and reports what changed.
    pub async fn full_sync(&self) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport::default();
        self.full_sync_into(&mut report).await?;
        Ok(report)
    }

    /// Runs one full sync, recording each kind in `report` as soon as it is applied: after a
    /// failure, `report` holds the kinds that stay applied.
    pub async fn full_sync_into(&self, report: &mut SyncReport) -> Result<(), SyncError> {
        let started = Instant::now();
        let mut protected = Vec::new();
        // The entries' view begins with the document walk that found the protected nodes.
        let mut access_ticket = None;
        for kind in SyncKind::ALL {
            let snap = self.read(kind).await?;
            let (r, routes) = self.apply_with_routes(&snap).await?;
            report.kinds.insert(snap.kind.name(), r);
            if let Some(routes) = routes {
                report.kinds.insert("routes", routes);
            }
            if let Data::Tree(nk, _, marked, _) = snap.data {
                protected.extend(marked);
                if nk == NodeKind::Document {
                    access_ticket = Some(snap.ticket);
                }
            }
        }
        let ticket = match access_ticket {
            Some(t) => t,
            None => Ticket::sync(&self.pool).await?,
        };
        let r = self.sync_public_access(&protected, ticket).await?;
        report.kinds.insert("public_access", r);
        let r = self.sync_languages(Ticket::sync(&self.pool).await?).await?;
        report.kinds.insert("languages", r);
        report.duration_ms = started.elapsed().as_millis();
        Ok(())
    }
}

fn start(root: bool, node: Option<wire::Ref>) -> Option<StartRef> {
    if root {
        return Some(StartRef::Root);
    }
    node.map(|r| StartRef::Node(r.id))
}

/// The store's rows for Umbraco's groups: the groups and their document granular entries.
pub(super) fn group_entries(groups: &[UserGroup]) -> (Vec<GroupEntry>, Vec<MirrorEntry>) {
    let mut entries = Vec::new();
    let rows = groups
        .iter()
        .map(|g| {
            entries.extend(
                g.permissions
                    .iter()
                    .filter(|p| p.kind == wire::DOCUMENT_PERMISSION)
                    .filter_map(|p| {
                        Some(MirrorEntry {
                            group: g.id,
                            node: p.document?.id,
                            verbs: p.verbs.clone(),
                        })
                    }),
            );
            GroupEntry {
                key: g.id,
                alias: g.alias.clone(),
                name: g.name.clone(),
                sections: g.sections.clone(),
                default_verbs: g.fallback_permissions.clone(),
                content_start: start(g.document_root_access, g.document_start_node),
                media_start: start(g.media_root_access, g.media_start_node),
                all_languages: g.has_access_to_all_languages,
                languages: g.languages.clone(),
                origin: Origin::Umbraco,
            }
        })
        .collect();
    (rows, entries)
}

/// `UserStateModel` as the store's state (`Inactive`, never logged in, is active). A state
/// this version does not know counts as disabled: such a user may do nothing.
fn user_state(s: &str) -> UserState {
    match s {
        "Active" | "Inactive" => UserState::Active,
        "LockedOut" => UserState::Locked,
        "Invited" => UserState::Invited,
        _ => UserState::Disabled,
    }
}

fn starts(root: bool, nodes: &[wire::Ref]) -> Vec<StartRef> {
    root.then_some(StartRef::Root)
        .into_iter()
        .chain(nodes.iter().map(|r| StartRef::Node(r.id)))
        .collect()
}

/// The store's row for an Umbraco user, with its group keys.
pub(super) fn user_entry(u: &wire::User, external_id: ExternalId) -> MirrorUser {
    let ext = match external_id {
        ExternalId::UserName => u.user_name.clone(),
        ExternalId::Email => u.email.clone(),
        ExternalId::Key => u.id.to_string(),
    };
    let entry = UserEntry {
        key: u.id,
        external_id: ext,
        name: u.name.clone(),
        email: (!u.email.is_empty()).then(|| u.email.clone()),
        state: user_state(&u.state),
        groups: Vec::new(),
        content_start: starts(u.has_document_root_access, &u.document_start_node_ids),
        media_start: starts(u.has_media_root_access, &u.media_start_node_ids),
        origin: Origin::Umbraco,
    };
    MirrorUser {
        entry,
        groups: u.user_group_ids.iter().map(|g| g.id).collect(),
    }
}
