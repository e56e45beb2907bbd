//! Where Umbraco's OpenIddict validation finds an access token, so that the gateway
//! authenticates exactly the credential Umbraco will act on.
//!
//! OpenIddict (`OpenIddictValidationAspNetCoreHandlers`: `ExtractAccessTokenFromAuthorizationHeader`,
//! `…FromBodyForm`, `…FromQueryString`) takes the first of: the `Authorization` header after a
//! case-insensitive `Bearer ` prefix (verbatim), an `access_token` field of an
//! `application/x-www-form-urlencoded` body, an `access_token` query parameter (names
//! case-insensitive, as ASP.NET's collections are). Umbraco's `HideBackOfficeTokensHandler` then
//! swaps a token that is exactly `[redacted]` for the `umbAccessToken{SiteName}` cookie
//! (`__Host-`-prefixed under HTTPS).
//!
//! The gateway refuses a token in the query outright (never logged), refuses a form body next
//! to a header credential (it could carry a second token), and finds the one back-office cookie
//! of the `[redacted]` form, refusing requests that carry more than one candidate.

use http::header::{CONTENT_TYPE, COOKIE};
use http::HeaderMap;
use percent_encoding::percent_decode_str;

use crate::authz::DenyReason;

/// The token value the back-office SPA sends instead of its real token.
pub const REDACTED: &str = "[redacted]";
/// The OAuth 2.0 parameter name (RFC 6750 §2.2, §2.3).
const ACCESS_TOKEN: &str = "access_token";
/// Umbraco's access-token cookie name before the site-name suffix.
const ACCESS_COOKIE: &str = "umbAccessToken";
/// The prefix Umbraco adds under HTTPS.
const SECURE_PREFIX: &str = "__Host-";

/// The back-office cookie the `[redacted]` form points at, exactly as received.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessCookie {
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for AccessCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessCookie")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// Whether the query names an `access_token` parameter (raw or percent-decoded, any case).
pub fn query_carries_token(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        let name = percent_decode_str(&name.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        name.trim().eq_ignore_ascii_case(ACCESS_TOKEN)
    })
}

/// Whether OpenIddict would read the body as a form (and so look for `access_token` in it).
pub fn body_is_form(headers: &HeaderMap) -> bool {
    headers.get_all(CONTENT_TYPE).iter().any(|v| {
        let v = String::from_utf8_lossy(v.as_bytes());
        let v = v.trim_start();
        v.len() >= 33 && v[..33].eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// Whether an `Authorization` value is the back-office form: `Bearer [redacted]`, exactly (the
/// scheme in any case, one space).
pub fn is_redacted_bearer(value: &str) -> bool {
    value.len() == 7 + REDACTED.len()
        && value[..7].eq_ignore_ascii_case("bearer ")
        && &value[7..] == REDACTED
}

/// The access-token cookie for `site_name`: `Ok(None)` when there is none, the cookie when
/// exactly one of `umbAccessToken{site}` / `__Host-umbAccessToken{site}` is present once
/// (names compared case-insensitively, as ASP.NET's cookie collection does), else
/// `AmbiguousCredentials`.
pub fn access_cookie(
    headers: &HeaderMap,
    site_name: &str,
) -> Result<Option<AccessCookie>, DenyReason> {
    let plain = format!("{ACCESS_COOKIE}{site_name}");
    let secure = format!("{SECURE_PREFIX}{plain}");
    let mut found: Option<AccessCookie> = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else {
            return Err(DenyReason::Malformed);
        };
        for pair in text.split(';') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = name.trim();
            if !(name.eq_ignore_ascii_case(&plain) || name.eq_ignore_ascii_case(&secure)) {
                continue;
            }
            if found.is_some() {
                return Err(DenyReason::AmbiguousCredentials);
            }
            found = Some(AccessCookie {
                name: name.to_owned(),
                value: value.trim().to_owned(),
            });
        }
    }
    Ok(found.filter(|c| !c.value.is_empty()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::authn::testing::headers;

    #[test]
    fn access_token_in_the_query_is_found_in_any_case_and_encoding() {
        for q in [
            "access_token=abc",
            "take=1&ACCESS_TOKEN=abc",
            "access%5Ftoken=abc",
            "access_token",
            "x=1&%61ccess_token=",
        ] {
            assert!(query_carries_token(q), "{q}");
        }
        for q in ["take=1", "access_tokens=1", "x=access_token"] {
            assert!(!query_carries_token(q), "{q}");
        }
    }

    #[test]
    fn a_form_body_is_recognised_as_openiddict_does() {
        // `StartsWith("application/x-www-form-urlencoded", OrdinalIgnoreCase)`.
        let form = headers(&[(
            "content-type",
            "Application/X-WWW-Form-Urlencoded; charset=utf-8",
        )]);
        assert!(body_is_form(&form));
        assert!(!body_is_form(&headers(&[(
            "content-type",
            "application/json"
        )])));
        assert!(!body_is_form(&headers(&[(
            "content-type",
            "multipart/form-data; boundary=x"
        )])));
        assert!(!body_is_form(&headers(&[])));
    }

    #[test]
    fn only_the_exact_redacted_value_is_the_cookie_form() {
        assert!(is_redacted_bearer("Bearer [redacted]"));
        assert!(is_redacted_bearer("bEARER [redacted]"));
        assert!(!is_redacted_bearer("Bearer  [redacted]"));
        assert!(!is_redacted_bearer("Bearer [Redacted]"));
        assert!(!is_redacted_bearer("Bearer [redacted] "));
    }

    #[test]
    fn the_access_cookie_is_found_with_its_site_suffix_and_either_prefix() {
        let h = headers(&[("cookie", "a=1; umbAccessTokenShop=CfDJ8x; b=2")]);
        let c = access_cookie(&h, "Shop").unwrap().unwrap();
        assert_eq!(
            (c.name.as_str(), c.value.as_str()),
            ("umbAccessTokenShop", "CfDJ8x")
        );
        let h = headers(&[("cookie", "__Host-umbAccessToken=v")]);
        assert_eq!(access_cookie(&h, "").unwrap().unwrap().value, "v");
        // Another site's cookie is not Umbraco's.
        let h = headers(&[("cookie", "umbAccessTokenOther=v")]);
        assert_eq!(access_cookie(&h, "").unwrap(), None);
    }

    #[test]
    fn two_candidate_cookies_are_ambiguous() {
        for h in [
            headers(&[("cookie", "umbAccessToken=a; __Host-umbAccessToken=b")]),
            headers(&[
                ("cookie", "umbAccessToken=a"),
                ("cookie", "UMBACCESSTOKEN=b"),
            ]),
        ] {
            assert_eq!(access_cookie(&h, ""), Err(DenyReason::AmbiguousCredentials));
        }
    }

    #[test]
    fn debug_output_hides_the_cookie_value() {
        let c = AccessCookie {
            name: "umbAccessToken".into(),
            value: "secret-value".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
