//! `POST /v1/webhooks/umbraco` on the admin listener: Umbraco's webhooks keep the mirror
//! current between full syncs (docs/MIRROR.md, UMBRACO.md §10).
//!
//! Umbraco signs nothing; the webhook carries a secret custom header, compared here in
//! constant time before the body is read. Payloads are Umbraco's default "Minimal" ones
//! (`{"id":…}` or an array of them, `src/Umbraco.Core/Webhooks/Events/**`): the mirror fetches
//! the current state of every id from the Management API (`item/{document|media}` then
//! `tree/{…}/ancestors`, `user/{id}`, `user-group/{id}`) and applies it, so a delivery that
//! comes twice, late or out of order converges to what Umbraco holds now. A document event
//! also re-reads the Delivery routes of the documents it names and of their subtrees
//! (`routes.rs`): a rename, publish, unpublish or move changes every descendant's route.

use super::client::Found;
use super::full::{group_entries, user_entry};
use super::wire::{self, TreeItem, UserGroup};
use super::{Mirror, SyncConfig, SyncError};
use crate::authz::NodeKind;
use crate::store::postgres::mirror::{self as sql, KindReport, MirrorNode, Scope, Ticket};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The admin path Umbraco posts to.
pub const PATH: &str = "/v1/webhooks/umbraco";
/// The header naming the event (`Constants.WebhookEvents.HeaderNames.EventName`).
pub const EVENT_HEADER: &str = "umb-webhook-event";
/// Ids asked for per `item/…` call.
const ITEM_BATCH: usize = 40;

/// The webhook secret: the header it comes in and the expected value (`None`: unset, every
/// delivery is refused).
#[derive(Clone)]
pub struct WebhookSecret {
    header: http::HeaderName,
    digest: Option<[u8; 32]>,
}

impl WebhookSecret {
    /// Reads `sync.webhook_secret_env`; an unset or empty variable refuses every delivery.
    pub fn from_config(cfg: &SyncConfig) -> WebhookSecret {
        let secret = std::env::var(&cfg.webhook_secret_env).unwrap_or_default();
        WebhookSecret {
            header: http::HeaderName::from_bytes(cfg.webhook_header.as_bytes())
                .unwrap_or(http::HeaderName::from_static("x-portcullis-webhook-secret")),
            digest: (!secret.is_empty()).then(|| Sha256::digest(secret.as_bytes()).into()),
        }
    }

    /// Whether `headers` carry the secret (exactly one header, equal in constant time: both
    /// sides are hashed first, so neither content nor length leaks through timing).
    pub fn authentic(&self, headers: &http::HeaderMap) -> bool {
        let Some(want) = self.digest else {
            return false;
        };
        let mut values = headers.get_all(&self.header).iter();
        let (Some(got), None) = (values.next(), values.next()) else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(got.as_bytes()).into();
        got.ct_eq(&want).into()
    }
}

/// What an event refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    Nodes(NodeKind),
    Users,
    Groups,
    /// Public-access entries: the payload names entries, not documents, so all are re-read.
    PublicAccess,
    /// Every user group (`assignedUserGroupPermissions`: its payload names groups and nodes by
    /// int ids, which the Management API never shows).
    AllGroups,
    /// Languages: the whole list is re-read.
    Languages,
    /// An event the mirror does not need (answered 200, so Umbraco does not retry it).
    Ignored,
}

/// The refresh for an event alias (`Constants-WebhookEvents.cs`).
pub fn refresh_for(event: &str) -> Refresh {
    match event {
        "Umbraco.ContentPublish"
        | "Umbraco.ContentUnpublish"
        | "Umbraco.ContentDelete"
        | "Umbraco.ContentSaved"
        | "Umbraco.ContentMoved"
        | "Umbraco.ContentMovedToRecycleBin"
        | "Umbraco.ContentEmptiedRecycleBin"
        | "Umbraco.ContentCopied"
        | "Umbraco.ContentSorted"
        | "Umbraco.ContentRolledBack" => Refresh::Nodes(NodeKind::Document),
        "Umbraco.MediaSave"
        | "Umbraco.MediaDelete"
        | "mediaMoved"
        | "mediaMovedToRecycleBin"
        | "mediaEmptiedRecycleBin" => Refresh::Nodes(NodeKind::Media),
        "userSaved" | "userDeleted" | "userLocked" | "userUnlocked" => Refresh::Users,
        "userGroupSaved" | "UserGroupDeleted" => Refresh::Groups,
        "publicAccessEntrySaved" | "publicAccessEntryDeleted" => Refresh::PublicAccess,
        "assignedUserGroupPermissions" => Refresh::AllGroups,
        "languageSaved" | "languageDeleted" => Refresh::Languages,
        _ => Refresh::Ignored,
    }
}

/// The ids of a Minimal payload: `{"id":…}` or `[{"id":…}, …]` (extra fields ignored).
pub fn payload_ids(body: &[u8]) -> Result<Vec<Uuid>, String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Payload {
        One(wire::Ref),
        Many(Vec<wire::Ref>),
    }
    match serde_json::from_slice::<Payload>(body) {
        Ok(Payload::One(r)) => Ok(vec![r.id]),
        Ok(Payload::Many(v)) if !v.is_empty() => Ok(v.into_iter().map(|r| r.id).collect()),
        Ok(Payload::Many(_)) => Err("the payload lists no ids".into()),
        Err(e) => Err(format!(
            "the payload is not `{{\"id\":…}}` or an array of them: {e}"
        )),
    }
}

/// The entries of an `assignedUserGroupPermissions` payload: Umbraco's `EntityPermission`s
/// (`[{"userGroupId": int, "entityId": int, "assignedPermissions": […], …}]`); returns how many.
pub fn payload_permissions(body: &[u8]) -> Result<usize, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct EntityPermission {
        #[allow(dead_code)]
        user_group_id: i64,
        #[allow(dead_code)]
        entity_id: i64,
    }
    match serde_json::from_slice::<Vec<EntityPermission>>(body) {
        Ok(v) if !v.is_empty() => Ok(v.len()),
        Ok(_) => Err("the payload lists no permissions".into()),
        Err(e) => Err(format!(
            "the payload is not an array of `{{\"userGroupId\":…, \"entityId\":…}}`: {e}"
        )),
    }
}

fn segment(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Media => "media",
        NodeKind::Document | NodeKind::Element => "document",
    }
}

impl Mirror {
    /// Applies what Umbraco holds now for `ids` after `refresh`. The ticket is taken before
    /// anything is read: rows a later webhook wrote meanwhile are left as they are.
    pub async fn refresh(&self, refresh: Refresh, ids: &[Uuid]) -> Result<KindReport, SyncError> {
        if refresh == Refresh::Ignored {
            return Ok(KindReport::default());
        }
        let ticket = Ticket::webhook(&self.pool).await?;
        match refresh {
            Refresh::Nodes(kind) => self.refresh_nodes(kind, ids, ticket).await,
            Refresh::Users => self.refresh_users(ids, ticket).await,
            Refresh::Groups => self.refresh_groups(ids, ticket).await,
            Refresh::AllGroups => self.refresh_all_groups(ticket).await,
            Refresh::PublicAccess => self.refresh_public_access(ticket).await,
            Refresh::Languages => self.sync_languages(ticket).await,
            Refresh::Ignored => Ok(KindReport::default()),
        }
    }

    async fn refresh_all_groups(&self, ticket: Ticket) -> Result<KindReport, SyncError> {
        let take = self.cfg.page_size;
        let groups: Vec<UserGroup> =
            super::full::all_pages(&self.reader, "user_groups", "/user-group", take).await?;
        let (rows, entries) = group_entries(&groups);
        let t = self.cfg.apply_timeout;
        Ok(sql::replace_groups(&self.pool, &rows, &entries, Scope::All, ticket, t).await?)
    }

    async fn refresh_nodes(
        &self,
        kind: NodeKind,
        ids: &[Uuid],
        ticket: Ticket,
    ) -> Result<KindReport, SyncError> {
        let seg = segment(kind);
        let mut items: Vec<TreeItem> = Vec::new();
        for chunk in ids.chunks(ITEM_BATCH) {
            let query: Vec<(&str, String)> = chunk.iter().map(|k| ("id", k.to_string())).collect();
            let found: Vec<TreeItem> = self
                .reader
                .get_found("item", &format!("/item/{seg}"), &query)
                .await?;
            items.extend(found.into_iter().filter(|i| chunk.contains(&i.id)));
        }
        let found: HashSet<Uuid> = items.iter().map(|i| i.id).collect();
        let gone: Vec<Uuid> = ids.iter().filter(|k| !found.contains(k)).copied().collect();
        // A node whose parent is among the ids hangs under that parent's chain; the others
        // need their ancestors (root first, the node last).
        let mut chains: Vec<MirrorNode> = Vec::new();
        let mut seen = HashSet::new();
        for item in items
            .iter()
            .filter(|i| !i.parent.is_some_and(|p| found.contains(&p.id)))
        {
            let query = [("descendantId", item.id.to_string())];
            let chain: Vec<TreeItem> = self
                .reader
                .get_found("tree_ancestors", &format!("/tree/{seg}/ancestors"), &query)
                .await?;
            let mut parent = None;
            for (i, a) in chain.iter().enumerate() {
                if seen.insert(a.id) {
                    chains.push(MirrorNode {
                        key: a.id,
                        parent,
                        trashed: i == 0 && a.is_trashed,
                    });
                }
                parent = Some(a.id);
            }
        }
        for item in &items {
            if seen.insert(item.id) {
                chains.push(MirrorNode {
                    key: item.id,
                    parent: item.parent.map(|p| p.id),
                    trashed: false,
                });
            }
        }
        let t = self.cfg.apply_timeout;
        let mut report = sql::refresh_nodes(&self.pool, kind, &chains, &gone, ticket, t).await?;
        if kind == NodeKind::Document {
            let keys: Vec<Uuid> = items.iter().map(|i| i.id).collect();
            report.updated += self.refresh_routes(&keys, ticket).await?.updated;
        }
        Ok(report)
    }

    async fn refresh_users(&self, ids: &[Uuid], ticket: Ticket) -> Result<KindReport, SyncError> {
        let mut users = Vec::new();
        for id in ids {
            let path = format!("/user/{id}");
            if let Found::Yes(u) = self.reader.get::<wire::User>("user", &path, &[]).await? {
                users.push(user_entry(&u, self.cfg.external_id));
            }
        }
        let t = self.cfg.apply_timeout;
        Ok(sql::replace_users(&self.pool, &users, Scope::Only(ids), ticket, t).await?)
    }

    async fn refresh_groups(&self, ids: &[Uuid], ticket: Ticket) -> Result<KindReport, SyncError> {
        let mut groups: Vec<UserGroup> = Vec::new();
        for id in ids {
            let path = format!("/user-group/{id}");
            if let Found::Yes(g) = self.reader.get("user_group", &path, &[]).await? {
                groups.push(g);
            }
        }
        let (rows, entries) = group_entries(&groups);
        let t = self.cfg.apply_timeout;
        Ok(sql::replace_groups(&self.pool, &rows, &entries, Scope::Only(ids), ticket, t).await?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn minimal_payloads_give_their_ids() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(
            payload_ids(format!(r#"{{"id":"{a}"}}"#).as_bytes()).unwrap(),
            [a]
        );
        let many = format!(r#"[{{"id":"{a}","sortOrder":0}},{{"id":"{b}"}}]"#);
        assert_eq!(payload_ids(many.as_bytes()).unwrap(), [a, b]);
        assert!(payload_ids(b"[]").is_err());
        assert!(payload_ids(b"{\"id\":\"nope\"}").is_err());
        assert!(payload_ids(b"not json").is_err());
    }

    #[test]
    fn permission_payloads_are_entity_permissions() {
        // AssignedUserGroupPermissionsWebhookEvent sends `notification.EntityPermissions`
        // (src/Umbraco.Core/Webhooks/Events/User/AssignedUserGroupPermissionsWebhookEvent.cs,
        // src/Umbraco.Core/Models/Membership/EntityPermission.cs), camelCase.
        let body = br#"[{"entityId":1061,"userGroupId":5,"assignedPermissions":["Umb.Document.Read"],"isDefaultPermissions":false}]"#;
        assert_eq!(payload_permissions(body), Ok(1));
        assert!(payload_permissions(b"[]").is_err());
        assert!(payload_permissions(br#"{"id":"00000000-0000-0000-0000-000000000001"}"#).is_err());
    }

    #[test]
    fn events_map_to_what_they_refresh() {
        assert_eq!(
            refresh_for("Umbraco.ContentMoved"),
            Refresh::Nodes(NodeKind::Document)
        );
        assert_eq!(
            refresh_for("mediaMovedToRecycleBin"),
            Refresh::Nodes(NodeKind::Media)
        );
        assert_eq!(refresh_for("UserGroupDeleted"), Refresh::Groups);
        assert_eq!(refresh_for("userLocked"), Refresh::Users);
        assert_eq!(
            refresh_for("publicAccessEntryDeleted"),
            Refresh::PublicAccess
        );
        assert_eq!(
            refresh_for("assignedUserGroupPermissions"),
            Refresh::AllGroups
        );
        assert_eq!(refresh_for("languageSaved"), Refresh::Languages);
        assert_eq!(refresh_for("userLoginSuccess"), Refresh::Ignored);
    }

    #[test]
    fn the_secret_must_come_once_and_match() {
        let s = WebhookSecret {
            header: http::HeaderName::from_static("x-hook"),
            digest: Some(Sha256::digest(b"s3cret").into()),
        };
        let mut h = http::HeaderMap::new();
        assert!(!s.authentic(&h));
        h.insert("x-hook", http::HeaderValue::from_static("s3cret"));
        assert!(s.authentic(&h));
        h.append("x-hook", http::HeaderValue::from_static("s3cret"));
        assert!(!s.authentic(&h), "two values");
        h.insert("x-hook", http::HeaderValue::from_static("s3cret "));
        assert!(!s.authentic(&h));
        let unset = WebhookSecret { digest: None, ..s };
        h.insert("x-hook", http::HeaderValue::from_static(""));
        assert!(!unset.authentic(&h));
    }
}
