//! Key sets: a JWKS parsed into verification keys typed by algorithm family and curve, and
//! the choice of a set's key for a token's `kid` and `alg`.

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;

use super::signature::{unsigned, VerifyKey};
use crate::authn::AuthnError;

/// Smallest RSA modulus accepted (RFC 7518 §3.3: 2048 bits or larger).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// The key type a verification key is, which fixes the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
    Hmac,
}

impl KeyKind {
    /// Whether this key type is the one `alg` requires (RFC 8725 §3.1: no cross-type use).
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::EcP256 => alg == ES256,
            KeyKind::EcP384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
            KeyKind::Hmac => matches!(alg, HS256 | HS384 | HS512),
        }
    }
}

/// One verification key from a set.
#[derive(Clone)]
pub(crate) struct KeyEntry {
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The JWK's own `alg`, when it pins one.
    pub alg: Option<String>,
    pub key: Arc<VerifyKey>,
}

/// An issuer's current keys and when they were obtained.
pub(crate) struct KeySet {
    pub keys: Vec<KeyEntry>,
    pub fetched_at: Instant,
}

/// What a key lookup found.
pub(crate) enum Lookup<'a> {
    Found(&'a KeyEntry),
    /// The `kid` exists but its key type or pinned `alg` does not fit the token's `alg`.
    WrongType,
    NotFound,
}

impl KeySet {
    /// Picks the key for `kid` + `alg`. Without a `kid`, the set's only fitting key is used.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let fits =
            |k: &KeyEntry| k.kind.fits(alg) && k.alg.as_deref().is_none_or(|a| a == alg_name(alg));
        match kid {
            Some(kid) => {
                let mut same_kid = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
                let first = same_kid.clone().next();
                match same_kid.find(|k| fits(k)) {
                    Some(k) => Lookup::Found(k),
                    None if first.is_some() => Lookup::WrongType,
                    None => Lookup::NotFound,
                }
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| fits(k));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Lookup::Found(k),
                    _ => Lookup::NotFound,
                }
            }
        }
    }
}

/// The JOSE name of an algorithm (`RS256`, `EdDSA`, …).
pub(crate) fn alg_name(alg: Algorithm) -> &'static str {
    use Algorithm::*;
    match alg {
        HS256 => "HS256",
        HS384 => "HS384",
        HS512 => "HS512",
        ES256 => "ES256",
        ES384 => "ES384",
        RS256 => "RS256",
        RS384 => "RS384",
        RS512 => "RS512",
        PS256 => "PS256",
        PS384 => "PS384",
        PS512 => "PS512",
        EdDSA => "EdDSA",
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

/// Turns one JWK into a key, or `None` for keys we cannot or must not use (encryption keys,
/// symmetric keys in a public set, unknown curves, short RSA moduli, malformed parameters).
fn entry(raw: RawJwk) -> Option<KeyEntry> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let (kind, key) = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => {
            let (n, e) = (unsigned(&b64(&raw.n?)?), unsigned(&b64(&raw.e?)?));
            if n.len() < MIN_RSA_MODULUS_BYTES || e.is_empty() {
                return None;
            }
            (KeyKind::Rsa, VerifyKey::Rsa { n, e })
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let (x, y) = (b64(&raw.x?)?, b64(&raw.y?)?);
            let size = if crv == "P-256" { 32 } else { 48 };
            if x.len() != size || y.len() != size {
                return None;
            }
            let kind = if crv == "P-256" {
                KeyKind::EcP256
            } else {
                KeyKind::EcP384
            };
            (kind, VerifyKey::ec(&x, &y))
        }
        ("OKP", Some("Ed25519")) => {
            let x = b64(&raw.x?)?;
            if x.len() != 32 {
                return None;
            }
            (KeyKind::Ed25519, VerifyKey::Ed25519(x))
        }
        // Symmetric ("oct") keys are never taken from a fetched set.
        _ => return None,
    };
    Some(KeyEntry {
        kid: raw.kid,
        kind,
        alg: raw.alg,
        key: Arc::new(key),
    })
}

/// Parses a JWKS document. Unusable keys are skipped; a set with no usable key is an error
/// (so a refresh that returns one keeps the previous set).
pub(crate) fn parse_jwks(bytes: &[u8], url: &str) -> Result<KeySet, AuthnError> {
    let raw: RawSet = serde_json::from_slice(bytes).map_err(|source| AuthnError::Json {
        url: url.to_owned(),
        source,
    })?;
    let keys: Vec<KeyEntry> = raw
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<RawJwk>(v).ok())
        .filter_map(entry)
        .collect();
    if keys.is_empty() {
        return Err(AuthnError::NoUsableKeys {
            url: url.to_owned(),
        });
    }
    Ok(KeySet {
        keys,
        fetched_at: Instant::now(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::authn::testing::{ec_jwk, idp};

    #[test]
    fn rsa_and_ec_keys_are_typed_and_selected_by_kid_and_alg() {
        let jwks = idp().jwks(&["rsa-a", "ec-a"]);
        let set = parse_jwks(jwks.as_bytes(), "t").unwrap();
        assert_eq!(set.keys.len(), 2);
        assert!(
            matches!(set.select(Some("rsa-a"), Algorithm::RS256), Lookup::Found(k) if k.kind == KeyKind::Rsa)
        );
        assert!(matches!(
            set.select(Some("rsa-a"), Algorithm::PS384),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.select(Some("ec-a"), Algorithm::ES256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.select(Some("rsa-a"), Algorithm::ES256),
            Lookup::WrongType
        ));
        assert!(matches!(
            set.select(Some("ec-a"), Algorithm::ES384),
            Lookup::WrongType
        ));
        assert!(matches!(
            set.select(Some("nope"), Algorithm::RS256),
            Lookup::NotFound
        ));
    }

    #[test]
    fn encryption_keys_symmetric_keys_and_short_rsa_keys_are_skipped() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256", "x": ec_jwk()["x"], "y": ec_jwk()["y"]},
        ]});
        assert!(parse_jwks(doc.to_string().as_bytes(), "t").is_err());
    }

    #[test]
    fn a_jwk_pinned_alg_must_match_the_token_alg() {
        let mut jwk = idp().rsa_jwk("rsa-a");
        jwk["alg"] = "RS256".into();
        let doc = serde_json::json!({ "keys": [jwk] });
        let set = parse_jwks(doc.to_string().as_bytes(), "t").unwrap();
        assert!(matches!(
            set.select(Some("rsa-a"), Algorithm::RS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.select(Some("rsa-a"), Algorithm::PS256),
            Lookup::WrongType
        ));
    }

    #[test]
    fn a_jwk_modulus_with_a_leading_zero_byte_still_verifies() {
        // RFC 7518 §6.3.1.1 forbids the zero, some issuers send it, and ring rejects a modulus
        // that has one: the parsed key drops it.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut jwk = idp().rsa_jwk("rsa-a");
        let mut n = vec![0u8];
        n.extend(b64.decode(jwk["n"].as_str().unwrap()).unwrap());
        jwk["n"] = b64.encode(&n).into();
        let doc = serde_json::json!({ "keys": [jwk] });
        let set = parse_jwks(doc.to_string().as_bytes(), "t").unwrap();
        let Lookup::Found(key) = set.select(Some("rsa-a"), Algorithm::RS256) else {
            panic!("key not found")
        };
        let token = idp().mint("rsa-a", Algorithm::RS256, &serde_json::json!({"sub": "a"}));
        let (input, signature) = token.rsplit_once('.').unwrap();
        assert!(key
            .key
            .verify(Algorithm::RS256, input.as_bytes(), signature));
        assert!(!key.key.verify(Algorithm::RS256, b"x.y", signature));
    }

    #[test]
    fn without_kid_only_a_single_fitting_key_is_used() {
        let one = parse_jwks(idp().jwks(&["rsa-a", "ec-a"]).as_bytes(), "t").unwrap();
        assert!(matches!(
            one.select(None, Algorithm::RS256),
            Lookup::Found(_)
        ));
        let two = parse_jwks(idp().jwks(&["rsa-a", "rsa-b"]).as_bytes(), "t").unwrap();
        assert!(matches!(
            two.select(None, Algorithm::RS256),
            Lookup::NotFound
        ));
    }
}
