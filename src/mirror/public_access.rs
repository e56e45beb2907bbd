//! Public-access entries ("member protection" of Delivery documents, UMBRACO.md §8) read from
//! the Management API and applied to the store's `public_access` (docs/MIRROR.md).
//!
//! What Umbraco answers, from its source:
//! - the tree listings mark `isProtected` on a node that has an entry *or lies under one*
//!   (`DocumentTreeControllerBase`), so every marked node is asked, and only the node that
//!   owns an entry gets a row (the Delivery decision takes the nearest entry on the path);
//! - `GET document/{id}/public-access` (`GetPublicAccessDocumentController`) answers the
//!   node's *own* entry (`GetEntryByContentKeyWithoutAncestorsAsync`, `includeAncestors`
//!   defaults to false) and 404 when the node only inherits one; an answer flagged
//!   `isProtectedByAncestor` (asked with ancestors) is not the node's own either;
//! - the entry names members by id (`MemberItemResponseModel`, no username) and member groups
//!   by name (`MemberGroupItemResponseModel.name`, the role names `PublicAccessService`
//!   compares with the member's roles): each member's username comes from `GET member/{id}`
//!   (`MemberResponseModel.username`), asked once per sync; a member Umbraco no longer has
//!   is left out (the entry names fewer people, never more).
//!
//! Webhooks (`publicAccessEntrySaved`, `publicAccessEntryDeleted`) carry the ids of *entries*,
//! not of documents, and the Management API looks entries up by document only: a delivery
//! re-reads every protected document (one walk of the document tree) and replaces all entries.

use super::client::{each_bounded, Found, Reader};
use super::wire::Ref;
use super::{Mirror, SyncError};
use crate::authz::NodeKind;
use crate::store::postgres::mirror::{KindReport, Scope, Ticket};
use crate::store::postgres::mirror_public_access::{replace_public_access, MirrorAccess};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// `PublicAccessResponseModel` (only what the mirror uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicAccess {
    #[serde(default)]
    pub members: Vec<Ref>,
    #[serde(default)]
    pub groups: Vec<MemberGroupItem>,
    /// Umbraco 17.3+: the entry belongs to an ancestor (only when asked with ancestors).
    #[serde(default)]
    pub is_protected_by_ancestor: bool,
}

/// `MemberGroupItemResponseModel`.
#[derive(Debug, Clone, Deserialize)]
pub struct MemberGroupItem {
    pub id: Uuid,
    pub name: String,
}

/// `MemberResponseModel` (only the username).
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub id: Uuid,
    pub username: String,
}

/// The entry `node` owns, if any (`None`: no entry, or only an inherited one).
async fn own_entry(reader: &Reader, node: Uuid) -> Result<Option<PublicAccess>, SyncError> {
    let path = format!("/document/{node}/public-access");
    let found: Found<Option<PublicAccess>> =
        reader.get("document_public_access", &path, &[]).await?;
    Ok(match found {
        Found::Yes(Some(pa)) if !pa.is_protected_by_ancestor => Some(pa),
        Found::Yes(_) | Found::NotFound => None,
    })
}

/// The username of member `id` (`None`: Umbraco no longer has the member).
async fn username(reader: &Reader, id: Uuid) -> Result<Option<(Uuid, String)>, SyncError> {
    let found: Found<Member> = reader.get("member", &format!("/member/{id}"), &[]).await?;
    Ok(match found {
        Found::Yes(m) => Some((id, m.username)),
        Found::NotFound => None,
    })
}

/// The entries that `candidates` (documents marked `isProtected`) own, with their members'
/// usernames; at most `concurrency` calls in flight.
pub async fn read_entries(
    reader: &Reader,
    candidates: &[Uuid],
    concurrency: usize,
) -> Result<Vec<MirrorAccess>, SyncError> {
    let own = |node| async move { Ok::<_, SyncError>([(node, own_entry(reader, node).await?)]) };
    let into = Vec::with_capacity(candidates.len());
    let owned: Vec<(Uuid, Option<PublicAccess>)> =
        each_bounded(candidates.iter().copied(), concurrency, own, into).await?;
    let members: BTreeSet<Uuid> = owned
        .iter()
        .filter_map(|(_, pa)| pa.as_ref())
        .flat_map(|pa| pa.members.iter().map(|m| m.id))
        .collect();
    // A member Umbraco no longer has (`None`) adds nothing.
    let name = |id| username(reader, id);
    let names: HashMap<Uuid, String> =
        each_bounded(members, concurrency, name, HashMap::new()).await?;
    Ok(owned
        .into_iter()
        .filter_map(|(node, pa)| {
            let pa = pa?;
            Some(MirrorAccess {
                node,
                groups: pa.groups.into_iter().map(|g| g.name).collect(),
                usernames: pa
                    .members
                    .iter()
                    .filter_map(|m| names.get(&m.id).cloned())
                    .collect(),
            })
        })
        .collect())
}

impl Mirror {
    /// Reads the entries `protected` own and makes the mirror's entries exactly those.
    /// `ticket` was taken before the walk that found `protected`: a writer with a later one
    /// that applied the entries first wins.
    pub(super) async fn sync_public_access(
        &self,
        protected: &[Uuid],
        ticket: Ticket,
    ) -> Result<KindReport, SyncError> {
        let entries = read_entries(&self.reader, protected, self.cfg.concurrency).await?;
        let t = self.cfg.apply_timeout;
        Ok(replace_public_access(&self.pool, &entries, Scope::All, ticket, t).await?)
    }

    /// A public-access webhook: finds the protected documents (one walk of the document tree)
    /// and replaces every entry with what Umbraco holds now.
    pub(super) async fn refresh_public_access(
        &self,
        ticket: Ticket,
    ) -> Result<KindReport, SyncError> {
        let (_, protected) =
            super::tree::walk_marked(&self.reader, NodeKind::Document, &self.cfg).await?;
        self.sync_public_access(&protected, ticket).await
    }
}
