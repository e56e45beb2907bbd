//! Portcullis API keys: the `pcl_<env>_<id>_<secret>` format, generation, peppered SHA-256
//! hashing and constant-time verification against a stored [`ApiKeyRecord`].
//!
//! The secret is 44 base62 characters (≈ 262 bits); the id (16 base62 characters) is the
//! lookup key in the store, so verification never scans. Only the hash is ever stored.

use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiKeyRecord, Principal};
use crate::authz::{DenyReason, TokenProblem};
use std::sync::Arc;

/// The visible prefix that makes leaked keys recognisable by secret scanners.
pub const PREFIX: &str = "pcl_";
/// Length of the public key id (base62).
pub const ID_LEN: usize = 16;
/// Length of the secret (base62): 44 × log2(62) ≈ 262 bits.
pub const SECRET_LEN: usize = 44;
/// Longest accepted `<env>` segment.
pub const MAX_ENV_LEN: usize = 16;

/// A key as presented by a client, split into its parts. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedKey {
    /// The whole key as presented (one allocation; the parts are ranges of it).
    full: String,
    /// Where the `_` after `<env>` is.
    env_end: usize,
}

impl PresentedKey {
    /// The `<env>` part.
    pub fn env(&self) -> &str {
        &self.full[PREFIX.len()..self.env_end]
    }

    /// The public id used to look the record up.
    pub fn key_id(&self) -> &str {
        &self.full[self.env_end + 1..self.env_end + 1 + ID_LEN]
    }

    /// The secret part (only for hashing; never log it).
    pub fn secret(&self) -> &str {
        &self.full[self.full.len() - SECRET_LEN..]
    }
}

impl std::fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedKey")
            .field("env", &self.env())
            .field("key_id", &self.key_id())
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A freshly generated key: `full` is shown to its owner once; store `key_id` and `hash`.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    pub full: String,
    pub key_id: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key_id", &self.key_id)
            .field("full", &"[redacted]")
            .finish()
    }
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn env_is_valid(env: &str) -> bool {
    !env.is_empty()
        && env.len() <= MAX_ENV_LEN
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Generates a new key for `env` from the OS random source. Returns the full key (show once),
/// its id and `SHA-256(pepper || secret)`. Panics never; `env` must be `[a-z0-9]{1,16}`
/// (validated by config), otherwise the key would not parse back and `None` is returned.
pub fn generate(env: &str, pepper: &[u8]) -> Option<GeneratedKey> {
    // Alphanumeric samples uniformly from the 62 characters (rejection sampling).
    let key_id = Alphanumeric.sample_string(&mut rand::rngs::OsRng, ID_LEN);
    generate_for(env, &key_id, pepper)
}

/// A new secret for the existing key `key_id` (rotation keeps the id); `None` when `env` or
/// `key_id` would not parse back.
pub fn generate_for(env: &str, key_id: &str, pepper: &[u8]) -> Option<GeneratedKey> {
    if !env_is_valid(env) || key_id.len() != ID_LEN || !is_base62(key_id) {
        return None;
    }
    let key_id = key_id.to_owned();
    let secret = Alphanumeric.sample_string(&mut rand::rngs::OsRng, SECRET_LEN);
    let hash = hash_secret(pepper, &secret);
    Some(GeneratedKey {
        full: format!("{PREFIX}{env}_{key_id}_{secret}"),
        key_id,
        hash,
    })
}

/// Splits a presented string into a key, or `None` when it is not exactly a Portcullis key.
pub fn parse(s: &str) -> Option<PresentedKey> {
    let (env, _, _) = key_parts(s)?;
    Some(PresentedKey {
        full: s.to_owned(),
        env_end: PREFIX.len() + env.len(),
    })
}

/// The `env`, id and secret of a string that is exactly a key, borrowed from it. The id and
/// secret have fixed lengths, so the length alone places the two `_` after the prefix; the
/// parts' alphabets (none has `_`) then make it exactly three parts.
fn key_parts(s: &str) -> Option<(&str, &str, &str)> {
    let b = s.as_bytes();
    let env_len = b
        .len()
        .checked_sub(PREFIX.len() + ID_LEN + SECRET_LEN + 2)?;
    let env_end = PREFIX.len() + env_len;
    let id_end = env_end + 1 + ID_LEN;
    // `_` is ASCII, so both are char boundaries and the slices below cannot panic.
    if !b.starts_with(PREFIX.as_bytes()) || b[env_end] != b'_' || b[id_end] != b'_' {
        return None;
    }
    let (env, id, secret) = (
        &s[PREFIX.len()..env_end],
        &s[env_end + 1..id_end],
        &s[id_end + 1..],
    );
    (env_is_valid(env) && is_base62(id) && is_base62(secret)).then_some((env, id, secret))
}

/// Whether `s` contains something shaped like a Portcullis key (used to refuse keys in URLs
/// and to keep them out of forwarded headers): a `pcl_…` that runs to the end of a run of
/// `[A-Za-z0-9_]`. Linear in `s`: every byte is looked at a bounded number of times, and text
/// without `pcl_` anywhere (every ordinary header) costs one vectorised substring search.
pub fn contains_key(s: &str) -> bool {
    bytes_contain_key(s.as_bytes())
}

/// [`contains_key`] over raw bytes (a header value, UTF-8 or not): a byte outside
/// `[A-Za-z0-9_]`, ASCII or not, ends a run either way, so no text conversion is needed, and
/// every run is ASCII. Nothing is allocated.
pub fn bytes_contain_key(s: &[u8]) -> bool {
    if memchr::memmem::find(s, PREFIX.as_bytes()).is_none() {
        return false;
    }
    s.split(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .any(ends_in_key)
}

/// Whether a run of `[A-Za-z0-9_]` ends in a key. A key has exactly three `_`
/// (`pcl_<env>_<id>_<secret>`, none inside env, id or secret), so the only suffix that can be
/// one starts three bytes before the run's third-last `_`: one parse per run.
fn ends_in_key(run: &[u8]) -> bool {
    let third_last = (0..3).try_fold(run.len(), |end, _| memchr::memrchr(b'_', &run[..end]));
    let Some(third_last) = third_last else {
        return false;
    };
    third_last
        .checked_sub(PREFIX.len() - 1)
        .and_then(|start| std::str::from_utf8(&run[start..]).ok())
        .is_some_and(|tail| key_parts(tail).is_some())
}

/// `SHA-256(pepper || secret)`: the only form in which a secret is stored.
pub fn hash_secret(pepper: &[u8], secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(pepper);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Checks a presented key against the record the store returned for its id (`None` when the
/// id is unknown). The hash is compared in constant time and first, so a caller without the
/// secret learns nothing about the key's state. After a rotation the previous secret is also
/// accepted until its overlap window ends (then it is `Expired`). Returns the key's principal
/// or `InvalidToken(UnknownApiKey | Revoked | Expired)`.
pub fn verify(
    presented: &PresentedKey,
    record: Option<&ApiKeyRecord>,
    pepper: &[u8],
    now: DateTime<Utc>,
) -> Result<Arc<Principal>, DenyReason> {
    let unknown = DenyReason::InvalidToken(TokenProblem::UnknownApiKey);
    let Some(record) = record else {
        return Err(unknown);
    };
    let hash = hash_secret(pepper, presented.secret());
    let current: bool = hash.ct_eq(&record.hash).into();
    let previous = record
        .previous
        .as_ref()
        .filter(|p| bool::from(hash.ct_eq(&p.hash)));
    if !(current || previous.is_some()) || record.scope.key_id != presented.key_id() {
        return Err(unknown);
    }
    if record.revoked {
        return Err(DenyReason::InvalidToken(TokenProblem::Revoked));
    }
    let overlap_over = !current && previous.is_some_and(|p| p.expires_at <= now);
    if overlap_over || record.expires_at.is_some_and(|at| at <= now) {
        return Err(DenyReason::InvalidToken(TokenProblem::Expired));
    }
    Ok(record.principal.clone())
}

#[cfg(test)]
#[path = "api_key_tests.rs"]
pub(crate) mod tests;
