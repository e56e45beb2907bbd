//! Writing API keys (the admin API, and `portcullis keys create` offline against a policy
//! file). One primitive, [`KeyWriter::write`]: read the key under a lock, let the caller turn
//! it into the new entry (or refuse), write it and record the change — who, what, before and
//! after as [`KeyView`]s, never a secret or a hash.
//!
//! - Postgres: one transaction with an `admin_changes` row; the `api_keys` trigger tells every
//!   gateway, and the writing gateway evicts the key from its own cache at once.
//! - File store: rewrites only the `api_keys` tables of the watched policy file (comments and
//!   the other sections are kept), atomically (temporary file + rename), validates the whole
//!   file first, appends the change to `<policy file>.changes.jsonl`, and reloads.

use super::policy_file::ApiKeyEntry;
use super::{file_edit, FileStore, Invalidation, PolicyCache, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgPool;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

/// A key as shown to operators and recorded in change rows: everything but the hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    pub key_id: String,
    pub name: String,
    pub owner: String,
    pub apis: Vec<crate::request::Api>,
    pub subtree_roots: Vec<Uuid>,
    pub cultures: Vec<String>,
    pub preview: bool,
    pub acts_as: Option<String>,
    pub rate_limit_rps: Option<u32>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    /// After a rotation: until when the replaced secret is still accepted.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl From<&ApiKeyEntry> for KeyView {
    fn from(k: &ApiKeyEntry) -> KeyView {
        KeyView {
            key_id: k.key_id.clone(),
            name: k.name.clone(),
            owner: k.owner.clone(),
            apis: k.apis.clone(),
            subtree_roots: k.subtree_roots.clone(),
            cultures: k.cultures.clone(),
            preview: k.preview,
            acts_as: k.acts_as.clone(),
            rate_limit_rps: k.rate_limit_rps,
            expires_at: k.expires_at,
            revoked: k.revoked,
            previous_secret_expires_at: k.previous_expires_at,
        }
    }
}

/// One recorded admin change (a row of `admin_changes`, a line of the file store's log).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRow {
    pub occurred_at: DateTime<Utc>,
    pub change_id: Uuid,
    /// `admin:{token name}`, or `cli:{user}` for offline changes.
    pub actor: String,
    /// `create`, `update`, `revoke`, `rotate`.
    pub action: String,
    /// `api_key`.
    pub kind: String,
    /// The key id.
    pub resource: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl ChangeRow {
    /// A change of `kind` resource `resource` by `actor`, with JSON views before and after.
    pub fn new(
        actor: &str,
        action: &str,
        kind: &str,
        resource: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> ChangeRow {
        ChangeRow {
            occurred_at: Utc::now(),
            change_id: Uuid::now_v7(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            kind: kind.to_owned(),
            resource: resource.to_owned(),
            before,
            after,
        }
    }

    /// The change of key `after` from `before` by `actor`.
    pub fn api_key(
        actor: &str,
        action: &str,
        before: Option<&ApiKeyEntry>,
        after: &ApiKeyEntry,
    ) -> ChangeRow {
        let view = |k: &ApiKeyEntry| serde_json::to_value(KeyView::from(k)).ok();
        ChangeRow::new(
            actor,
            action,
            "api_key",
            &after.key_id,
            before.and_then(view),
            view(after),
        )
    }
}

enum Backend {
    Postgres(PgPool),
    File {
        path: PathBuf,
        /// The running store to reload after a write (`None` offline).
        store: Option<Arc<FileStore>>,
        lock: tokio::sync::Mutex<()>,
    },
}

/// Reads and writes API keys in the gateway's policy store.
pub struct KeyWriter {
    backend: Backend,
    cache: Option<PolicyCache>,
}

impl KeyWriter {
    /// Keys in PostgreSQL; `cache` (the gateway's) is told about each write at once.
    pub fn postgres(pool: PgPool, cache: Option<PolicyCache>) -> KeyWriter {
        KeyWriter {
            backend: Backend::Postgres(pool),
            cache,
        }
    }

    /// Keys in the policy file at `path`; `store` and `cache` (the gateway's) reload after a write.
    pub fn file(path: &Path, store: Option<Arc<FileStore>>, cache: Option<PolicyCache>) -> Self {
        KeyWriter {
            backend: Backend::File {
                path: path.to_owned(),
                store,
                lock: tokio::sync::Mutex::new(()),
            },
            cache,
        }
    }

    /// Every key, ordered by id.
    pub async fn list(&self) -> Result<Vec<ApiKeyEntry>, StoreError> {
        match &self.backend {
            Backend::Postgres(pool) => super::postgres::keys::list_keys(pool).await,
            Backend::File { path, .. } => {
                let mut keys = file_edit::read(path)?.1.api_keys;
                keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
                Ok(keys)
            }
        }
    }

    /// One key by id.
    pub async fn get(&self, key_id: &str) -> Result<Option<ApiKeyEntry>, StoreError> {
        match &self.backend {
            Backend::Postgres(pool) => super::postgres::keys::get_key(pool, key_id).await,
            Backend::File { path, .. } => Ok(file_edit::read(path)?
                .1
                .api_keys
                .into_iter()
                .find(|k| k.key_id == key_id)),
        }
    }

    /// Reads key `key_id` under a lock (`None` when absent), lets `edit` produce the new entry
    /// or refuse, writes it and records the change as `action` by `actor`. Returns the entry
    /// written and the change recorded.
    pub async fn write<E: From<StoreError>>(
        &self,
        key_id: &str,
        actor: &str,
        action: &str,
        edit: impl FnOnce(Option<ApiKeyEntry>) -> Result<ApiKeyEntry, E>,
    ) -> Result<ApiKeyEntry, E> {
        let change = |before: Option<&ApiKeyEntry>, after: &ApiKeyEntry| {
            ChangeRow::api_key(actor, action, before, after)
        };
        let written = match &self.backend {
            Backend::Postgres(pool) => {
                super::postgres::keys::write_key(pool, key_id, edit, change).await?
            }
            Backend::File { path, store, lock } => {
                let _held = lock.lock().await;
                let written = write_file(path, key_id, edit, change)?;
                if let Some(store) = store {
                    store.reload_if_changed()?;
                }
                written
            }
        };
        if let Some(cache) = &self.cache {
            let inv = Invalidation::ApiKey {
                key_ids: vec![key_id.to_owned()],
            };
            cache.apply(&inv).await;
        }
        Ok(written)
    }
}

fn write_file<E: From<StoreError>>(
    path: &Path,
    key_id: &str,
    edit: impl FnOnce(Option<ApiKeyEntry>) -> Result<ApiKeyEntry, E>,
    change: impl FnOnce(Option<&ApiKeyEntry>, &ApiKeyEntry) -> ChangeRow,
) -> Result<ApiKeyEntry, E> {
    let (text, mut file) = file_edit::read(path)?;
    let at = file.api_keys.iter().position(|k| k.key_id == key_id);
    let before = at.map(|i| file.api_keys[i].clone());
    let after = edit(before.clone())?;
    match at {
        Some(i) => file.api_keys[i] = after.clone(),
        None => file.api_keys.push(after.clone()),
    }
    file.validate()?;
    let new_text = replace_api_keys(path, &text, &file.api_keys)?;
    file_edit::replace_atomically(path, new_text.as_bytes())?;
    let row = change(before.as_ref(), &after);
    append_change(path, &row)?;
    Ok(after)
}

/// `text` with its `api_keys` replaced by `keys`; everything else (comments included) kept.
fn replace_api_keys(path: &Path, text: &str, keys: &[ApiKeyEntry]) -> Result<String, StoreError> {
    #[derive(Serialize)]
    struct Keys<'a> {
        api_keys: &'a [ApiKeyEntry],
    }
    file_edit::replace_items(path, text, &Keys { api_keys: keys }, &["api_keys"])
}

/// The file store's change log: `<policy file>.changes.jsonl`, one [`ChangeRow`] per line.
pub fn change_log_path(policy: &Path) -> PathBuf {
    let mut p = policy.as_os_str().to_owned();
    p.push(".changes.jsonl");
    PathBuf::from(p)
}

fn append_change(policy: &Path, row: &ChangeRow) -> Result<(), StoreError> {
    use std::io::Write;
    let log = change_log_path(policy);
    let mut line = serde_json::to_vec(row).unwrap_or_default();
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(file_edit::write_err(&log))?;
    f.write_all(&line).map_err(file_edit::write_err(&log))?;
    f.sync_data().map_err(file_edit::write_err(&log))
}
