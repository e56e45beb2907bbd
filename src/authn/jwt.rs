//! JWT validation rules (RFC 7519 + RFC 8725), independent of key fetching: structural checks,
//! our own decoding of the JOSE header (alg spelling, `crit`, `enc`, `typ`), issuer selection
//! by exact `iss`, and every claim check. `jsonwebtoken` is used only to verify signatures.
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
use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use super::config::{IssuerConfig, SubjectKind};
use super::{Principal, PrincipalKind, Subject};
use crate::authz::TokenProblem;

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

/// An issuer's claim rules, compiled from its config.
pub(crate) struct IssuerPolicy {
    pub name: Arc<str>,
    pub issuer: String,
    pub algorithms: Vec<Algorithm>,
    token_types: Vec<String>,
    audiences: HashSet<String>,
    leeway_secs: f64,
    required_claims: Vec<String>,
    subject_claim: String,
    subject: SubjectKind,
    groups_claim: Option<String>,
    group_map: std::collections::BTreeMap<String, String>,
}

impl IssuerPolicy {
    /// Compiles a validated issuer config (unknown algorithm names were refused by validate).
    pub(crate) fn new(cfg: &IssuerConfig) -> Self {
        IssuerPolicy {
            name: Arc::from(cfg.name.as_str()),
            issuer: cfg.issuer.clone(),
            algorithms: cfg
                .algorithms
                .iter()
                .filter_map(|a| Algorithm::from_str(a).ok())
                .collect(),
            token_types: cfg.token_types.iter().map(|t| media_type(t)).collect(),
            audiences: cfg.audiences.iter().cloned().collect(),
            leeway_secs: cfg.leeway.as_secs_f64(),
            required_claims: cfg.required_claims.clone(),
            subject_claim: cfg.subject_claim.clone(),
            subject: cfg.subject,
            groups_claim: cfg.groups_claim.clone(),
            group_map: cfg.group_map.clone(),
        }
    }
}

impl IssuerPolicy {
    /// Whether a token of JOSE type `typ` (from [`split`]) is one this issuer accepts:
    /// `token_types` empty accepts any; otherwise `typ` must be present and listed
    /// (`WrongType`).
    pub(crate) fn check_type(&self, typ: Option<&str>) -> Result<(), TokenProblem> {
        let ok = self.token_types.is_empty()
            || typ.is_some_and(|t| self.token_types.iter().any(|w| w == t));
        if ok {
            Ok(())
        } else {
            Err(TokenProblem::WrongType)
        }
    }
}

/// The unverified `iss`: must be a single string (an array is `WrongIssuer`).
pub(crate) fn issuer_of(claims: &Map<String, Value>) -> Result<&str, TokenProblem> {
    match claims.get("iss") {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(TokenProblem::MissingClaim),
        Some(_) => Err(TokenProblem::WrongIssuer),
    }
}

fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, TokenProblem> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(TokenProblem::Malformed),
    }
}

/// A token whose claims passed: the principal and its expiry (unix seconds).
pub(crate) struct Accepted {
    pub principal: Principal,
    pub exp: i64,
}

/// Checks every claim of a signature-verified token against `policy` at `now` (unix secs).
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    policy: &IssuerPolicy,
    now: i64,
) -> Result<Accepted, TokenProblem> {
    let now = now as f64;
    let leeway = policy.leeway_secs;
    if issuer_of(claims)? != policy.issuer {
        return Err(TokenProblem::WrongIssuer);
    }
    let exp = numeric(claims, "exp")?.ok_or(TokenProblem::MissingClaim)?;
    if exp + leeway <= now {
        return Err(TokenProblem::Expired);
    }
    if numeric(claims, "nbf")?.is_some_and(|nbf| nbf > now + leeway) {
        return Err(TokenProblem::NotYetValid);
    }
    if numeric(claims, "iat")?.is_some_and(|iat| iat > now + leeway) {
        return Err(TokenProblem::IssuedInFuture);
    }
    let aud_ok = match claims.get("aud") {
        None | Some(Value::Null) => return Err(TokenProblem::MissingClaim),
        Some(Value::String(a)) => policy.audiences.contains(a),
        Some(Value::Array(items)) => items
            .iter()
            .any(|a| a.as_str().is_some_and(|a| policy.audiences.contains(a))),
        Some(_) => return Err(TokenProblem::Malformed),
    };
    if !aud_ok {
        return Err(TokenProblem::WrongAudience);
    }
    for name in &policy.required_claims {
        if claims.get(name).is_none_or(Value::is_null) {
            return Err(TokenProblem::MissingClaim);
        }
    }
    let subject_id = match claims.get(&policy.subject_claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(TokenProblem::MissingClaim),
    };
    let groups = raw_groups(claims, policy.groups_claim.as_deref());
    let subject = match policy.subject {
        SubjectKind::User => {
            let mapped: BTreeSet<String> = groups
                .iter()
                .filter_map(|g| policy.group_map.get(g).cloned())
                .collect();
            Subject::User {
                external_id: subject_id.clone(),
                mapped_groups: mapped.into_iter().collect(),
                idp_groups: groups,
            }
        }
        SubjectKind::Member => Subject::Member {
            username: subject_id.clone(),
            groups,
        },
    };
    Ok(Accepted {
        principal: Principal {
            id: format!("jwt:{}#{}", policy.name, subject_id),
            kind: PrincipalKind::Jwt {
                issuer: policy.name.clone(),
            },
            subject,
        },
        exp: exp.floor() as i64,
    })
}

fn raw_groups(claims: &Map<String, Value>, claim: Option<&str>) -> Vec<String> {
    match claim.and_then(|c| claims.get(c)) {
        Some(Value::String(g)) => vec![g.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
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

    fn token(header: Value, claims: Value) -> String {
        format!("{}.{}.c2ln", seg(&header), seg(&claims))
    }

    fn policy() -> IssuerPolicy {
        let mut cfg = IssuerConfig {
            name: "idp".into(),
            issuer: "https://idp.test".into(),
            audiences: vec!["api".into()],
            groups_claim: Some("groups".into()),
            ..IssuerConfig::default()
        };
        cfg.group_map.insert("g-editors".into(), "editor".into());
        IssuerPolicy::new(&cfg)
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({"iss": "https://idp.test", "aud": "api", "sub": "u1", "exp": 2000});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base.as_object().unwrap().clone()
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

    #[test]
    fn an_issuer_with_token_types_accepts_only_those_types_and_empty_accepts_any() {
        let typ_of = |typ: Option<&str>| {
            let header = match typ {
                Some(t) => json!({"alg": "RS256", "typ": t}),
                None => json!({"alg": "RS256"}),
            };
            split(&token(header, json!({}))).unwrap().typ
        };
        let strict = IssuerPolicy::new(&IssuerConfig {
            token_types: vec!["at+jwt".into()],
            ..IssuerConfig::default()
        });
        for ok in ["at+jwt", "AT+JWT", "application/at+jwt"] {
            assert!(
                strict.check_type(typ_of(Some(ok)).as_deref()).is_ok(),
                "{ok}"
            );
        }
        for bad in [Some("JWT"), None] {
            assert!(
                matches!(
                    strict.check_type(typ_of(bad).as_deref()),
                    Err(TokenProblem::WrongType)
                ),
                "{bad:?}"
            );
        }
        let any = policy();
        for t in [Some("JWT"), Some("at+jwt"), None] {
            assert!(any.check_type(typ_of(t).as_deref()).is_ok(), "{t:?}");
        }
    }

    #[test]
    fn expired_token_is_rejected_beyond_leeway_only() {
        let p = policy();
        assert!(check_claims(&claims(json!({"exp": 1000})), &p, 1029).is_ok());
        assert!(matches!(
            check_claims(&claims(json!({"exp": 1000})), &p, 1031),
            Err(TokenProblem::Expired)
        ));
    }

    #[test]
    fn missing_exp_is_rejected() {
        let mut c = claims(json!({}));
        c.remove("exp");
        assert!(matches!(
            check_claims(&c, &policy(), 1000),
            Err(TokenProblem::MissingClaim)
        ));
    }

    #[test]
    fn nbf_in_the_future_beyond_leeway_is_rejected() {
        let p = policy();
        assert!(check_claims(&claims(json!({"nbf": 1020})), &p, 1000).is_ok());
        assert!(matches!(
            check_claims(&claims(json!({"nbf": 1031})), &p, 1000),
            Err(TokenProblem::NotYetValid)
        ));
    }

    #[test]
    fn iat_in_the_future_beyond_leeway_is_rejected() {
        assert!(matches!(
            check_claims(&claims(json!({"iat": 1100})), &policy(), 1000),
            Err(TokenProblem::IssuedInFuture)
        ));
    }

    #[test]
    fn issuer_array_is_rejected_even_if_it_contains_the_issuer() {
        let c = claims(json!({"iss": ["https://idp.test"]}));
        assert!(matches!(issuer_of(&c), Err(TokenProblem::WrongIssuer)));
        assert!(matches!(
            check_claims(&c, &policy(), 1000),
            Err(TokenProblem::WrongIssuer)
        ));
    }

    #[test]
    fn audience_must_contain_a_configured_audience() {
        let p = policy();
        assert!(check_claims(&claims(json!({"aud": ["x", "api"]})), &p, 1000).is_ok());
        assert!(matches!(
            check_claims(&claims(json!({"aud": ["x", "y"]})), &p, 1000),
            Err(TokenProblem::WrongAudience)
        ));
        let mut c = claims(json!({}));
        c.remove("aud");
        assert!(matches!(
            check_claims(&c, &p, 1000),
            Err(TokenProblem::MissingClaim)
        ));
    }

    #[test]
    fn required_claims_must_be_present() {
        let mut p = policy();
        p.required_claims = vec!["tid".into()];
        assert!(matches!(
            check_claims(&claims(json!({})), &p, 1000),
            Err(TokenProblem::MissingClaim)
        ));
        assert!(check_claims(&claims(json!({"tid": "t"})), &p, 1000).is_ok());
    }

    #[test]
    fn groups_claim_maps_to_umbraco_group_aliases() {
        let a = check_claims(
            &claims(json!({"groups": ["g-editors", "other"]})),
            &policy(),
            1000,
        )
        .unwrap();
        assert_eq!(a.principal.id, "jwt:idp#u1");
        assert_eq!(
            a.principal.subject,
            Subject::User {
                external_id: "u1".into(),
                mapped_groups: vec!["editor".into()],
                idp_groups: vec!["g-editors".into(), "other".into()],
            }
        );
    }

    #[test]
    fn member_issuer_yields_a_member_subject_with_raw_groups() {
        let mut p = policy();
        p.subject = SubjectKind::Member;
        p.subject_claim = "preferred_username".into();
        let c = claims(json!({"preferred_username": "ann", "groups": "vip"}));
        let a = check_claims(&c, &p, 1000).unwrap();
        assert_eq!(
            a.principal.subject,
            Subject::Member {
                username: "ann".into(),
                groups: vec!["vip".into()]
            }
        );
    }

    #[test]
    fn non_numeric_time_claims_are_malformed() {
        assert!(matches!(
            check_claims(&claims(json!({"exp": "2000"})), &policy(), 1000),
            Err(TokenProblem::Malformed)
        ));
    }

    proptest! {
        #[test]
        fn split_never_panics(s in "[A-Za-z0-9_.=+/-]{0,300}") {
            let _ = split(&s);
        }
    }
}
