//! An issuer's claim rules ([`IssuerPolicy`], compiled from its config) and the checks of a
//! signature-verified token's claims: `iss`, `exp`/`nbf`/`iat` with leeway, `aud`, required
//! claims, and the subject and groups the principal is built from.

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use super::media_type;
use crate::authn::config::{IssuerConfig, SubjectKind};
use crate::authn::{Principal, PrincipalKind, Subject};
use crate::authz::TokenProblem;

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
            id: format!("jwt:{}#{}", policy.name, subject_id).into(),
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
    use crate::authn::jwt::split;
    use crate::authn::jwt::tests::token;
    use serde_json::json;

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
        assert_eq!(&*a.principal.id, "jwt:idp#u1");
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
}
