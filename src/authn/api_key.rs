//! Portcullis API keys: the `pcl_<env>_<id>_<secret>` format, generation, peppered SHA-256
//! hashing and constant-time verification against a stored [`ApiKeyRecord`].
//!
//! The secret is 44 base62 characters (≈ 262 bits); the id (16 base62 characters) is the
//! lookup key in the store, so verification never scans. Only the hash is ever stored.

use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiKeyRecord, Principal, PrincipalKind, Subject};
use crate::authz::{DenyReason, TokenProblem};

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
) -> Result<Principal, DenyReason> {
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
    let key_id = &record.scope.key_id;
    let mut id = String::with_capacity(4 + key_id.len());
    id.push_str("key:");
    id.push_str(key_id);
    Ok(Principal {
        id,
        kind: PrincipalKind::ApiKey {
            key_id: record.scope.key_id.clone(),
        },
        subject: Subject::ApiKey(record.scope.clone()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::authn::ApiKeyScope;
    use crate::request::Api;
    use proptest::prelude::*;
    use std::sync::Arc;

    const PEPPER: &[u8] = b"test-pepper-test-pepper-test-pepper!";

    fn record_for(k: &GeneratedKey) -> ApiKeyRecord {
        ApiKeyRecord {
            scope: Arc::new(ApiKeyScope {
                key_id: k.key_id.clone(),
                name: "site".into(),
                apis: vec![Api::Delivery],
                subtree_roots: vec![],
                cultures: vec![],
                preview: false,
                acts_as: None,
                rate_limit_rps: None,
            }),
            hash: k.hash,
            owner: "web team".into(),
            expires_at: None,
            revoked: false,
            previous: None,
        }
    }

    #[test]
    fn generated_key_parses_back_to_its_id_and_verifies() {
        let k = generate("live", PEPPER).unwrap();
        assert!(k.full.starts_with("pcl_live_"));
        let p = parse(&k.full).unwrap();
        assert_eq!(p.key_id(), k.key_id);
        assert_eq!(hash_secret(PEPPER, p.secret()), k.hash);
        let principal = verify(&p, Some(&record_for(&k)), PEPPER, Utc::now()).unwrap();
        assert_eq!(principal.id, format!("key:{}", k.key_id));
        assert!(matches!(principal.subject, Subject::ApiKey(_)));
    }

    #[test]
    fn generated_secrets_are_distinct_and_long_enough() {
        let a = generate("dev", PEPPER).unwrap();
        let b = generate("dev", PEPPER).unwrap();
        assert_ne!(a.full, b.full);
        assert_ne!(a.key_id, b.key_id);
        // 44 base62 characters carry at least 256 bits.
        assert!((SECRET_LEN as f64) * 62f64.log2() >= 256.0);
    }

    #[test]
    fn generation_refuses_an_env_that_would_not_parse() {
        assert!(generate("Live_1", PEPPER).is_none());
        assert!(generate("", PEPPER).is_none());
    }

    #[test]
    fn a_new_secret_for_an_id_keeps_the_id_and_changes_the_hash() {
        let k = generate("live", PEPPER).unwrap();
        let r = generate_for("live", &k.key_id, PEPPER).unwrap();
        assert_eq!(r.key_id, k.key_id);
        assert_ne!(r.hash, k.hash);
        assert_eq!(parse(&r.full).unwrap().key_id(), k.key_id);
        assert!(generate_for("live", "short", PEPPER).is_none());
        assert!(generate_for("live", "AAAAAAAAAAAAAAA_", PEPPER).is_none());
    }

    #[test]
    fn unknown_key_id_is_rejected() {
        let k = generate("live", PEPPER).unwrap();
        let p = parse(&k.full).unwrap();
        assert_eq!(
            verify(&p, None, PEPPER, Utc::now()),
            Err(DenyReason::InvalidToken(TokenProblem::UnknownApiKey))
        );
    }

    #[test]
    fn wrong_secret_is_rejected_as_unknown() {
        let k = generate("live", PEPPER).unwrap();
        let other = generate("live", PEPPER).unwrap();
        let forged = format!(
            "pcl_live_{}_{}",
            k.key_id,
            &other.full[other.full.len() - 44..]
        );
        let p = parse(&forged).unwrap();
        assert_eq!(
            verify(&p, Some(&record_for(&k)), PEPPER, Utc::now()),
            Err(DenyReason::InvalidToken(TokenProblem::UnknownApiKey))
        );
    }

    #[test]
    fn wrong_pepper_fails_verification() {
        let k = generate("live", PEPPER).unwrap();
        let p = parse(&k.full).unwrap();
        assert!(verify(&p, Some(&record_for(&k)), b"other pepper", Utc::now()).is_err());
    }

    #[test]
    fn revoked_key_is_rejected() {
        let k = generate("live", PEPPER).unwrap();
        let mut r = record_for(&k);
        r.revoked = true;
        let p = parse(&k.full).unwrap();
        assert_eq!(
            verify(&p, Some(&r), PEPPER, Utc::now()),
            Err(DenyReason::InvalidToken(TokenProblem::Revoked))
        );
    }

    #[test]
    fn expired_key_is_rejected_and_unexpired_key_passes() {
        let k = generate("live", PEPPER).unwrap();
        let p = parse(&k.full).unwrap();
        let now = Utc::now();
        let mut r = record_for(&k);
        r.expires_at = Some(now);
        assert_eq!(
            verify(&p, Some(&r), PEPPER, now),
            Err(DenyReason::InvalidToken(TokenProblem::Expired))
        );
        r.expires_at = Some(now + chrono::Duration::seconds(60));
        assert!(verify(&p, Some(&r), PEPPER, now).is_ok());
    }

    #[test]
    fn a_rotated_out_secret_works_until_its_overlap_ends_and_then_is_expired() {
        let old = generate("live", PEPPER).unwrap();
        let new_secret = generate("live", PEPPER).unwrap();
        let now = Utc::now();
        // Rotation keeps the id: the record's current hash is the new secret's.
        let mut r = record_for(&old);
        r.hash = new_secret.hash;
        r.previous = Some(super::super::PreviousSecret {
            hash: old.hash,
            expires_at: now + chrono::Duration::seconds(60),
        });
        let new_full = format!(
            "pcl_live_{}_{}",
            old.key_id,
            &new_secret.full[new_secret.full.len() - SECRET_LEN..]
        );
        let presented_old = parse(&old.full).unwrap();
        let presented_new = parse(&new_full).unwrap();
        assert!(verify(&presented_old, Some(&r), PEPPER, now).is_ok());
        assert!(verify(&presented_new, Some(&r), PEPPER, now).is_ok());
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(
            verify(&presented_old, Some(&r), PEPPER, later),
            Err(DenyReason::InvalidToken(TokenProblem::Expired))
        );
        assert!(verify(&presented_new, Some(&r), PEPPER, later).is_ok());
        r.revoked = true;
        assert_eq!(
            verify(&presented_old, Some(&r), PEPPER, now),
            Err(DenyReason::InvalidToken(TokenProblem::Revoked))
        );
    }

    #[test]
    fn record_for_another_id_is_rejected() {
        let k = generate("live", PEPPER).unwrap();
        let mut r = record_for(&k);
        Arc::make_mut(&mut r.scope).key_id = "AAAAAAAAAAAAAAAA".into();
        let p = parse(&k.full).unwrap();
        assert!(verify(&p, Some(&r), PEPPER, Utc::now()).is_err());
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let k = generate("live", PEPPER).unwrap();
        assert!(parse(&k.full[..k.full.len() - 1]).is_none());
        assert!(parse(&format!("{}x", k.full)).is_none());
        assert!(parse(&k.full.replacen("pcl_", "PCL_", 1)).is_none());
        assert!(parse(&format!("{}_extra", k.full)).is_none());
        assert!(parse(&k.full.replace("live", "Live")).is_none());
        assert!(parse("pcl___").is_none());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let k = generate("live", PEPPER).unwrap();
        let p = parse(&k.full).unwrap();
        assert!(!format!("{p:?}").contains(p.secret()));
        assert!(!format!("{k:?}").contains(&k.full));
    }

    #[test]
    fn contains_key_finds_a_key_inside_text() {
        let k = generate("live", PEPPER).unwrap();
        assert!(contains_key(&format!("x={}&y", k.full)));
        assert!(!contains_key("pcl_live_short"));
    }

    #[test]
    fn keys_are_found_in_header_bytes_that_are_not_utf8() {
        let k = generate("live", PEPPER).unwrap();
        let mut v = b"a=\xff\xfe".to_vec();
        v.extend_from_slice(k.full.as_bytes());
        v.push(0xc3);
        assert!(bytes_contain_key(&v));
        // The same answer as on the lossy text (each invalid byte a U+FFFD, also a separator).
        assert!(contains_key(&String::from_utf8_lossy(&v)));
        // A non-ASCII byte inside the key ends its run: no key.
        let mut broken = k.full.clone().into_bytes();
        broken.insert(30, 0x80);
        assert!(!bytes_contain_key(&broken));
        assert!(!contains_key(&String::from_utf8_lossy(&broken)));
    }

    /// The earlier, quadratic scan: every `pcl_` occurrence parsed to the end of its run.
    fn contains_key_by_every_prefix(s: &str) -> bool {
        s.match_indices(PREFIX).any(|(i, _)| {
            let tail = &s[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            parse(&tail[..end]).is_some()
        })
    }

    /// The earlier definition of the key shape: split on `_` into exactly three parts.
    fn key_parts_by_split(s: &str) -> Option<(&str, &str, &str)> {
        let mut parts = s.strip_prefix(PREFIX)?.split('_');
        let (env, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
        let exact = parts.next().is_none()
            && env_is_valid(env)
            && id.len() == ID_LEN
            && is_base62(id)
            && secret.len() == SECRET_LEN
            && is_base62(secret);
        exact.then_some((env, id, secret))
    }

    #[test]
    fn every_one_character_change_to_a_key_is_judged_as_the_split_definition_judges_it() {
        let key = generate("live", PEPPER).unwrap().full;
        let chars: Vec<char> = key.chars().collect();
        let mut variants = vec![key.clone(), format!("{key}a"), format!("x{key}")];
        for i in 0..chars.len() {
            for c in ['_', 'a', 'Z', '0', '-', '\u{e9}'] {
                let mut v = chars.clone();
                v[i] = c;
                variants.push(v.iter().collect());
            }
            let mut shorter = chars.clone();
            shorter.remove(i);
            variants.push(shorter.iter().collect());
            let mut longer = chars.clone();
            longer.insert(i, 'a');
            variants.push(longer.iter().collect());
        }
        let mut accepted = 0;
        for v in &variants {
            assert_eq!(key_parts(v), key_parts_by_split(v), "{v}");
            accepted += usize::from(key_parts(v).is_some());
        }
        // Changing a letter of env, id or secret to another valid one keeps a key.
        assert!(accepted > chars.len(), "{accepted}");
    }

    proptest! {
        #[test]
        fn key_parts_by_position_agree_with_the_split_definition(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("pcl_".to_owned()), Just("_".to_owned()), Just("live".to_owned()),
                    Just("é".to_owned()), "[a-z0-9]{0,17}", "[A-Za-z0-9_]{1,3}",
                    Just("0123456789ABCDEF".to_owned()),
                    Just("abcdefghijABCDEFGHIJabcdefghijABCDEFGHIJabcd".to_owned()),
                ],
                0..8,
            ),
        ) {
            let s = parts.concat();
            prop_assert_eq!(key_parts(&s), key_parts_by_split(&s), "{}", s);
            let key = generate("live", PEPPER).unwrap().full;
            prop_assert_eq!(key_parts(&key), key_parts_by_split(&key));
            prop_assert!(key_parts(&key).is_some());
        }

        #[test]
        fn the_linear_scan_finds_exactly_what_every_prefix_parse_finds(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("pcl_".to_owned()), Just("_".to_owned()), Just("live".to_owned()),
                    Just("&".to_owned()), Just("é".to_owned()),
                    "[A-Za-z0-9]{1,3}", Just("0123456789ABCDEF".to_owned()),
                    Just("abcdefghijABCDEFGHIJabcdefghijABCDEFGHIJabcd".to_owned()),
                ],
                0..14,
            ),
            key in proptest::bool::ANY,
        ) {
            let mut s = parts.concat();
            if key {
                s.push_str(&generate("live", PEPPER).unwrap().full);
            }
            prop_assert_eq!(contains_key(&s), contains_key_by_every_prefix(&s), "{}", s);
        }

        #[test]
        fn parse_never_panics_and_accepts_only_the_exact_shape(s in ".{0,120}") {
            if let Some(p) = parse(&s) {
                prop_assert_eq!(s, format!("pcl_{}_{}_{}", p.env(), p.key_id(), p.secret()));
            }
        }
    }
}
