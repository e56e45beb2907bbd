//! JWT validation rules (RFC 7519 + RFC 8725), independent of key fetching: structural checks,
//! our own decoding of the JOSE header (alg spelling, `crit`, `enc`, `typ`), issuer selection
//! by exact `iss`, and every claim check (in `claims`). Signatures are verified with `ring`
//! (`jwks::signature`); `jsonwebtoken` only names the algorithms (and signs in tests and `dev`).
//!
//! What `jsonwebtoken::decode` with default `Validation` does NOT check, and this module does:
//! `iss` (unchecked when absent, an array accepted if any member matches), `aud` when absent,
//! `nbf` (off by default), `iat` (never), `crit` (ignored), `typ` (ignored; here only `jwt` and
//! `at+jwt` pass, and an issuer's `token_types` can require one, RFC 9068), JWE detection,
//! size limits, strict base64url segments, key type vs `alg` per `kid` (our key sets are
//! typed), and its default leeway is 60 s (ours is configured, 30 s by default).

use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use std::str::FromStr;

use crate::authz::TokenProblem;

mod claims;

pub(crate) use claims::{check_claims, issuer_of, IssuerPolicy};

/// Largest token accepted (bytes).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token split and decoded, not yet verified.
pub(crate) struct Unverified<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// The `typ` header as a media type (lowercase, no `application/`), when present.
    pub typ: Option<String>,
    pub claims: Map<String, Value>,
    /// `header.payload`, the signed bytes.
    pub signing_input: &'a str,
    pub signature: &'a str,
}

fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode_json(segment: &str) -> Result<Map<String, Value>, TokenProblem> {
    if !is_b64url(segment) {
        return Err(TokenProblem::Malformed);
    }
    // Strict: no padding, canonical trailing bits; the decode error carries nothing we keep.
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment) else {
        return Err(TokenProblem::Malformed);
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenProblem::Malformed),
    }
}

/// Structural and header checks. Errors: `TooLarge`, `Encrypted` (5 segments or `enc`),
/// `Malformed`, `AlgNotAllowed` (`none` in any spelling, or an algorithm we do not know),
/// `UnsupportedCritical` (any `crit`: we understand no extensions).
pub(crate) fn split(token: &str) -> Result<Unverified<'_>, TokenProblem> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenProblem::TooLarge);
    }
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => return Err(TokenProblem::Encrypted),
        _ => return Err(TokenProblem::Malformed),
    }
    let header = decode_json(parts[0])?;
    if header.contains_key("enc") {
        return Err(TokenProblem::Encrypted);
    }
    let alg = match header.get("alg") {
        Some(Value::String(a)) if a.trim().eq_ignore_ascii_case("none") => {
            return Err(TokenProblem::AlgNotAllowed)
        }
        // Exact spelling only: `rs256` is not `RS256`.
        Some(Value::String(a)) => Algorithm::from_str(a)
            .ok()
            .ok_or(TokenProblem::AlgNotAllowed)?,
        _ => return Err(TokenProblem::Malformed),
    };
    match header.get("crit") {
        None => {}
        Some(Value::Array(_)) => return Err(TokenProblem::UnsupportedCritical),
        Some(_) => return Err(TokenProblem::Malformed),
    }
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(t)) => {
            let t = media_type(t);
            if t != "jwt" && t != "at+jwt" {
                return Err(TokenProblem::Malformed);
            }
            Some(t)
        }
        Some(_) => return Err(TokenProblem::Malformed),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(TokenProblem::Malformed),
    };
    // `jku`, `x5u`, `jwk` and `x5c` are deliberately ignored: keys come only from config.
    let claims = decode_json(parts[1])?;
    if !is_b64url(parts[2]) {
        return Err(TokenProblem::Malformed);
    }
    let signing_input = &token[..parts[0].len() + 1 + parts[1].len()];
    Ok(Unverified {
        alg,
        kid,
        typ,
        claims,
        signing_input,
        signature: parts[2],
    })
}

/// A JOSE `typ` value as a comparable media type: lowercase, `application/` removed (RFC 7515
/// §4.1.9 lets the prefix be omitted; media types compare case-insensitively).
pub(crate) fn media_type(t: &str) -> String {
    let t = t.trim().to_ascii_lowercase();
    match t.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => t,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn seg(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    pub(super) fn token(header: Value, claims: Value) -> String {
        format!("{}.{}.c2ln", seg(&header), seg(&claims))
    }

    #[test]
    fn alg_none_is_rejected_in_any_spelling() {
        for alg in ["none", "None", "NONE", "nOnE", " none"] {
            let t = token(json!({"alg": alg}), json!({}));
            assert!(
                matches!(split(&t), Err(TokenProblem::AlgNotAllowed)),
                "{alg}"
            );
        }
    }

    #[test]
    fn lowercase_algorithm_names_are_not_accepted() {
        let t = token(json!({"alg": "rs256"}), json!({}));
        assert!(matches!(split(&t), Err(TokenProblem::AlgNotAllowed)));
    }

    #[test]
    fn any_crit_header_is_rejected() {
        let t = token(
            json!({"alg": "RS256", "crit": ["exp"], "exp": 1}),
            json!({}),
        );
        assert!(matches!(split(&t), Err(TokenProblem::UnsupportedCritical)));
    }

    #[test]
    fn five_segments_or_enc_header_is_encrypted() {
        assert!(matches!(split("a.b.c.d.e"), Err(TokenProblem::Encrypted)));
        let t = token(json!({"alg": "RS256", "enc": "A256GCM"}), json!({}));
        assert!(matches!(split(&t), Err(TokenProblem::Encrypted)));
    }

    #[test]
    fn not_three_base64url_segments_is_malformed() {
        let good = token(json!({"alg": "RS256"}), json!({}));
        assert!(split(&good).is_ok());
        for bad in [
            "a.b",
            "a.b.c.d",
            &format!("{good}="),
            &good.replacen('.', ".+", 1),
            &format!("{}.", &good[..good.rfind('.').unwrap()]),
        ] {
            assert!(matches!(split(bad), Err(TokenProblem::Malformed)), "{bad}");
        }
    }

    #[test]
    fn oversized_token_is_rejected() {
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(split(&big), Err(TokenProblem::TooLarge)));
    }

    #[test]
    fn unexpected_typ_is_rejected_and_jwt_types_pass() {
        let bad = token(json!({"alg": "RS256", "typ": "logout+jwt"}), json!({}));
        assert!(matches!(split(&bad), Err(TokenProblem::Malformed)));
        for typ in ["JWT", "at+jwt", "application/at+JWT"] {
            assert!(split(&token(json!({"alg": "RS256", "typ": typ}), json!({}))).is_ok());
        }
    }

    proptest! {
        #[test]
        fn split_never_panics(s in "[A-Za-z0-9_.=+/-]{0,300}") {
            let _ = split(&s);
        }
    }
}
