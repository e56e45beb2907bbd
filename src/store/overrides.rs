//! Local overrides through the admin API (Postgres store): groups, group mappings and users
//! that Portcullis owns (`origin = 'local'`, docs/STORE.md "Who owns which rows"). The views
//! here are what operators see and what change rows record. One primitive,
//! [`OverrideWriter::write`], as [`super::KeyWriter::write`] for keys: lock the resource, let the
//! caller produce the new state (or `None` to delete it, or refuse), store it and record the
//! change — all in one transaction. The tables' `NOTIFY` triggers tell every gateway; the
//! writing gateway also evicts the entries from its own cache at once.

use super::policy_file::{GroupEntry, Origin, StartRef, UserEntry};
use super::postgres::overrides::PgOverride;
use super::{ChangeRow, Invalidation, PolicyCache, StoreError};
use crate::authz::UserState;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPool;
use uuid::Uuid;

/// A granular entry of a group: the verbs it grants on one node (`[]`: nothing there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub node: Uuid,
    pub verbs: Vec<String>,
}

/// A user group as operators see it (either owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupView {
    pub key: Uuid,
    pub alias: String,
    pub name: String,
    pub sections: Vec<String>,
    pub default_verbs: Vec<String>,
    pub content_start: Option<StartRef>,
    pub media_start: Option<StartRef>,
    pub all_languages: bool,
    pub languages: Vec<String>,
    /// Granular entries, by node key.
    pub permissions: Vec<Grant>,
    pub origin: Origin,
}

/// A stored group mapping: an IdP group of an issuer → group aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingView {
    /// The issuer's configured `name`.
    pub issuer: String,
    /// The value in the token's groups claim.
    pub idp_group: String,
    /// Group aliases, sorted.
    pub groups: Vec<String>,
}

/// A user as operators see it (either owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub key: Uuid,
    pub external_id: String,
    pub name: String,
    pub email: Option<String>,
    pub state: UserState,
    /// Group aliases, sorted.
    pub groups: Vec<String>,
    pub content_start: Vec<StartRef>,
    pub media_start: Vec<StartRef>,
    pub origin: Origin,
}

impl GroupView {
    /// The view of a stored group: its entry and its granular entries.
    pub fn from_entry(e: GroupEntry, permissions: Vec<Grant>) -> Self {
        GroupView {
            key: e.key,
            alias: e.alias,
            name: e.name,
            sections: e.sections,
            default_verbs: e.default_verbs,
            content_start: e.content_start,
            media_start: e.media_start,
            all_languages: e.all_languages,
            languages: e.languages,
            permissions,
            origin: e.origin,
        }
    }

    /// The group's entry, owned by `origin` (its granular entries are stored apart).
    pub fn entry(&self, origin: Origin) -> GroupEntry {
        GroupEntry {
            key: self.key,
            alias: self.alias.clone(),
            name: self.name.clone(),
            sections: self.sections.clone(),
            default_verbs: self.default_verbs.clone(),
            content_start: self.content_start,
            media_start: self.media_start,
            all_languages: self.all_languages,
            languages: self.languages.clone(),
            origin,
        }
    }
}

impl From<UserEntry> for UserView {
    fn from(e: UserEntry) -> Self {
        UserView {
            key: e.key,
            external_id: e.external_id,
            name: e.name,
            email: e.email,
            state: e.state,
            groups: e.groups,
            content_start: e.content_start,
            media_start: e.media_start,
            origin: e.origin,
        }
    }
}

impl UserView {
    /// The user's entry, owned by `origin`.
    pub fn entry(&self, origin: Origin) -> UserEntry {
        UserEntry {
            key: self.key,
            external_id: self.external_id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            state: self.state,
            groups: self.groups.clone(),
            content_start: self.content_start.clone(),
            media_start: self.media_start.clone(),
            origin,
        }
    }
}

impl MappingView {
    /// The resource id of a mapping: `issuer/idp_group` (issuer names have no `/`).
    pub fn id_of(issuer: &str, idp_group: &str) -> String {
        format!("{issuer}/{idp_group}")
    }
}

/// One kind of override: its change-row kind, its id and what a change of it evicts.
pub trait Override: Serialize + Clone + Send + Sync + 'static {
    /// `kind` of its change rows.
    const KIND: &'static str;
    /// The resource id (alias, `issuer/idp_group`, external id).
    fn id(&self) -> String;
    /// Who owns it.
    fn origin(&self) -> Origin;
    /// What a change from `self` (before or after) evicts.
    fn invalidation(&self) -> Invalidation;
}

impl Override for GroupView {
    const KIND: &'static str = "group";
    fn id(&self) -> String {
        self.alias.clone()
    }
    fn origin(&self) -> Origin {
        self.origin
    }
    fn invalidation(&self) -> Invalidation {
        Invalidation::Group { key: self.key }
    }
}

impl Override for MappingView {
    const KIND: &'static str = "group_mapping";
    fn id(&self) -> String {
        MappingView::id_of(&self.issuer, &self.idp_group)
    }
    fn origin(&self) -> Origin {
        Origin::Local
    }
    fn invalidation(&self) -> Invalidation {
        Invalidation::GroupMappings {
            issuer: self.issuer.clone(),
        }
    }
}

impl Override for UserView {
    const KIND: &'static str = "user";
    fn id(&self) -> String {
        self.external_id.clone()
    }
    fn origin(&self) -> Origin {
        self.origin
    }
    fn invalidation(&self) -> Invalidation {
        Invalidation::User {
            key: self.key,
            external_ids: vec![self.external_id.clone()],
        }
    }
}

/// Reads and writes overrides in the Postgres store.
pub struct OverrideWriter {
    pool: PgPool,
    cache: Option<PolicyCache>,
}

impl OverrideWriter {
    /// Overrides in PostgreSQL; `cache` (the gateway's) is told about each write at once.
    pub fn new(pool: PgPool, cache: Option<PolicyCache>) -> OverrideWriter {
        OverrideWriter { pool, cache }
    }

    /// Every resource of kind `R`, ordered by id.
    pub async fn list<R: PgOverride>(&self) -> Result<Vec<R>, StoreError> {
        R::list(&self.pool).await
    }

    /// One resource by id.
    pub async fn get<R: PgOverride>(&self, id: &str) -> Result<Option<R>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        R::load(&mut conn, id).await
    }

    /// Locks resource `id` (absent: `None`), lets `edit` produce its new state (`None`:
    /// delete it) or refuse, stores it and records the change as `action` by `actor`. Nothing
    /// is written when `edit` refuses. Returns the state written.
    pub async fn write<R: PgOverride, E: From<StoreError>>(
        &self,
        id: &str,
        actor: &str,
        action: &str,
        edit: impl FnOnce(Option<R>) -> Result<Option<R>, E>,
    ) -> Result<Option<R>, E> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("portcullis:{}:{id}", R::KIND))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let before = R::load(&mut tx, id).await?;
        let after = edit(before.clone())?;
        R::save(&mut tx, before.as_ref(), after.as_ref()).await?;
        let view = |r: &R| serde_json::to_value(r).ok();
        let change = ChangeRow::new(
            actor,
            action,
            R::KIND,
            id,
            before.as_ref().and_then(view),
            after.as_ref().and_then(view),
        );
        super::postgres::keys::record_change(&mut tx, &change).await?;
        tx.commit().await.map_err(db)?;
        if let Some(cache) = &self.cache {
            for r in before.iter().chain(after.iter()) {
                cache.apply(&r.invalidation()).await;
            }
        }
        Ok(after)
    }
}

fn db(source: sqlx::Error) -> StoreError {
    StoreError::Database {
        query: "admin_override",
        source,
    }
}
