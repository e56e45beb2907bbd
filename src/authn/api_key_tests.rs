//! API key tests: the format, generation, verification and the key scan (its linear form and
//! the position-based shape check, each against the earlier definition kept here as an oracle).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
use super::*;
use crate::authn::{ApiKeyScope, PrincipalKind, Subject};
use crate::request::Api;
use proptest::prelude::*;
use std::sync::Arc;

const PEPPER: &[u8] = b"test-pepper-test-pepper-test-pepper!";

/// A live, unexpired Delivery key's record for `k` (also used by the authenticator's tests).
pub(crate) fn record_for(k: &GeneratedKey) -> ApiKeyRecord {
    let scope = Arc::new(ApiKeyScope {
        key_id: k.key_id.clone(),
        name: "site".into(),
        apis: vec![Api::Delivery],
        subtree_roots: vec![],
        cultures: vec![],
        preview: false,
        acts_as: None,
        rate_limit_rps: None,
    });
    ApiKeyRecord {
        principal: crate::authn::key_principal(&scope),
        scope,
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
    assert_eq!(*principal.id, format!("key:{}", k.key_id));
    assert!(matches!(&principal.kind, PrincipalKind::ApiKey { key_id } if **key_id == k.key_id));
    assert!(matches!(&principal.subject, Subject::ApiKey(s) if s.key_id == k.key_id));
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
