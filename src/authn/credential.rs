//! Credential extraction: finds the one credential a request carries (`Authorization: Bearer`,
//! Umbraco's back-office form `Bearer [redacted]` + access cookie, `Authorization: ApiKey`,
//! `Api-Key`) and refuses ambiguous requests and credentials in the URL (see [`openiddict`] for
//! where Umbraco itself looks). Pure: reads headers and the URI only; never logs a credential.
//!
//! [`openiddict`]: super::openiddict

use http::header::AUTHORIZATION;
use http::{HeaderMap, Uri};
use percent_encoding::percent_decode_str;

use super::api_key::{self, PresentedKey};
use super::openiddict::{self, AccessCookie};
use crate::authz::{DenyReason, TokenProblem};

/// Umbraco's Delivery API key header name (matched case-insensitively, as all header names).
pub const API_KEY_HEADER: &str = "api-key";

/// Query parameter names that are refused outright (compared case-insensitively).
const KEY_PARAM_NAMES: &[&str] = &["api-key", "apikey", "api_key", "key"];

/// The credential found on a request. `Debug` never shows a token.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credential at all (anonymous).
    None,
    /// A bearer token (not yet verified).
    Bearer(String),
    /// A Portcullis API key (not yet verified).
    ApiKey(PresentedKey),
    /// Umbraco's back-office form: `Authorization: Bearer [redacted]` and the access cookie
    /// holding the real (encrypted) token.
    BackOfficeCookie(AccessCookie),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::None => f.write_str("None"),
            Credential::Bearer(_) => f.write_str("Bearer([redacted])"),
            Credential::ApiKey(k) => f.debug_tuple("ApiKey").field(k).finish(),
            Credential::BackOfficeCookie(c) => f.debug_tuple("BackOfficeCookie").field(c).finish(),
        }
    }
}

impl Credential {
    /// `"none"`, `"jwt"`, `"api_key"` or `"umbraco_cookie"` (metric label friendly).
    pub fn method(&self) -> &'static str {
        match self {
            Credential::None => "none",
            Credential::Bearer(_) => "jwt",
            Credential::ApiKey(_) => "api_key",
            Credential::BackOfficeCookie(_) => "umbraco_cookie",
        }
    }
}

/// [`extract_for`] with Umbraco's default cookie names (no site name).
pub fn extract(headers: &HeaderMap, uri: &Uri) -> Result<Credential, DenyReason> {
    extract_for(headers, uri, "")
}

/// Finds the request's credential. Called once per request before routing decisions that
/// need a principal; `site_name` is Umbraco's cookie-name suffix. Errors: `ApiKeyInQuery` (a
/// key-like value or a key-named parameter in the query), `TokenInQuery` (an `access_token`
/// query parameter), `AmbiguousCredentials` (several `Authorization`/`Api-Key` headers, a
/// bearer token and a key, a credential next to a form body, two access cookies),
/// `InvalidToken(Malformed)` (unreadable header, unknown scheme, `[redacted]` without its
/// cookie) and `InvalidToken(UnknownApiKey)` (an `Api-Key` value that is not a Portcullis key).
pub fn extract_for(
    headers: &HeaderMap,
    uri: &Uri,
    site_name: &str,
) -> Result<Credential, DenyReason> {
    if let Some(query) = uri.query() {
        if query_carries_key(query) {
            return Err(DenyReason::ApiKeyInQuery);
        }
        if openiddict::query_carries_token(query) {
            return Err(DenyReason::TokenInQuery);
        }
    }
    let credential = header_credential(headers, site_name)?;
    // OpenIddict would also read an `access_token` field of a form body: with a header
    // credential, the gateway could not tell which one Umbraco acts on.
    if credential != Credential::None && openiddict::body_is_form(headers) {
        return Err(DenyReason::AmbiguousCredentials);
    }
    Ok(credential)
}

fn header_credential(headers: &HeaderMap, site_name: &str) -> Result<Credential, DenyReason> {
    let mut auth = headers.get_all(AUTHORIZATION).iter();
    let auth_value = auth.next();
    if auth.next().is_some() {
        return Err(DenyReason::AmbiguousCredentials);
    }
    let mut key_headers = headers.get_all(API_KEY_HEADER).iter();
    let key_value = key_headers.next();
    if key_headers.next().is_some() {
        return Err(DenyReason::AmbiguousCredentials);
    }
    if auth_value.is_some() && key_value.is_some() {
        return Err(DenyReason::AmbiguousCredentials);
    }
    let malformed = DenyReason::InvalidToken(TokenProblem::Malformed);
    if let Some(value) = auth_value {
        // Non-visible-ASCII header bytes: refused, never guessed at.
        let Ok(value) = value.to_str() else {
            return Err(malformed);
        };
        if openiddict::is_redacted_bearer(value) {
            return match openiddict::access_cookie(headers, site_name)? {
                Some(cookie) => Ok(Credential::BackOfficeCookie(cookie)),
                None => Err(malformed),
            };
        }
        let space = memchr::memchr(b' ', value.as_bytes()).ok_or(malformed)?;
        let (scheme, rest) = (&value[..space], &value[space + 1..]);
        let rest = rest.trim_matches(' ');
        // `memchr`: a JWT is ~700 bytes, which `str::contains` walks a byte at a time.
        if rest.is_empty() || memchr::memchr(b' ', rest.as_bytes()).is_some() {
            return Err(malformed);
        }
        return if scheme.eq_ignore_ascii_case("bearer") {
            Ok(Credential::Bearer(rest.to_owned()))
        } else if scheme.eq_ignore_ascii_case("apikey") {
            parse_key(rest)
        } else {
            Err(malformed)
        };
    }
    if let Some(value) = key_value {
        // Non-visible-ASCII header bytes: refused, never guessed at.
        let Ok(value) = value.to_str() else {
            return Err(malformed);
        };
        return parse_key(value.trim_matches(' '));
    }
    Ok(Credential::None)
}

fn parse_key(value: &str) -> Result<Credential, DenyReason> {
    api_key::parse(value)
        .map(Credential::ApiKey)
        .ok_or(DenyReason::InvalidToken(TokenProblem::UnknownApiKey))
}

/// Whether any query parameter is named like a key or has a key-shaped value (checked both
/// raw and percent-decoded, so encoding cannot hide it).
fn query_carries_key(query: &str) -> bool {
    if api_key::contains_key(query) {
        return true;
    }
    query.split('&').any(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name);
        let value = decode(value);
        let name = name.trim();
        KEY_PARAM_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
            || api_key::contains_key(&value)
            || api_key::contains_key(name)
    })
}

fn decode(s: &str) -> String {
    // `+` is a space in form encoding; decoding it keeps "api+key"-style tricks visible.
    let s = s.replace('+', " ");
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const PEPPER: &[u8] = b"pepper";

    fn key() -> String {
        api_key::generate("live", PEPPER).unwrap().full
    }

    use crate::authn::testing::headers;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn no_credential_is_none() {
        assert_eq!(
            extract(&headers(&[]), &uri("/x?take=10")),
            Ok(Credential::None)
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let c = extract(
            &headers(&[("authorization", "bEaReR abc.def.ghi")]),
            &uri("/"),
        )
        .unwrap();
        assert_eq!(c, Credential::Bearer("abc.def.ghi".into()));
    }

    #[test]
    fn api_key_is_read_from_the_api_key_header_and_authorization() {
        let k = key();
        let a = extract(&headers(&[("Api-Key", &k)]), &uri("/")).unwrap();
        let b = extract(
            &headers(&[("authorization", &format!("ApiKey {k}"))]),
            &uri("/"),
        )
        .unwrap();
        assert_eq!(a, b);
        assert!(matches!(a, Credential::ApiKey(_)));
    }

    #[test]
    fn two_authorization_headers_are_ambiguous() {
        let h = headers(&[
            ("authorization", "Bearer a.b.c"),
            ("authorization", "Bearer a.b.c"),
        ]);
        assert_eq!(
            extract(&h, &uri("/")),
            Err(DenyReason::AmbiguousCredentials)
        );
    }

    #[test]
    fn bearer_plus_api_key_is_ambiguous() {
        let k = key();
        let h = headers(&[("authorization", "Bearer a.b.c"), ("api-key", &k)]);
        assert_eq!(
            extract(&h, &uri("/")),
            Err(DenyReason::AmbiguousCredentials)
        );
    }

    #[test]
    fn two_api_key_headers_are_ambiguous() {
        let k = key();
        let h = headers(&[("api-key", &k), ("api-key", &k)]);
        assert_eq!(
            extract(&h, &uri("/")),
            Err(DenyReason::AmbiguousCredentials)
        );
    }

    #[test]
    fn key_shaped_value_in_query_is_rejected() {
        let k = key();
        for q in [
            format!("/x?token={k}"),
            format!("/x?a=1&x={}", k.replace('_', "%5F")),
            format!("/x?filter=name:{k}"),
        ] {
            assert_eq!(
                extract(&headers(&[]), &uri(&q)),
                Err(DenyReason::ApiKeyInQuery),
                "{q}"
            );
        }
    }

    #[test]
    fn key_named_query_parameters_are_rejected_case_insensitively() {
        for q in [
            "/x?api-key=abc",
            "/x?ApiKey=abc",
            "/x?API_KEY=",
            "/x?take=1&Key=v",
            "/x?api%2Dkey=1",
        ] {
            assert_eq!(
                extract(&headers(&[]), &uri(q)),
                Err(DenyReason::ApiKeyInQuery),
                "{q}"
            );
        }
    }

    #[test]
    fn key_in_query_is_rejected_even_with_a_valid_header() {
        let k = key();
        let h = headers(&[("api-key", &k)]);
        assert_eq!(
            extract(&h, &uri(&format!("/x?k={k}"))),
            Err(DenyReason::ApiKeyInQuery)
        );
    }

    #[test]
    fn unknown_scheme_and_non_portcullis_key_are_invalid() {
        let basic = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(
            extract(&basic, &uri("/")),
            Err(DenyReason::InvalidToken(TokenProblem::Malformed))
        );
        let umbraco = headers(&[("api-key", "my-shared-umbraco-key")]);
        assert_eq!(
            extract(&umbraco, &uri("/")),
            Err(DenyReason::InvalidToken(TokenProblem::UnknownApiKey))
        );
        let empty = headers(&[("authorization", "Bearer ")]);
        assert!(extract(&empty, &uri("/")).is_err());
        // A space inside the token, wherever it is, refuses it; spaces around it do not.
        let long = "a".repeat(700);
        for at in [1, 31, 32, 33, 350, 698] {
            let mut token = long.clone();
            token.replace_range(at..=at, " ");
            let h = headers(&[("authorization", &format!("Bearer {token}"))]);
            assert_eq!(
                extract(&h, &uri("/")),
                Err(DenyReason::InvalidToken(TokenProblem::Malformed)),
                "space at {at}"
            );
        }
        let padded = headers(&[("authorization", &format!("Bearer   {long}  "))]);
        assert_eq!(extract(&padded, &uri("/")), Ok(Credential::Bearer(long)));
    }

    proptest::proptest! {
        #[test]
        fn extract_never_panics_on_any_query_or_header(
            q in "[ -~]{0,80}",
            auth in "[ -~]{0,80}",
        ) {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
            if let Ok(u) = format!("/x?{}", q.replace(['#', ' '], "")).parse::<Uri>() {
                let _ = extract(&h, &u);
            }
        }
    }

    #[test]
    fn an_access_token_in_the_query_is_refused_even_with_a_header() {
        let h = headers(&[("authorization", "Bearer opaque")]);
        for q in ["/x?access_token=abc", "/x?take=1&Access_Token=abc"] {
            assert_eq!(extract(&h, &uri(q)), Err(DenyReason::TokenInQuery), "{q}");
            assert_eq!(
                extract(&headers(&[]), &uri(q)),
                Err(DenyReason::TokenInQuery)
            );
        }
    }

    #[test]
    fn a_header_credential_next_to_a_form_body_is_ambiguous() {
        let h = headers(&[
            ("authorization", "Bearer opaque"),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        assert_eq!(
            extract(&h, &uri("/")),
            Err(DenyReason::AmbiguousCredentials)
        );
        // Without a credential the form is just a body (anonymous routes decide).
        let anon = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(extract(&anon, &uri("/")), Ok(Credential::None));
    }

    #[test]
    fn the_redacted_form_takes_the_sites_access_cookie() {
        let h = headers(&[
            ("authorization", "Bearer [redacted]"),
            ("cookie", "umbAccessTokenShop=CfDJ8abc; other=1"),
        ]);
        let Credential::BackOfficeCookie(c) = extract_for(&h, &uri("/"), "Shop").unwrap() else {
            panic!("cookie form expected");
        };
        assert_eq!(c.value, "CfDJ8abc");
        // Without the cookie (or with another site's) `[redacted]` is no credential.
        assert_eq!(
            extract_for(&h, &uri("/"), ""),
            Err(DenyReason::InvalidToken(TokenProblem::Malformed))
        );
        // A cookie next to a real bearer token is not used (Umbraco swaps only `[redacted]`).
        let h = headers(&[
            ("authorization", "Bearer opaque"),
            ("cookie", "umbAccessToken=CfDJ8abc"),
        ]);
        assert_eq!(
            extract(&h, &uri("/")),
            Ok(Credential::Bearer("opaque".into()))
        );
    }

    #[test]
    fn debug_output_of_a_credential_hides_the_token() {
        let c = Credential::Bearer("secret.token.value".into());
        assert!(!format!("{c:?}").contains("secret"));
    }
}
