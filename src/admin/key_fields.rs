//! The request bodies of `/v1/keys…` and the checks of their fields: a 400 when the JSON does
//! not fit (serde, naming the field), a 422 naming the field when a value is not acceptable
//! (an unknown node or user, a past expiry, an empty name).

use super::http::AdminError;
use crate::request::Api;
use crate::store::policy_file::ApiKeyEntry;
use crate::store::PolicyStore;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

/// Longest `name` / `owner`.
const MAX_LABEL: usize = 200;
/// Longest rotation overlap (30 days).
pub const MAX_OVERLAP_SECONDS: u64 = 30 * 24 * 3600;
/// Rotation overlap when the request names none (1 hour).
pub const DEFAULT_OVERLAP_SECONDS: u64 = 3600;

/// `POST /v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    pub owner: String,
    pub apis: Vec<Api>,
    #[serde(default)]
    pub subtree_roots: Vec<Uuid>,
    #[serde(default)]
    pub cultures: Vec<String>,
    #[serde(default)]
    pub preview: bool,
    #[serde(default)]
    pub acts_as: Option<String>,
    #[serde(default)]
    pub rate_limit_rps: Option<u32>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `PATCH /v1/keys/{id}`: absent fields stay; `null` clears `acts_as`, `rate_limit_rps` and
/// `expires_at`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    pub name: Option<String>,
    pub owner: Option<String>,
    pub apis: Option<Vec<Api>>,
    pub subtree_roots: Option<Vec<Uuid>>,
    pub cultures: Option<Vec<String>>,
    pub preview: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub acts_as: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub rate_limit_rps: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// `POST /v1/keys/{id}/rotate` (the body may be empty).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the replaced secret keeps working (0: it stops at once).
    #[serde(default = "default_overlap")]
    pub overlap_seconds: u64,
}

fn default_overlap() -> u64 {
    DEFAULT_OVERLAP_SECONDS
}

/// A field given as `null` is `Some(None)`; an absent one `None` (with `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl CreateKey {
    /// The entry for a new key with this id and hash.
    pub fn into_entry(self, key_id: String, hash: [u8; 32]) -> ApiKeyEntry {
        ApiKeyEntry {
            key_id,
            hash: hex::encode(hash),
            name: self.name,
            owner: self.owner,
            apis: self.apis,
            subtree_roots: self.subtree_roots,
            cultures: lower(self.cultures),
            preview: self.preview,
            acts_as: self.acts_as,
            rate_limit_rps: self.rate_limit_rps,
            expires_at: self.expires_at,
            revoked: false,
            previous_hash: None,
            previous_expires_at: None,
        }
    }

    /// Every field check; the first failure is the answer.
    pub async fn check(&self, store: &dyn PolicyStore) -> Result<(), AdminError> {
        check_label("name", &self.name)?;
        check_label("owner", &self.owner)?;
        check_apis(&self.apis)?;
        check_scope(store, &self.subtree_roots, &self.cultures, &self.acts_as).await?;
        check_rps(self.rate_limit_rps)?;
        check_expiry(self.expires_at)
    }
}

impl UpdateKey {
    /// Checks every given field.
    pub async fn check(&self, store: &dyn PolicyStore) -> Result<(), AdminError> {
        if let Some(n) = &self.name {
            check_label("name", n)?;
        }
        if let Some(o) = &self.owner {
            check_label("owner", o)?;
        }
        if let Some(a) = &self.apis {
            check_apis(a)?;
        }
        let roots = self.subtree_roots.clone().unwrap_or_default();
        let cultures = self.cultures.clone().unwrap_or_default();
        let acts_as = self.acts_as.clone().flatten();
        check_scope(store, &roots, &cultures, &acts_as).await?;
        check_rps(self.rate_limit_rps.flatten())?;
        check_expiry(self.expires_at.flatten())
    }

    /// Applies the given fields to `k`.
    pub fn apply(self, k: &mut ApiKeyEntry) {
        set(&mut k.name, self.name);
        set(&mut k.owner, self.owner);
        set(&mut k.apis, self.apis);
        set(&mut k.subtree_roots, self.subtree_roots);
        set(&mut k.cultures, self.cultures.map(lower));
        set(&mut k.preview, self.preview);
        set(&mut k.acts_as, self.acts_as);
        set(&mut k.rate_limit_rps, self.rate_limit_rps);
        set(&mut k.expires_at, self.expires_at);
    }
}

impl RotateKey {
    pub fn check(&self) -> Result<(), AdminError> {
        if self.overlap_seconds > MAX_OVERLAP_SECONDS {
            return Err(AdminError::invalid(
                "overlap_seconds",
                format!("must be at most {MAX_OVERLAP_SECONDS} (30 days)"),
            ));
        }
        Ok(())
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

fn lower(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|c| c.to_ascii_lowercase()).collect()
}

pub(super) fn check_label(field: &str, v: &str) -> Result<(), AdminError> {
    if v.trim().is_empty() || v.chars().count() > MAX_LABEL || v.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            field,
            format!("must be 1-{MAX_LABEL} characters without control characters"),
        ));
    }
    Ok(())
}

fn check_apis(apis: &[Api]) -> Result<(), AdminError> {
    if apis.is_empty() {
        return Err(AdminError::invalid("apis", "must name at least one api"));
    }
    for (i, a) in apis.iter().enumerate() {
        if apis[..i].contains(a) {
            return Err(AdminError::invalid(
                &format!("apis[{i}]"),
                format!("`{}` is repeated", a.as_str()),
            ));
        }
    }
    Ok(())
}

/// A culture as Umbraco names one (`en-us`, `da-dk`, `de`): letters, digits and hyphens.
pub(super) fn culture_ok(c: &str) -> bool {
    let mut parts = c.split('-');
    let first = parts.next().unwrap_or_default();
    (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

async fn check_scope(
    store: &dyn PolicyStore,
    roots: &[Uuid],
    cultures: &[String],
    acts_as: &Option<String>,
) -> Result<(), AdminError> {
    for (i, c) in cultures.iter().enumerate() {
        if !culture_ok(c) {
            return Err(AdminError::invalid(
                &format!("cultures[{i}]"),
                format!("`{c}` is not a culture code such as `en-us`"),
            ));
        }
    }
    for (i, r) in roots.iter().enumerate() {
        match store.node(*r).await? {
            Some(n) if n.kind == crate::authz::NodeKind::Document && !n.trashed => {}
            Some(_) => {
                return Err(AdminError::invalid(
                    &format!("subtree_roots[{i}]"),
                    format!("`{r}` is not a document outside the recycle bin"),
                ))
            }
            None => {
                return Err(AdminError::invalid(
                    &format!("subtree_roots[{i}]"),
                    format!("no node `{r}`"),
                ))
            }
        }
    }
    if let Some(a) = acts_as {
        if store.user_by_external_id(a).await?.is_none() {
            return Err(AdminError::invalid(
                "acts_as",
                format!("`{a}` is not a registered user's external id"),
            ));
        }
    }
    Ok(())
}

fn check_rps(rps: Option<u32>) -> Result<(), AdminError> {
    if rps == Some(0) {
        return Err(AdminError::invalid("rate_limit_rps", "must be at least 1"));
    }
    Ok(())
}

fn check_expiry(at: Option<DateTime<Utc>>) -> Result<(), AdminError> {
    if at.is_some_and(|at| at <= Utc::now()) {
        return Err(AdminError::invalid("expires_at", "must be in the future"));
    }
    Ok(())
}
